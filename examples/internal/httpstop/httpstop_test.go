package httpstop_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/examples/internal/httpstop"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestShutdownClosesUnusedConnection: a connection that never sends a
// request does not hold Shutdown. Without CloseUnused, Shutdown waits until
// the connection is 5 s old, past this test's 2 s budget.
func TestShutdownClosesUnusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	seen := make(chan http.ConnState, 4)
	s := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ConnState: func(_ net.Conn, st http.ConnState) { seen <- st }, // kept by CloseUnused
	}
	httpstop.CloseUnused(s)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	// A connection that serves one request, then sits idle, and one that
	// never sends anything.
	resp, err := http.Get("http://" + ln.Addr().String())
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, "ok", string(body))
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	for states := 0; states < 4; states++ { // new, active, idle; new
		<-seen
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx), "an unused connection held the stop")
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
	_, err = conn.Read(make([]byte, 1))
	assert.Error(t, err, "the unused connection is closed")
	http.DefaultClient.CloseIdleConnections()
}
