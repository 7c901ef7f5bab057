package admin_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/admin"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

const adminToken = "t0ken-s3cret-Zq9"

// adminEnv is a mock server with its admin API on a real loopback listener.
type adminEnv struct {
	s    *licensetest.Server
	adm  *admin.Handler
	base string // http://127.0.0.1:PORT
	logs *testkit.LockedBuffer
}

func newAdminEnv(t *testing.T, opts admin.Options) *adminEnv {
	t.Helper()
	logs := &testkit.LockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := wiretest.NewServer(t, wiretest.License(), &licensetest.Config{Logger: logger})
	if opts.Token == "" {
		opts.Token = adminToken
	}
	adm := admin.NewHandler(s, opts)
	hs := httptest.NewUnstartedServer(adm)
	licensetest.DefaultTimeouts().Apply(hs.Config)
	hs.Start()
	t.Cleanup(func() {
		adm.Close()
		hs.Close()
	})
	return &adminEnv{s: s, adm: adm, base: hs.URL, logs: logs}
}

// do sends an admin request; mod may change it before it goes.
func (e *adminEnv) do(t *testing.T, method, path string, mod func(r *http.Request)) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	require.NoError(t, err)
	if mod != nil {
		mod(req)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

func bearer(r *http.Request) { r.Header.Set("Authorization", "Bearer "+adminToken) }

func TestAdminTokenRequired(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t, admin.Options{})
	for _, tc := range []struct {
		name string
		path string
		mod  func(r *http.Request)
		want int
	}{
		{"no token", "/admin/state", nil, http.StatusUnauthorized},
		{"no token, console", "/admin/", nil, http.StatusUnauthorized},
		{"no token, config", "/admin/config", nil, http.StatusUnauthorized},
		{"wrong bearer", "/admin/state", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		{"token as basic", "/admin/state", func(r *http.Request) { r.SetBasicAuth("admin", adminToken) }, http.StatusUnauthorized},
		{"wrong query", "/admin/state?token=nope", nil, http.StatusUnauthorized},
		{"bearer", "/admin/state", bearer, http.StatusOK},
		{"query", "/admin/state?token=" + adminToken, nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := e.do(t, http.MethodGet, tc.path, tc.mod)
			assert.Equal(t, tc.want, code, body)
			if tc.want == http.StatusUnauthorized {
				assert.Contains(t, body, "token required")
				assert.Equal(t, `Bearer realm="licensetest admin"`, h.Get("WWW-Authenticate"))
				assert.NotContains(t, body, e.s.Info().APIKey)
			}
		})
	}
	// A refused write changes nothing.
	code, _, _ := e.do(t, http.MethodPost, "/admin/revoke?product="+product+"&key="+key, nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	l, _ := e.s.License(product, key)
	assert.Equal(t, licensetest.Active, l.State)
}

func TestAdminConsoleURLSetsCookie(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t, admin.Options{})
	u := e.adm.ConsoleURL(e.base)
	assert.Equal(t, e.base+"/admin/?token="+adminToken, u)
	code, h, _ := e.do(t, http.MethodGet, strings.TrimPrefix(u, e.base), nil)
	require.Equal(t, http.StatusSeeOther, code)
	assert.Equal(t, "/admin/", h.Get("Location"), "the token leaves the address bar")
	cookies := (&http.Response{Header: h}).Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/admin/", c.Path)
	assert.Equal(t, adminToken, c.Value)

	code, h, body := e.do(t, http.MethodGet, "/admin/", func(r *http.Request) { r.AddCookie(c) })
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, h.Get("Content-Type"), "text/html")
	assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Contains(t, body, "<title>")
	code, _, _ = e.do(t, http.MethodGet, "/admin/console/console.js", func(r *http.Request) { r.AddCookie(c) })
	assert.Equal(t, http.StatusOK, code)
	code, _, _ = e.do(t, http.MethodGet, "/admin/events", func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: "forged"})
	})
	assert.Equal(t, http.StatusUnauthorized, code)

	// The token never reaches the log, whatever carried it.
	e.do(t, http.MethodPost, "/admin/latency?d=1ms&token="+adminToken, nil)
	e.do(t, http.MethodPost, "/admin/latency?d=0s", bearer)
	e.do(t, http.MethodGet, "/admin/state?token=wrong-"+adminToken, nil)
	logs := e.logs.String()
	assert.Contains(t, logs, "admin command")
	assert.NotContains(t, logs, adminToken)
}

func TestAdminHostChecked(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t, admin.Options{AllowedHosts: []string{"mock.test"}})
	_, port, _ := strings.Cut(strings.TrimPrefix(e.base, "http://"), ":")
	for _, tc := range []struct {
		host string
		want int
	}{
		{"evil.example:" + port, http.StatusForbidden}, // DNS rebinding: a name that resolves to 127.0.0.1
		{"evil.example", http.StatusForbidden},
		{"localhost.evil.example", http.StatusForbidden},
		{"192.0.2.1:" + port, http.StatusForbidden},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST", http.StatusOK},
		{"127.0.0.1:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"mock.test:" + port, http.StatusOK},
	} {
		code, _, body := e.do(t, http.MethodGet, "/admin/config", func(r *http.Request) {
			bearer(r)
			r.Host = tc.host
		})
		assert.Equal(t, tc.want, code, "Host %s: %s", tc.host, body)
		if code == http.StatusForbidden {
			assert.Contains(t, body, "host not allowed")
			assert.NotContains(t, body, e.s.Info().APIKey, "no secrets for a foreign host")
		}
	}
}

func TestAdminOriginChecked(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t, admin.Options{})
	revoke := "/admin/revoke?product=" + product + "&key=" + key
	for _, tc := range []struct {
		name string
		mod  func(r *http.Request)
		want int
	}{
		{"foreign origin", func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }, http.StatusForbidden},
		{"null origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, http.StatusForbidden},
		{"other port", func(r *http.Request) { r.Header.Set("Origin", "http://127.0.0.1:1") }, http.StatusForbidden},
		{"cross-site fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, http.StatusForbidden},
		{"same-site fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") }, http.StatusForbidden},
	} {
		code, h, body := e.do(t, http.MethodPost, revoke, func(r *http.Request) { bearer(r); tc.mod(r) })
		assert.Equal(t, tc.want, code, "%s: %s", tc.name, body)
		assert.Empty(t, h.Get("Access-Control-Allow-Origin"))
		l, _ := e.s.License(product, key)
		require.Equal(t, licensetest.Active, l.State, "%s: a cross-origin write must change nothing", tc.name)
	}
	// Same origin (the console) and no Origin at all (curl) may write.
	code, _, body := e.do(t, http.MethodPost, revoke, func(r *http.Request) {
		bearer(r)
		r.Header.Set("Origin", e.base)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	})
	require.Equal(t, http.StatusOK, code, body)
	code, _, body = e.do(t, http.MethodPost, "/admin/reinstate?product="+product+"&key="+key, bearer)
	require.Equal(t, http.StatusOK, code, body)

	// No CORS: a preflight gets nothing that would let a page call in.
	code, h, _ := e.do(t, http.MethodOptions, revoke, func(r *http.Request) {
		r.Header.Set("Origin", "http://evil.example")
		r.Header.Set("Access-Control-Request-Method", "POST")
	})
	assert.NotEqual(t, http.StatusOK, code)
	assert.Empty(t, h.Get("Access-Control-Allow-Origin"))
	assert.Empty(t, h.Get("Access-Control-Allow-Methods"))
}

func TestAdminStrictParsing(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t, admin.Options{})
	for _, tc := range []struct {
		path string
		want int
		msgs []string
	}{
		{"down?on=yes", 400, []string{`on: unknown value "yes" (accepted: 1, 0, true, false)`}},
		{"down?mode=explode", 400, []string{`mode: unknown value "explode" (accepted: refuse, reset, 503)`}},
		{"down?for=soon", 400, []string{`for: "soon" is not a duration`}},
		{"down?colour=red", 400, []string{`down: unknown parameter "colour" (accepted: on, mode, for)`}},
		{"down?on=1&on=0", 400, []string{"on: given 2 times"}},
		{"up?mode=reset", 400, []string{`up: unknown parameter "mode" (it takes none)`}},
		{"fail?endpoint=nope", 400, []string{`endpoint: unknown value "nope" (accepted: all, register, begin, extend, end`}},
		{"fail?n=x", 400, []string{`n: "x" is not an integer`}},
		{"fail?status=42", 400, []string{`status: "42" is not an integer in 100..599`}},
		{"fail?n=0", 400, []string{"n: 0 fails nothing"}},
		{"fault?kind=nope", 400, []string{`kind: unknown value "nope" (accepted: fail, truncate, garbage, drop, cut_body, replay, bad_seal)`}},
		{"fault", 400, []string{"fault: kind is required (accepted: fail, truncate, garbage, drop, cut_body, replay, bad_seal)"}},
		{"latency?d=soon", 400, []string{`d: "soon" is not a duration`}},
		{"latency", 400, []string{"d is required"}},
		{"latency?d=-1s", 400, []string{"d: -1s is negative"}},
		{"revoke?product=" + product + "&key=nope", 404, []string{"unknown license"}},
		{"revoke", 400, []string{"product is required", "key is required"}},
		{"license?product=p", 400, []string{"key is required"}},
		{"license?product=p&key=x&state=zombie", 400, []string{`state: unknown value "zombie" (accepted: active, revoked, expired)`}},
		{"license?product=p&key=x&session=1500ms", 400, []string{"not a whole number of seconds"}},
		{"control?product=" + product + "&key=" + key, 400, []string{"session is required"}},
		{"explode", 404, []string{`unknown command "explode" (accepted: clear, content_type, control, down, expire, fail, fault, latency, license, reinstate, retry_after, revoke, skew, up)`}},
	} {
		code, _, body := e.do(t, http.MethodPost, "/admin/"+tc.path, bearer)
		assert.Equal(t, tc.want, code, "%s: %s", tc.path, body)
		var r struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r), body)
		assert.False(t, r.OK)
		for _, m := range tc.msgs {
			assert.Contains(t, r.Error, m, tc.path)
		}
	}
	down, _, _ := e.do(t, http.MethodGet, "/admin/state", bearer)
	assert.Equal(t, http.StatusOK, down)
	code, _, _ := e.do(t, http.MethodGet, "/admin/down", bearer)
	assert.Equal(t, http.StatusMethodNotAllowed, code)
}

// adminState is the part of GET /admin/state the tests read.
type adminState struct {
	Down      bool                `json:"down"`
	DownMode  string              `json:"down_mode"`
	Requests  map[string]int      `json:"requests"`
	Licenses  []admin.LicenseInfo `json:"licenses"`
	Instances []struct {
		GUID string `json:"guid"`
	} `json:"instances"`
	Sessions []struct {
		InstanceGUID string `json:"instance_guid"`
	} `json:"sessions"`
	Faults struct {
		Queued []struct {
			Kind string `json:"kind"`
			Left int    `json:"left"`
		} `json:"queued"`
		Latency map[string]string `json:"latency"`
		Skew    string            `json:"skew"`
	} `json:"faults"`
	Log     []admin.RequestInfo `json:"log"`
	Actions []struct {
		Command string `json:"command"`
	} `json:"actions"`
}

func (e *adminEnv) state(t *testing.T) (adminState, string) {
	t.Helper()
	code, _, body := e.do(t, http.MethodGet, "/admin/state", bearer)
	require.Equal(t, http.StatusOK, code, body)
	var st adminState
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	return st, body
}

func (e *adminEnv) command(t *testing.T, path string, q url.Values) {
	t.Helper()
	code, _, body := e.do(t, http.MethodPost, "/admin/"+path+"?"+q.Encode(), bearer)
	require.Equal(t, http.StatusOK, code, "%s %v: %s", path, q, body)
}

func TestAdminCommands(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t, admin.Options{})
	c := wiretest.NewClient(t, e.s, nil)

	// fail: the next register gets 503 with Retry-After.
	e.command(t, "fail", url.Values{"endpoint": {"register"}, "n": {"1"}, "status": {"503"}, "retry_after": {"7s"}})
	r := c.MustPost(t, licensetest.Register, wiretest.RegisterReq(1))
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	assert.Equal(t, "7", r.Header.Get("Retry-After"))
	reg := c.Register(t, 1)

	// fault: garbage.
	e.command(t, "fault", url.Values{"endpoint": {"register"}, "kind": {"garbage"}})
	raw, err := c.Post(licensetest.Register, wiretest.RegisterReq(1))
	require.NoError(t, err)
	assert.False(t, json.Valid(raw.Raw))

	// down (503), up, down (refuse) and up again.
	e.command(t, "down", url.Values{"mode": {"503"}})
	r = c.MustPost(t, licensetest.Register, wiretest.RegisterReq(1))
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	e.command(t, "up", nil)
	e.command(t, "down", url.Values{"on": {"true"}})
	st, _ := e.state(t)
	assert.True(t, st.Down)
	assert.Equal(t, "refuse", st.DownMode)
	_, err = c.Post(licensetest.Register, wiretest.RegisterReq(1))
	assert.Error(t, err)
	e.command(t, "down", url.Values{"on": {"0"}})

	// A timed outage ends by itself.
	e.command(t, "down", url.Values{"mode": {"reset"}, "for": {"10ms"}})
	require.Eventually(t, func() bool {
		r, err := c.Post(licensetest.Register, wiretest.RegisterReq(1))
		return err == nil && r.Status == http.StatusOK
	}, 10*time.Second, 5*time.Millisecond)

	// Sessions and state.
	b := c.Begin(t, reg.GUID, 1)
	st, body := e.state(t)
	assert.False(t, st.Down)
	assert.Len(t, st.Instances, 1)
	require.Len(t, st.Sessions, 1)
	assert.Equal(t, reg.GUID, st.Sessions[0].InstanceGUID)
	assert.Equal(t, 1, st.Requests[licensetest.Begin])
	assert.Equal(t, []admin.LicenseInfo{{ProductGUID: product, Key: key, Seats: 2, SeatsInUse: 1, Session: "1m0s",
		Grace: "1h0m0s", State: "active", Features: "a,b"}}, st.Licenses)
	assert.NotContains(t, body, b.Token, "the state never shows tokens")
	assert.NotContains(t, body, b.SessionKey)
	assert.NotContains(t, body, e.s.Info().APIKey)

	// The request log: endpoint, status, latency and fault; no payloads.
	var statuses []int
	var faults []string
	for _, r := range st.Log {
		statuses = append(statuses, r.Status)
		faults = append(faults, r.Fault)
	}
	assert.Equal(t, []int{503, 200, 200, 503, 200, 200}, statuses)
	assert.Equal(t, []string{"fail", "", "garbage", "", "", ""}, faults)
	assert.True(t, st.Log[3].Down)
	for i, r := range st.Log[1:] {
		assert.Equal(t, st.Log[i].Seq+1, r.Seq)
	}
	code, _, reqs := e.do(t, http.MethodGet, "/admin/requests?n=2", bearer)
	require.Equal(t, http.StatusOK, code)
	var last2 []admin.RequestInfo
	require.NoError(t, json.Unmarshal([]byte(reqs), &last2))
	assert.Equal(t, st.Log[len(st.Log)-2:], last2)
	assert.NotContains(t, reqs, key)

	// Licences.
	e.command(t, "control", url.Values{"product": {product}, "key": {key}, "session": {"30s"}, "grace": {"1m"}})
	l, _ := e.s.License(product, key)
	assert.Equal(t, 30*time.Second, l.SessionDuration)
	assert.Equal(t, time.Minute, l.GracePeriod)
	e.command(t, "revoke", url.Values{"product": {product}, "key": {key}})
	l, _ = e.s.License(product, key)
	assert.Equal(t, licensetest.Revoked, l.State)
	e.command(t, "reinstate", url.Values{"product": {product}, "key": {key}})
	e.command(t, "expire", url.Values{"product": {product}, "key": {key}})
	l, _ = e.s.License(product, key)
	assert.Equal(t, licensetest.Expired, l.State)
	e.command(t, "license", url.Values{"product": {"q"}, "key": {"k2"}, "seats": {"4"}, "session": {"2m"}, "features": {"x"}})
	l, ok := e.s.License("q", "k2")
	require.True(t, ok)
	assert.Equal(t, 4, l.Seats)

	// Persistent faults show in the state; clear removes them.
	e.command(t, "latency", url.Values{"endpoint": {"end"}, "d": {"1ms"}})
	e.command(t, "retry_after", url.Values{"d": {"3s"}})
	e.command(t, "content_type", url.Values{"endpoint": {"extend"}, "ct": {"text/plain"}})
	e.command(t, "skew", url.Values{"d": {"-1h"}})
	e.command(t, "fault", url.Values{"kind": {"drop"}, "n": {"-1"}, "endpoint": {"end"}})
	st, _ = e.state(t)
	assert.Equal(t, map[string]string{licensetest.End: "1ms"}, st.Faults.Latency)
	assert.Equal(t, "-1h0m0s", st.Faults.Skew)
	require.Len(t, st.Faults.Queued, 1)
	assert.Equal(t, -1, st.Faults.Queued[0].Left)
	e.command(t, "clear", nil)
	st, _ = e.state(t)
	assert.Empty(t, st.Faults.Latency)
	assert.Empty(t, st.Faults.Queued)
	assert.Equal(t, "0s", st.Faults.Skew)
	// The console lists the commands, without licence keys.
	var cmds []string
	for _, a := range st.Actions {
		cmds = append(cmds, a.Command)
		assert.NotContains(t, a.Command, key)
	}
	assert.Contains(t, cmds, "revoke key=… product="+product)
	assert.Contains(t, cmds, "clear")
}

func TestAdminConfigHasSecretsWithToken(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t, admin.Options{})
	code, _, body := e.do(t, http.MethodGet, "/admin/config", nil)
	require.Equal(t, http.StatusUnauthorized, code)
	assert.NotContains(t, body, e.s.Info().APIKey)
	code, _, body = e.do(t, http.MethodGet, "/admin/config", bearer)
	require.Equal(t, http.StatusOK, code)
	var in admin.ClientConfig
	require.NoError(t, json.Unmarshal([]byte(body), &in))
	assert.Equal(t, e.s.Info().APIKey, in.APIKey)
	assert.Equal(t, e.s.URL, in.URL)
	assert.Equal(t, e.base+"/admin/", in.AdminURL)
	assert.Equal(t, e.s.Info().PublicKey.KeyID(), in.KeyID)
	assert.NotEmpty(t, in.SharedSecret)
	assert.Equal(t, admin.ClientConfigOf(e.s).SharedSecret, in.SharedSecret)
}

// eventStream reads the data lines of the admin API's live stream.
type eventStream struct {
	sc *bufio.Scanner
}

// openEvents opens base/admin/events with the token; the stream is closed
// at cleanup.
func openEvents(t *testing.T, base string) *eventStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/admin/events", nil)
	require.NoError(t, err)
	bearer(req)
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	t.Cleanup(func() {
		resp.Body.Close()
		tr.CloseIdleConnections()
	})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	return &eventStream{sc: sc}
}

// next returns the data of the next event, failing the test if the stream
// ends first.
func (s *eventStream) next(t *testing.T) string {
	t.Helper()
	for s.sc.Scan() {
		if data, ok := strings.CutPrefix(s.sc.Text(), "data: "); ok {
			return data
		}
	}
	t.Fatalf("the event stream ended: %v", s.sc.Err())
	return ""
}

// TestAdminEvents reads the live stream: a state at once, and another when
// something changes.
func TestAdminEvents(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t, admin.Options{})
	events := openEvents(t, e.base)
	var first adminState
	require.NoError(t, json.Unmarshal([]byte(events.next(t)), &first))
	assert.Equal(t, "active", first.Licenses[0].State)
	e.command(t, "revoke", url.Values{"product": {product}, "key": {key}})
	for {
		var st adminState
		require.NoError(t, json.Unmarshal([]byte(events.next(t)), &st))
		if st.Licenses[0].State == "revoked" {
			return
		}
	}
}

func TestAdminCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	adm := admin.NewHandler(s, admin.Options{})
	assert.Len(t, adm.Token(), 32, "a random token by default")
	assert.NotEqual(t, adm.Token(), admin.NewHandler(s, admin.Options{}).Token())
	adm.Close()
	adm.Close()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/admin/state", nil)
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+adm.Token())
	adm.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
}

// TestLiveStreamOutlivesTimeouts: the admin API's event stream keeps
// delivering after the listener's read and write timeouts have passed.
func TestLiveStreamOutlivesTimeouts(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, wiretest.License())
	adm := admin.NewHandler(s, admin.Options{Token: adminToken})
	hs := httptest.NewUnstartedServer(adm)
	wiretest.RoomyHeaders.Apply(hs.Config)
	hs.Start()
	defer hs.Close()
	defer adm.Close()

	events := openEvents(t, hs.URL)
	next := func() string { return events.next(t) }
	first := next()
	assert.Contains(t, first, `"state":"active"`)
	time.Sleep(2 * wiretest.RoomyHeaders.Write) // past the read and write timeouts
	post, err := http.NewRequest(http.MethodPost, hs.URL+"/admin/revoke?"+url.Values{"product": {product}, "key": {key}}.Encode(), nil)
	require.NoError(t, err)
	bearer(post)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	presp, err := (&http.Client{Transport: tr}).Do(post)
	require.NoError(t, err)
	presp.Body.Close()
	revoked := false
	for !revoked {
		revoked = strings.Contains(next(), `"state":"revoked"`)
	}
}
