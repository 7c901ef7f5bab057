package transport_test

import (
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/licensekit/licensekit-go/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refusedDial is the error a dial to addr fails with when nothing listens.
func refusedDial(addr string) error {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		panic(err)
	}
	return &net.OpError{Op: "dial", Net: "tcp", Addr: a, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// TestPlaceholderHint checks that a refused dial to licensetest's placeholder
// address names the fix, and that nothing else gets the hint.
func TestPlaceholderHint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dialErr  error
		wantHint bool
	}{
		{"placeholder address", refusedDial("127.0.0.1:9"), true},
		{"another port", refusedDial("127.0.0.1:8080"), false},
		{"another host, port 9", refusedDial("192.0.2.1:9"), false},
		{"read, not dial", &net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9},
			Err: os.NewSyscallError("read", syscall.ECONNRESET)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt := rtFunc(func(*http.Request) (*http.Response, error) { return nil, tt.dialErr })
			c := newClient(t, "http://127.0.0.1:9/api/v2", transport.WithRoundTripper(rt))
			_, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Retry: transport.RetryUnsent})
			te := asError(t, err)
			hinted := strings.Contains(err.Error(), "unstarted licensetest.Server: send requests through its Transport()")
			assert.Equal(t, tt.wantHint, hinted, "Do() = %q; hint wanted: %v", err, tt.wantHint)
			// The hint changes neither the class nor what the error matches.
			assert.ErrorIs(t, err, transport.ErrUnreachable)
			if tt.dialErr.(*net.OpError).Op == "dial" {
				assert.Equal(t, 3, te.Attempts, "a refused dial is still retried")
			}
			assert.True(t, errors.Is(err, tt.dialErr.(*net.OpError).Err.(*os.SyscallError).Err))
			_, ok := errors.AsType[*net.OpError](err)
			require.True(t, ok)
		})
	}
}

// TestPlaceholderHintRealDial dials the placeholder address for real.
func TestPlaceholderHintRealDial(t *testing.T) {
	t.Parallel()
	if ln, err := net.Listen("tcp", "127.0.0.1:9"); err == nil {
		ln.Close() // port 9 is free: a dial will be refused
	} else if conn, err := net.Dial("tcp", "127.0.0.1:9"); err == nil {
		conn.Close()
		t.Skip("something listens on 127.0.0.1:9 on this machine")
	}
	c := newClient(t, "http://127.0.0.1:9/api/v2")
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "register_instance", Retry: transport.RetryIdempotent})
	// Unreachable after a failed dial, on every OS; the errno differs (ECONNREFUSED,
	// WSAECONNREFUSED), so it is not what the hint depends on.
	assert.ErrorIs(t, err, transport.ErrUnreachable)
	op, ok := errors.AsType[*net.OpError](err)
	require.True(t, ok, "Do() = %v; want a *net.OpError in the chain", err)
	assert.Equal(t, "dial", op.Op)
	assert.Contains(t, err.Error(), "license.WithRoundTripper(srv.Transport())")
}
