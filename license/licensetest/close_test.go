package licensetest_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestCloseIsOneOperation holds the first Close open with a request whose
// body never finishes arriving: Close waits for it. A second Close must not
// return before the first has finished, that is before the connection is
// gone.
func TestCloseIsOneOperation(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	conn, err := net.Dial("tcp", srv.Info().Addr)
	require.NoError(t, err)
	_, err = conn.Write([]byte("POST /api/v2/begin_session HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"))
	require.NoError(t, err)
	// Wait until the server has read the headers: the request is in flight.
	for srv.InFlight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	var released atomic.Bool
	var wg sync.WaitGroup
	var firstSawRelease, secondSawRelease atomic.Bool
	wg.Go(func() {
		srv.Close()
		firstSawRelease.Store(released.Load())
	})
	time.Sleep(50 * time.Millisecond) // the first Close is waiting for the connection
	wg.Go(func() {
		srv.Close()
		secondSawRelease.Store(released.Load())
	})
	time.Sleep(200 * time.Millisecond)
	released.Store(true)
	require.NoError(t, conn.Close())
	wg.Wait()
	assert.True(t, firstSawRelease.Load(), "the first Close waits for the active connection")
	assert.True(t, secondSawRelease.Load(), "the second Close returned before the first had finished")
	srv.Close() // a later Close returns at once
}
