package license

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOfflineEachStepANewProcess runs each step of the ceremony in a new
// client on the same state, as a product's "request" and "activate"
// commands do: the register reply applied by a client that did not write
// the request must leave the machine registered, so that the next request
// file begins the session.
func TestOfflineEachStepANewProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 24 * time.Hour, grace: time.Hour, seats: 1, features: "pro"})
		store := &MemoryStateStore{}
		step := func() *Client {
			c := e.offlineMachine(e.fp, store)
			return c
		}
		reply1 := e.exchange(request(t, step()))
		more, err := activate(step(), reply1)
		require.NoError(t, err)
		require.True(t, more)

		file2 := request(t, step())
		assert.Contains(t, string(file2), "Endpoint: begin_session", "the machine registered in another process begins its session")
		more, err = activate(step(), e.exchange(file2))
		require.NoError(t, err)
		require.False(t, more)
		c := step()
		require.NoError(t, c.Start(context.Background()))
		assert.Equal(t, Active, c.Status().State)
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
	})
}
