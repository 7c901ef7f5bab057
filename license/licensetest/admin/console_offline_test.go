package admin_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest/admin"
)

// upload posts a request file to the console's offline page endpoint.
func (e *adminEnv) upload(t *testing.T, file []byte, mod func(*http.Request)) (int, http.Header, string) {
	t.Helper()
	return e.do(t, http.MethodPost, "/admin/offline/exchange", func(r *http.Request) {
		r.Body = http.NoBody
		if file != nil {
			r.Body, r.ContentLength = readCloser(file), int64(len(file))
		}
		r.Header.Set("Content-Type", "text/plain")
		if mod != nil {
			mod(r)
		}
	})
}

type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }

func readCloser(b []byte) bodyReader { return bodyReader{bytes.NewReader(b)} }

// TestConsoleOfflineExchange: a request file written by a real client on a
// machine without a network, uploaded to the console, gets the reply file
// that activates that client; the server saw ordinary v2 requests; the same
// file uploaded twice gets the same reply and takes one seat.
func TestConsoleOfflineExchange(t *testing.T) {
	e := newAdminEnv(t, admin.Options{})
	ctx := context.Background()
	c, err := license.New(license.Config{ServerURL: e.s.URL, APIKey: e.s.Info().APIKey, ServerPublicKey: e.s.Info().PublicKey.EncodeBase64(),
		ProductGUID: product, LicenseKey: key},
		license.WithRoundTripper(testkit.AirGap{}), license.WithStateStore(&license.MemoryStateStore{}))
	require.NoError(t, err)
	defer c.Close(ctx) //nolint:errcheck // offline

	var begin []byte
	var replies []string
	for more := true; more; {
		var req bytes.Buffer
		require.NoError(t, c.OfflineRequest(ctx, &req))
		status, h, reply := e.upload(t, req.Bytes(), bearer)
		require.Equal(t, http.StatusOK, status, reply)
		assert.Equal(t, "text/plain; charset=utf-8", h.Get("Content-Type"))
		assert.Equal(t, `attachment; filename="licensekit-reply.txt"`, h.Get("Content-Disposition"))
		assert.True(t, strings.HasPrefix(reply, "licensekit offline reply\n"), reply)
		more, err = c.ActivateOffline(ctx, strings.NewReader(reply))
		require.NoError(t, err)
		begin = req.Bytes()
		replies = append(replies, reply)
	}
	assert.Equal(t, license.Active, c.Status().State)
	assert.Equal(t, 1, e.s.Count("register_instance"), "the server saw a v2 register_instance")
	assert.Equal(t, 1, e.s.Count("begin_session"), "the server saw a v2 begin_session")
	assert.Equal(t, 1, e.s.SeatsInUse(product, key))

	// The same file again: the stored reply, no second seat.
	status, _, again := e.upload(t, begin, bearer)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, withoutCreated(replies[len(replies)-1]), withoutCreated(again))
	assert.Equal(t, 1, e.s.SeatsInUse(product, key))

	// The console lists the exchange.
	st, _ := e.state(t)
	var listed bool
	for _, a := range st.Actions {
		listed = listed || strings.HasPrefix(a.Command, "offline exchange: begin_session 200")
	}
	assert.True(t, listed, "the console lists the exchange")
}

func withoutCreated(s string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		if !strings.HasPrefix(l, "Created: ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestConsoleOfflineGuarded: the page and its endpoint need the admin token,
// refuse another origin, and answer a bad file with a clear error.
func TestConsoleOfflineGuarded(t *testing.T) {
	e := newAdminEnv(t, admin.Options{})
	status, _, _ := e.do(t, http.MethodGet, "/admin/offline", nil)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, _, _ = e.upload(t, []byte("x"), nil)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, _, _ = e.upload(t, []byte("x"), func(r *http.Request) {
		bearer(r)
		r.Header.Set("Origin", "https://evil.example")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	})
	assert.Equal(t, http.StatusForbidden, status)

	status, h, page := e.do(t, http.MethodGet, "/admin/offline", bearer)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Contains(t, page, `id="offline-file"`)
	status, _, _ = e.do(t, http.MethodGet, "/admin/console/offline.js", bearer)
	assert.Equal(t, http.StatusOK, status)

	for _, bad := range []string{"", "hello", "licensekit offline reply\nProduct: p\n"} {
		status, _, body := e.upload(t, []byte(bad), bearer)
		assert.Equal(t, http.StatusBadRequest, status, bad)
		assert.Contains(t, body, "not a licensekit offline request file", bad)
	}
	assert.Zero(t, e.s.Count("register_instance"))
}
