package license

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// proxyCase is what a real reverse proxy in front of the licence server
// answers instead of passing a request on.
type proxyCase struct {
	name    string
	handler http.HandlerFunc
	// also is a detail the failures must match besides ErrUnreachable.
	also error
}

func page(status int, ctype, body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		if ctype != "" {
			w.Header().Set("Content-Type", ctype)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const blockPage = `<!DOCTYPE html><html><head><title>Access Denied</title></head><body>The requested URL was rejected by policy.</body></html>`

var proxyCases = []proxyCase{
	{"403 HTML page", page(403, "text/html", blockPage), ErrIntercepted},
	{"404 empty body", page(404, "", ""), ErrIntercepted},
	{"407 with Proxy-Authenticate", page(407, "text/html", blockPage, "Proxy-Authenticate", `Basic realm="corp"`), ErrIntercepted},
	{"413 HTML page", page(413, "text/html", blockPage), ErrIntercepted},
	{"403 JSON of another shape", page(403, "application/json", `{"message":"Forbidden","code":"DENIED"}`), ErrIntercepted},
	{"401 JSON of another shape", page(401, "application/json", `{"error":{"code":401,"message":"login"}}`), ErrIntercepted},
	{"502 HTML page", page(502, "text/html", `<html>502 Bad Gateway</html>`), nil},
	{"503 spec failure with Retry-After", page(503, "application/json", `{"success":false,"error":"license revoked"}`, "Retry-After", "1"), nil},
	{"200 captive portal", page(200, "text/html", `<html><head><title>Hotel WiFi</title></head><body>Sign in</body></html>`), ErrIntercepted},
	{"302 redirect to a login page", page(302, "", "", "Location", "https://login.corp.example/sso"), ErrIntercepted},
	{"forged plain spec refusal at 403", page(403, "application/json", `{"success":false,"time":"2025-01-01T00:00:00Z","error":"license revoked"}`), ErrUnauthenticated},
	{"forged plain spec refusal at 200", page(200, "application/json", `{"success":false,"error":"seat limit reached"}`), ErrUnauthenticated},
}

// interceptor is a real reverse proxy on loopback that passes traffic to the
// licence server until blocked, then answers with its own page.
type interceptor struct {
	srv     *httptest.Server
	blocked atomic.Pointer[http.HandlerFunc]
}

func newInterceptor(t *testing.T, target string) *interceptor {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	u.Path = ""
	rp := httputil.NewSingleHostReverseProxy(u)
	ic := &interceptor{}
	ic.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := ic.blocked.Load(); h != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			(*h)(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ic.srv.Close)
	return ic
}

func (ic *interceptor) block(h http.HandlerFunc) { ic.blocked.Store(&h) }
func (ic *interceptor) pass()                    { ic.blocked.Store(nil) }

// stateLog records every state a client entered and its failure reasons.
type stateLog struct {
	mu      sync.Mutex
	states  []State
	reasons []error
}

func (l *stateLog) handle(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Type == EventStateChanged {
		l.states = append(l.states, e.State)
	}
	if e.Type == EventRenewFailed {
		l.reasons = append(l.reasons, e.Reason)
	}
}

func (l *stateLog) snapshot() ([]State, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]State(nil), l.states...), append([]error(nil), l.reasons...)
}

func waitState(t *testing.T, c *Client, want State, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c.Status().State == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("state = %v after %v; want %v (last error: %v)", c.Status().State, within, want, c.Status().LastError)
}

// proxiedClient starts a client that reaches srv through a real reverse
// proxy, with a one-second session and an hour of grace.
func proxiedClient(t *testing.T, srv *licensetest.Server, log *stateLog) (*Client, *interceptor) {
	t.Helper()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Second, GracePeriod: time.Hour, Features: "pro"}))
	ic := newInterceptor(t, srv.URL)
	c, err := New(Config{ServerURL: ic.srv.URL + licensetest.BasePath, APIKey: srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(), ProductGUID: testProduct, LicenseKey: testLicense},
		fixedFingerprint(testFingerprint()), WithEventHandler(log.handle),
		WithRetry(Retry{Attempts: 2, AttemptTimeout: 2 * time.Second, MinBackoff: 10 * time.Millisecond,
			MaxBackoff: 20 * time.Millisecond, RenewBackoff: 50 * time.Millisecond}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	require.NoError(t, c.Start(context.Background()))
	return c, ic
}

// TestProxyNeverRefuses puts a real reverse proxy between the client and
// licensetest. For every page a proxy, gateway, captive portal or forger on
// the path can send, the client goes to Grace, never to Refused, keeps its
// features, and returns to Active once the proxy passes traffic again.
func TestProxyNeverRefuses(t *testing.T) {
	t.Parallel()
	for _, pc := range proxyCases {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			srv := licensetest.NewServer(nil)
			t.Cleanup(srv.Close)
			log := &stateLog{}
			c, ic := proxiedClient(t, srv, log)

			ic.block(pc.handler)
			waitState(t, c, Grace, 10*time.Second)
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
				if _, reasons := log.snapshot(); len(reasons) > 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			assert.True(t, c.HasFeature("pro"), "grace keeps the licence usable")
			assert.NoError(t, c.Err(), "Done stays open")
			extends := srv.Count("extend_session")
			time.Sleep(300 * time.Millisecond)
			assert.Equal(t, extends, srv.Count("extend_session"), "the proxy answered, not the server")

			ic.pass()
			waitState(t, c, Active, 10*time.Second)

			states, reasons := log.snapshot()
			assert.NotContains(t, states, Refused)
			require.NotEmpty(t, reasons)
			// Every reason is unreachable. On a loaded machine a renewal of the
			// one-second session may also time out at its deadline, so the
			// proxy's own detail must show in at least one reason, not all.
			seen := pc.also == nil
			for _, r := range reasons {
				assert.ErrorIs(t, r, ErrUnreachable)
				assert.NotErrorIs(t, r, ErrRefused)
				if pc.also != nil && errors.Is(r, pc.also) {
					seen = true
				}
			}
			assert.True(t, seen, "no reason matches %v: %v", pc.also, reasons)
			t.Logf("%s: %v", pc.name, reasons[0])
		})
	}
}

// TestProxyPassesRefusal checks the other side: a revocation that the
// licence server itself sends (sealed) through the same proxy still ends
// in Refused, without grace.
func TestProxyPassesRefusal(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	log := &stateLog{}
	c, _ := proxiedClient(t, srv, log)
	require.NoError(t, srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
	waitState(t, c, Refused, 10*time.Second)
	<-c.Done()
	assert.ErrorIs(t, c.Err(), ErrRevoked)
	var api *APIError
	require.True(t, errors.As(c.Err(), &api))
	assert.True(t, api.Sealed, "the refusal came sealed")
	states, _ := log.snapshot()
	assert.NotContains(t, states, Grace, "a refusal skips grace")
	assert.False(t, c.Valid())
}
