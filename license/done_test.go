package license

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

func isDone(c *Client) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// TestDoneIsTerminal checks Done's contract: like context.Done it closes
// once, on a refusal of a running client or on Close, hands out the same
// channel before and after, and never reopens; Expired, which can recover,
// leaves it open.
func TestDoneIsTerminal(t *testing.T) {
	t.Run("expired and recovered: open throughout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute})
			c := e.start()
			done := c.Done()
			e.srv.SetDown(true)
			time.Sleep(3 * time.Minute)
			synctest.Wait()
			require.Equal(t, Expired, c.Status().State)
			assert.False(t, isDone(c), "Expired can recover: Done stays open")
			assert.NoError(t, c.Err())
			e.srv.SetDown(false)
			time.Sleep(expiredCap + time.Second)
			synctest.Wait()
			require.Equal(t, Active, c.Status().State)
			assert.Equal(t, done, c.Done(), "always the same channel")
			assert.False(t, isDone(c))
		})
	})
	t.Run("refused while running: closed for good", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute})
			c := e.start()
			done := c.Done()
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
			time.Sleep(time.Minute)
			synctest.Wait()
			require.True(t, isDone(c))
			assert.ErrorIs(t, c.Err(), ErrRevoked)
			assert.Equal(t, done, c.Done())
			// Nothing reopens it: not the server relenting, not an explicit
			// call, not Close.
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Active))
			assert.ErrorIs(t, c.BeginSession(context.Background()), ErrRevoked)
			require.NoError(t, c.Close(context.Background()))
			assert.Equal(t, done, c.Done())
			assert.ErrorIs(t, c.Err(), ErrRevoked, "Err never changes once set")
		})
	})
	t.Run("refused at Start: open, Start may be retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute, seats: 1})
			other := e.start()
			c := e.newClient(e.config(), fixedFingerprint(otherMachine()))
			defer c.Close(context.Background())
			require.ErrorIs(t, c.Start(context.Background()), ErrSeatLimit)
			assert.False(t, isDone(c), "a failed Start is reported by its error")
			require.NoError(t, other.Close(context.Background()))
			require.NoError(t, c.Start(context.Background()), "the seat is free now")
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute})
			c := e.start()
			done := c.Done()
			require.NoError(t, c.Close(context.Background()))
			assert.True(t, isDone(c))
			assert.ErrorIs(t, c.Err(), ErrClosed)
			assert.Equal(t, done, c.Done())
		})
	})
}

// otherMachine is a second machine, distinct from testFingerprint.
func otherMachine() *fingerprint.Fingerprint {
	fp := testFingerprint()
	fp.MBSerial.Value = "board-0002"
	fp.Extra[0].Value = "board-0002"
	fp.Extra[1].Value = "7a2b00e2"
	return fp
}
