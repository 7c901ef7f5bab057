package licensetest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

// drip sends prefix at once, then the bytes of msg one at a time, 20 ms
// apart, and reports how many of them it wrote before the server closed
// the connection.
func drip(t *testing.T, addr, prefix, msg string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, prefix)
	require.NoError(t, err)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, c) // ends when the server closes
	}()
	for i := range len(msg) {
		select {
		case <-closed:
			return i
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			return i
		}
	}
	select {
	case <-closed:
		return len(msg)
	case <-time.After(5 * time.Second):
		t.Fatalf("the server still holds a connection that sent %d bytes slowly", len(msg))
		return len(msg)
	}
}

func TestSlowClientsAreCut(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, wiretest.License(), &licensetest.Config{Timeouts: wiretest.ShortTimeouts})
	host := s.Info().Addr
	long := strings.Repeat("x", 1000)

	t.Run("headers", func(t *testing.T) {
		t.Parallel()
		msg := "POST /api/v2/register_instance HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: " + long + "\r\n\r\n"
		n := drip(t, host, "", msg)
		assert.Less(t, n, len(msg), "the server must cut a client that drips its headers")
	})
	t.Run("body", func(t *testing.T) {
		t.Parallel()
		head := fmt.Sprintf("POST /api/v2/register_instance HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", host, len(long))
		n := drip(t, host, head, long)
		assert.Less(t, n, len(long), "the server must cut a client that drips its body")
	})
	roomy := wiretest.NewServer(t, wiretest.License(), &licensetest.Config{Timeouts: wiretest.RoomyHeaders})
	t.Run("header size", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequest(http.MethodPost, roomy.URL+"/"+licensetest.Register, strings.NewReader("{}"))
		require.NoError(t, err)
		req.Header.Set("X-Big", strings.Repeat("y", 16<<10))
		resp, err := roomy.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", roomy.Info().Addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "POST /api/v2/nothing HTTP/1.1\r\nHost: "+roomy.Info().Addr+"\r\nContent-Length: 0\r\n\r\n")
		require.NoError(t, err)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = br.ReadByte()
		assert.ErrorIs(t, err, io.EOF, "an idle keep-alive connection is closed")
	})
}

// TestDelayedRepliesOutliveTimeouts: a deliberately delayed reply is longer
// than the read and write timeouts, and still arrives.
func TestDelayedRepliesOutliveTimeouts(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, wiretest.License(), &licensetest.Config{Timeouts: wiretest.RoomyHeaders})
	s.SetLatency(licensetest.Register, time.Second)
	c := wiretest.NewClient(t, s, nil)
	reg := c.Register(t, 1)
	assert.NotEmpty(t, reg.GUID)
	reqs := s.Requests()
	require.Len(t, reqs, 1)
	assert.GreaterOrEqual(t, reqs[0].Latency, time.Second)
}
