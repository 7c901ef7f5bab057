package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/license"
)

// TestFloodLocksOutNoCustomer: envelopes sealed by anyone holding a copy of
// the product (the public key and the API key ship in it), four times the
// replay cache's capacity and stamped at the future edge of the window, do
// not stop an SDK client from starting, renewing and closing, and the cache
// stays within its bound.
func TestFloodLocksOutNoCustomer(t *testing.T) {
	const capacity = 64
	priv, opener := newKey(t, envelope.KEMX25519)
	srv, url, _ := serveLic(t, opener)
	srv.guard = envelope.NewGuard(envelope.GuardConfig{MaxEntries: capacity})
	sealer, err := envelope.NewSealer(priv.Public(), envelope.WithSealedReplies())
	require.NoError(t, err)
	flood := func(n int) {
		for i := range n {
			ep := []string{"begin_session", "extend_session", "register_instance"}[i%3]
			pt := fmt.Sprintf(`{"product_guid":%q,"license_key":"JUNK-%d","token":"junk-%d","instance_guid":"x"}`, lic.ProductGUID, i, i)
			sd, err := sealer.Seal(envelope.Request{APIKey: apiKey, Endpoint: ep, Time: time.Now().Add(envelope.DefaultFuture)}, []byte(pt))
			require.NoError(t, err)
			body, _ := json.Marshal(map[string]string{"key": sd.Key, "data": sd.Data})
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v2/"+ep, strings.NewReader(string(body))))
			require.NotEqual(t, http.StatusOK, rec.Code, "junk was granted")
			require.LessOrEqual(t, srv.guard.Len(), capacity)
		}
	}
	flood(4 * capacity)
	c, err := license.New(config(url, priv.Public(), true), license.WithStateStore(&license.MemoryStateStore{}))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	flood(capacity)
	require.NoError(t, c.ExtendSession(ctx))
	flood(capacity)
	require.NoError(t, c.Close(ctx))
	assert.Equal(t, 0, liveSessions(t, srv))
	assert.LessOrEqual(t, srv.guard.Len(), capacity)
	// The durable replay cache keeps only the customer's own requests
	// (register, begin, extend, end), none of the junk.
	var rows int
	require.NoError(t, srv.store.db.QueryRow(`SELECT COUNT(*) FROM replies`).Scan(&rows))
	assert.LessOrEqual(t, rows, 4)
}
