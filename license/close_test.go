package license

import (
	"context"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/wire"
)

// TestConcurrentCloseIsOneOperation calls Close a second time while the
// first is still ending the session. The second returns only when the
// first has finished, with the same result: the state is Ended, Done is
// closed and the event handler is never called again.
func TestConcurrentCloseIsOneOperation(t *testing.T) {
	for _, tc := range []struct {
		name string
		down bool // end_session fails: both calls return its error
	}{{"session ended", false}, {"end_session fails", true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
				var handled atomic.Int64
				c := e.start(WithEventHandler(func(Event) { handled.Add(1) }))
				e.srv.SetLatency(wire.End, time.Second)
				if tc.down {
					e.srv.Inject(licensetest.Fault{Endpoint: wire.End, Kind: licensetest.FaultFail, Count: 100, Status: 503})
				}

				began := time.Now()
				var wg sync.WaitGroup
				var first error
				wg.Go(func() { first = c.Close(context.Background()) })
				time.Sleep(100 * time.Millisecond)
				second := c.Close(context.Background())
				returned := time.Since(began)

				assert.Equal(t, Ended, c.Status().State, "the second Close returned before the client was closed")
				select {
				case <-c.Done():
				default:
					t.Error("the second Close returned with Done still open")
				}
				n := handled.Load()
				wg.Wait()
				assert.GreaterOrEqual(t, returned, time.Second, "the second Close returned while end_session was in flight")
				assert.Equal(t, first, second, "both calls return the same result")
				if tc.down {
					assert.ErrorIs(t, second, ErrUnreachable)
				} else {
					assert.NoError(t, second)
					assert.Equal(t, 0, e.srv.SeatsInUse(testProduct, testLicense))
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				assert.Equal(t, n, handled.Load(), "the handler ran after Close returned")
				require.NoError(t, nilIfSame(c.Close(context.Background()), second), "a later Close returns the same")
			})
		})
	}
}

// nilIfSame returns nil when got is want, and got otherwise.
func nilIfSame(got, want error) error {
	if got == want {
		return nil
	}
	return got
}
