package license

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestSecretsNeverLeak runs a full lifecycle with failures of every kind,
// with Debug logging on and every error and event collected, in both
// envelope modes, and checks that no secret appears in any of them: not
// the API key, the licence key, a session token or session key the server
// issued, the shared secret, nor any plaintext payload or a distinctive
// value from one.
func TestSecretsNeverLeak(t *testing.T) {
	for _, mode := range []string{"public-key", "shared-secret"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { secretLifecycle(t, mode == "shared-secret") })
		})
	}
}

// randomHex returns n random bytes in hex: distinctive values, so that a
// substring check cannot pass or fail by accident.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// replyRecorder wraps a RoundTripper and keeps every response body, so the
// test learns every token and session key the server handed out.
type replyRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	bodies [][]byte
}

func (r *replyRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.mu.Unlock()
	var rest io.Reader = bytes.NewReader(body)
	if rerr != nil {
		rest = io.MultiReader(rest, errReader{rerr})
	}
	resp.Body = io.NopCloser(rest)
	return resp, nil
}

func (r *replyRecorder) all() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// collectStrings adds every string value stored under one of keys anywhere
// in a JSON document to out.
func collectStrings(doc []byte, keys map[string]bool, out map[string]bool) {
	var v any
	if json.Unmarshal(doc, &v) != nil {
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && keys[k] && s != "" {
					out[s] = true
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
}

// secretSink gathers everything the client said: logs, events and errors.
type secretSink struct {
	logs   testkit.LockedBuffer
	mu     sync.Mutex
	events []string
	errs   []string
	types  map[EventType]int
	states map[State]int
}

func (s *secretSink) event(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.types[e.Type]++
	if e.Type == EventStateChanged {
		s.states[e.State]++
	}
	txt := fmt.Sprintf("%+v %v %s", e, e, e.Detail)
	if e.Reason != nil {
		txt += " " + e.Reason.Error()
	}
	s.events = append(s.events, txt)
}

func (s *secretSink) err(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
}

// status records what a snapshot of c says, including its errors.
func (s *secretSink) status(c *Client) {
	st := c.Status()
	s.err(st.Reason)
	s.err(st.LastError)
	s.err(c.Err())
	s.mu.Lock()
	s.events = append(s.events, fmt.Sprintf("%+v %v", st, c))
	s.mu.Unlock()
}

// newSecretSink returns an empty sink and a Debug JSON logger that writes
// into it.
func newSecretSink() (*secretSink, *slog.Logger) {
	sink := &secretSink{types: map[EventType]int{}, states: map[State]int{}}
	return sink, slog.New(slog.NewJSONHandler(&sink.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// keyAndSecretOpener opens requests sealed to priv or with secret.
func keyAndSecretOpener(t *testing.T, priv *envelope.PrivateKey, secret []byte) envelope.Opener {
	t.Helper()
	hpke, err := envelope.NewOpener(priv)
	require.NoError(t, err)
	sso, err := envelope.NewSharedSecretOpener(secret)
	require.NoError(t, err)
	return envelope.MultiOpener(hpke, sso)
}

// failEachCall has each endpoint fail in turn at each status, through m's
// explicit call for it (a session is begun first for extend and end):
// fail(endpoint, status) arms the failure and fail(endpoint, 0) clears it.
// sink records each call's error and m's status after it.
func failEachCall(t *testing.T, ctx context.Context, m *Client, fail func(endpoint string, status int), statuses []int, sink *secretSink) {
	t.Helper()
	for _, status := range statuses {
		for _, ep := range wire.Endpoints {
			if ep == wire.Extend || ep == wire.End {
				require.NoError(t, m.BeginSession(ctx), "%d at %s", status, ep)
			}
			fail(ep, status)
			var err error
			switch ep {
			case wire.Register:
				_, err = m.Register(ctx)
			case wire.Begin:
				err = m.BeginSession(ctx)
			case wire.Extend:
				err = m.ExtendSession(ctx)
			default:
				err = m.EndSession(ctx)
			}
			sink.err(err)
			sink.status(m)
			fail(ep, 0)
		}
	}
}

func secretLifecycle(t *testing.T, shared bool) {
	const D, G = 10 * time.Minute, time.Hour
	apiKey := "APIKEY-" + randomHex(t, 16)
	licKey := "LICKEY-" + randomHex(t, 16)
	srv := licensetest.NewUnstartedServer(&licensetest.Config{APIKey: apiKey, TokenRotation: true})
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: licKey,
		SessionDuration: D, GracePeriod: G, Features: "export,pro"}))

	fp := testFingerprint()
	fp.MBSerial.Value = "MBSERIAL-" + randomHex(t, 12)
	fp.VolumeHash.Value = "VOLHASH-" + randomHex(t, 12)
	fp.CPUID.Value = "CPUID-" + randomHex(t, 12)
	fp.HostName.Value = "HOST-" + randomHex(t, 12)
	fp.Extra[0].Value = fp.MBSerial.Value
	email := "user-" + randomHex(t, 8) + "@example.com"
	attr := "ATTR-" + randomHex(t, 12)

	cfg := Config{ServerURL: srv.URL, APIKey: apiKey, ProductGUID: testProduct, LicenseKey: licKey,
		UserName: "Ada", UserEmail: email, UserAttributes: map[string]string{"team": attr}}
	if shared {
		cfg.SharedSecret = srv.Info().Secret
	} else {
		cfg.ServerPublicKey = srv.Info().PublicKey.EncodeBase64()
	}

	sink, logger := newSecretSink()
	rec := &replyRecorder{next: srv.Transport()}
	wall := &wallClock{}
	newClient := func(store StateStore, fp *fingerprint.Fingerprint) *Client {
		c, err := New(cfg, WithRoundTripper(rec), WithStateStore(store), WithEventHandler(sink.event),
			WithLogger(logger), fixedFingerprint(fp), WithTestHooks(TestHooks{WallClock: wall.now}),
			WithRetry(Retry{MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second}))
		require.NoError(t, err)
		return c
	}
	tokens := map[string]bool{}
	sessionKeys := map[string]bool{}
	snapTokens := func() {
		for _, s := range srv.Sessions() {
			tokens[s.Token] = true
			sessionKeys[s.SessionKey] = true
		}
	}
	ctx := context.Background()
	store := &MemoryStateStore{}

	// A start while the server is down, with no state: unreachable.
	srv.SetDown(true)
	early := newClient(&MemoryStateStore{}, fp)
	sink.err(early.Start(ctx))
	sink.status(early)
	sink.err(early.Close(ctx))
	srv.SetDown(false)

	// Register, begin, and a few quiet renewals.
	c := newClient(store, fp)
	require.NoError(t, c.Start(ctx))
	snapTokens()
	time.Sleep(25 * time.Minute)
	snapTokens()
	sink.status(c)

	// Renewals that fail: 503s beyond the transport's retries, a 429 with
	// Retry-After, a refused extend (404: end, then a fresh begin), a
	// garbage reply, a truncated one, a reply that looks sealed.
	steps := []func(){
		func() {
			srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Count: 3, Status: http.StatusServiceUnavailable})
		},
		func() {
			srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Count: 3,
				Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second})
		},
		func() {
			srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Count: 1, Status: http.StatusNotFound})
		},
		func() { srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultGarbage, Count: 3}) },
		func() {
			srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultTruncate, Count: 3})
		},
		func() { srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultBadSeal}) },
		func() {
			srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Count: 3, Status: http.StatusBadGateway})
		},
	}
	for _, step := range steps {
		step()
		time.Sleep(D)
		snapTokens()
		sink.status(c)
	}

	// An outage longer than the session: Grace. Manual calls fail too;
	// they go through a client without a renewal loop (see manual below).
	srv.SetDown(true)
	time.Sleep(D + 5*time.Minute)
	sink.status(c)
	manual := newClient(&MemoryStateStore{}, fp)
	_, err := manual.Register(ctx)
	sink.err(err)
	sink.err(manual.BeginSession(ctx))
	srv.SetDown(false)
	time.Sleep(2 * time.Minute)
	snapTokens()
	sink.status(c)

	// Connections reset instead of refused, briefly.
	srv.SetDownMode(licensetest.DownReset)
	srv.SetDown(true)
	time.Sleep(3 * time.Minute)
	srv.SetDown(false)
	srv.SetDownMode(licensetest.DownRefuse)
	time.Sleep(D)
	snapTokens()

	// Manual calls, failing with a 5xx and a 4xx. They use a client that
	// was never started: a manual call that waits out a retry backoff
	// holds the client's mutex, and a renewal loop blocked on a
	// sync.Mutex does not count as durably blocked, so the bubble's clock
	// would stop.
	require.NoError(t, manual.BeginSession(ctx))
	snapTokens()
	srv.Inject(licensetest.Fault{Endpoint: wire.End, Kind: licensetest.FaultFail, Count: 3, Status: http.StatusInternalServerError})
	sink.err(manual.EndSession(ctx))
	sink.err(manual.EndSession(ctx))
	require.NoError(t, manual.ExtendSession(ctx))
	srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Count: 1, Status: http.StatusBadRequest})
	sink.err(manual.ExtendSession(ctx))
	sink.status(manual)
	sink.err(manual.Close(ctx))
	time.Sleep(D)
	snapTokens()
	sink.status(c)

	// A second client on a tampered state, started offline then online.
	bad := store.Bytes()
	bad[len(bad)/2] ^= 0x40
	other := &MemoryStateStore{}
	_ = other.Save(context.Background(), bad)
	srv.SetDown(true)
	c2 := newClient(other, fp)
	sink.err(c2.Start(ctx))
	srv.SetDown(false)
	sink.err(c2.Start(ctx))
	snapTokens()
	sink.status(c2)
	sink.err(c2.Close(ctx))

	// A wall clock set back two hours while the server is down.
	srv.SetDown(true)
	wall.jump(-2 * time.Hour)
	time.Sleep(D)
	sink.status(c)
	wall.jump(2 * time.Hour)
	srv.SetDown(false)
	time.Sleep(D)
	snapTokens()

	// Revocation: the renewal is refused, and so is a new start.
	require.Equal(t, Active, c.Status().State, "the client survived every failure so far")
	require.NoError(t, srv.SetLicenseState(testProduct, licKey, licensetest.Revoked))
	time.Sleep(D)
	sink.status(c)
	require.Equal(t, Refused, c.Status().State)
	require.ErrorIs(t, c.Status().Reason, ErrRevoked)
	c3 := newClient(&MemoryStateStore{}, fp)
	sink.err(c3.Start(ctx))
	sink.err(c3.Close(ctx))
	sink.err(c.Close(ctx))
	sink.status(c)
	synctest.Wait()

	// Everything the server issued or was sent.
	for _, body := range rec.all() {
		collectStrings(body, map[string]bool{"token": true}, tokens)
		collectStrings(body, map[string]bool{"session_key": true}, sessionKeys)
	}
	var payloads [][]byte
	for _, r := range srv.Requests() {
		if len(r.Payload) > 0 {
			payloads = append(payloads, r.Payload)
			collectStrings(r.Payload, map[string]bool{"token": true}, tokens)
		}
	}

	// The test is not vacuous.
	logs := sink.logs.String()
	require.NotEmpty(t, logs)
	assert.Regexp(t, `"level":"DEBUG","msg":"transport attempt"`, logs, "no Debug request line")
	assert.Contains(t, logs, `"level":"WARN"`, "no Warn line")
	assert.GreaterOrEqual(t, len(tokens), 5, "tokens seen")
	assert.GreaterOrEqual(t, len(sessionKeys), 3, "session keys seen")
	assert.GreaterOrEqual(t, len(payloads), 20, "payloads seen")
	assert.Positive(t, sink.types[EventRenewFailed], "renewal failures")
	assert.Positive(t, sink.types[EventStateDiscarded], "state discarded")
	assert.Positive(t, sink.states[Grace], "Grace entered")
	assert.Positive(t, sink.states[Refused], "Refused entered")
	assert.GreaterOrEqual(t, len(sink.errs), 10, "errors collected")
	t.Logf("checked %d log bytes, %d event texts, %d error texts against %d tokens, %d session keys, %d payloads",
		len(logs), len(sink.events), len(sink.errs), len(tokens), len(sessionKeys), len(payloads))

	// The secrets, each in the forms it might be printed in.
	type secret struct{ name, value string }
	var secrets []secret
	add := func(name, v string) {
		if len(v) >= 8 {
			secrets = append(secrets, secret{name, v})
		}
	}
	add("api key", apiKey)
	add("licence key", licKey)
	for tok := range tokens {
		add("session token", tok)
	}
	for k := range sessionKeys {
		add("session key", k)
	}
	sec := srv.Info().Secret
	add("shared secret (raw)", string(sec))
	add("shared secret (hex)", hex.EncodeToString(sec))
	add("shared secret (base64)", base64.StdEncoding.EncodeToString(sec))
	add("shared secret (raw base64)", base64.RawStdEncoding.EncodeToString(sec))
	add("shared secret (base64url)", base64.RawURLEncoding.EncodeToString(sec))
	for _, v := range []string{fp.MBSerial.Value, fp.VolumeHash.Value, fp.CPUID.Value, fp.HostName.Value, email, attr} {
		add("payload value", v)
	}
	for _, p := range payloads {
		add("payload", string(p))
		quoted, _ := json.Marshal(string(p))
		add("payload (quoted)", strings.Trim(string(quoted), `"`))
	}

	texts := map[string]string{
		"logs":   logs,
		"events": strings.Join(sink.events, "\n"),
		"errors": strings.Join(sink.errs, "\n"),
	}
	for where, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s.value) {
				i := strings.Index(text, s.value)
				lo, hi := max(0, i-120), min(len(text), i+len(s.value)+40)
				t.Errorf("%s contain a %s: ...%s...", where, s.name, text[lo:hi])
			}
		}
	}
}

// randomKey returns a key in a vendor's usual shape: prefix, then groups of
// random letters and digits joined by sep. Letters beyond hex make a run of
// 8 of its characters as unlikely in other text as in a real key.
func randomKey(t *testing.T, prefix, sep string, groups, size int, alphabet string) string {
	t.Helper()
	b := make([]byte, groups*size)
	_, err := rand.Read(b)
	require.NoError(t, err)
	parts := []string{prefix}
	for g := range groups {
		var p strings.Builder
		for _, c := range b[g*size : (g+1)*size] {
			p.WriteByte(alphabet[int(c)%len(alphabet)])
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, sep)
}

// echoVariants are the ways a server was seen to repeat a key changed:
// case, separators stripped or swapped, cut to 8 or more characters,
// glued into other text, escaped.
func echoVariants(s string) []string {
	var esc, pct strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&esc, `\u%04x`, s[i])
		fmt.Fprintf(&pct, "%%%02X", s[i])
	}
	q, _ := json.Marshal(`{"key":"` + s + `"}`)
	mid := len(s) / 2
	return []string{
		strings.ToUpper(s),
		strings.ToLower(s),
		strings.ReplaceAll(strings.ReplaceAll(s, "-", ""), "_", ""),
		strings.NewReplacer("-", " ", "_", " ").Replace(s),
		strings.NewReplacer("-", ".", "_", ".").Replace(strings.ToUpper(s)),
		s[:11],
		strings.ToLower(s[len(s)-10:]),
		s[mid-6 : mid+6],
		"key=" + strings.ToUpper(s) + ";",
		"x" + strings.ReplaceAll(s, "-", "") + "0",
		string(q),
		esc.String(),
		url.QueryEscape(strings.ToLower(s)),
		pct.String(),
	}
}

// variantEcho is a licence server on loopback that passes requests to the
// mock until told to fail an endpoint; then it answers with the client's
// keys and its current session token and session key echoed changed
// (echoVariants), one variant per call, spread over the refusal message
// (sealed when asked, as the licence server's own words), the time field,
// an HTML page's title and body, and the Deprecation, Sunset and
// Retry-After headers.
type variantEcho struct {
	mock       http.Handler
	srv        *licensetest.Server
	opener     envelope.Opener
	keys       []string
	mu         sync.Mutex
	fail       map[string]int // endpoint -> status
	calls      int
	token, key string          // the client's current token and session key
	echoed     map[string]bool // every token and session key echoed
}

func (e *variantEcho) set(endpoint string, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail[endpoint] = status
}

// learn finds the session key of the client's current token.
func (e *variantEcho) learn() {
	for _, s := range e.srv.Sessions() {
		if s.Token == e.token {
			e.key = s.SessionKey
		}
	}
}

// pick returns the variant to echo in one place: over len(secrets) x 14
// consecutive calls, every secret meets every variant in every place.
func (e *variantEcho) pick(secrets []string, call, place int) string {
	v := echoVariants(secrets[(call/14+place)%len(secrets)])
	return v[call%len(v)]
}

func (e *variantEcho) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, plain, rs, err := openRequest(req, e.opener)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	ep := path.Base(req.URL.Path)
	e.mu.Lock()
	status := e.fail[ep]
	var p struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(plain, &p) == nil && p.Token != "" {
		e.token = p.Token
	}
	e.learn()
	secrets := append([]string(nil), e.keys...)
	for _, s := range []string{e.token, e.key} {
		if s != "" {
			secrets = append(secrets, s)
			e.echoed[s] = true
		}
	}
	call := e.calls
	e.calls++
	e.mu.Unlock()
	if status == 0 {
		req.Body = io.NopCloser(bytes.NewReader(raw))
		before := map[string]bool{}
		for _, s := range e.srv.Sessions() {
			before[s.Token] = true
		}
		e.mock.ServeHTTP(w, req)
		e.mu.Lock()
		for _, s := range e.srv.Sessions() {
			if !before[s.Token] { // issued to this call's client, the only one running
				e.token, e.key = s.Token, s.SessionKey
			}
		}
		e.mu.Unlock()
		return
	}
	h := w.Header()
	h.Set("Deprecation", "@"+e.pick(secrets, call, 3))
	h.Set("Sunset", e.pick(secrets, call, 4))
	h.Set("Retry-After", e.pick(secrets, call, 5))
	if status == http.StatusInternalServerError && call%2 == 0 {
		h.Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><head><title>%s</title></head><body>%s</body></html>",
			html.EscapeString(e.pick(secrets, call, 0)), html.EscapeString(e.pick(secrets, call, 1)))
		return
	}
	msg := "licence " + e.pick(secrets, call, 0) + " refused"
	reply, _ := json.Marshal(map[string]any{"success": false, "status": 0, "error": msg, "message": msg,
		"time": e.pick(secrets, call, 2)})
	if rs != nil && rs.Requested() {
		reply, _ = rs.SealReply(reply)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(reply)
}

// TestEchoedVariantsNeverLeak: a licence server on loopback that repeats
// the API key, the licence key, the session tokens and session keys
// upper- or lower-cased, with separators stripped or swapped, cut to 8 or
// more characters, glued into other text, or JSON-, \u00XX-, %XX- or
// URL-escaped, at 200, 400, 403, 404, 422, 500 and 503 on every endpoint,
// to explicit calls and to Start, with a Debug logger: no run of 8 of a
// secret's characters reaches a log line, an error, an event or Status.
func TestEchoedVariantsNeverLeak(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "public-key", true: "shared-secret"}[shared], func(t *testing.T) {
			echoVariantsLifecycle(t, shared)
		})
	}
}

func echoVariantsLifecycle(t *testing.T, shared bool) {
	const upper = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	const mixed = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	licKey := randomKey(t, "LK", "-", 5, 5, upper)
	apiKey := randomKey(t, "ak_live", "_", 1, 28, mixed)
	secret := []byte(randomKey(t, "SS", "-", 4, 8, mixed))
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	mock := licensetest.NewUnstartedServer(&licensetest.Config{APIKey: apiKey, PrivateKey: priv, Secret: secret, TokenRotation: true})
	defer mock.Close()
	require.NoError(t, mock.AddLicense(licensetest.License{ProductGUID: testProduct, Key: licKey,
		SessionDuration: 10 * time.Minute, GracePeriod: time.Hour, Features: "pro"}))
	keys := []string{licKey, apiKey}
	if shared {
		keys = append(keys, string(secret))
	}
	echo := &variantEcho{mock: mock.Handler(), srv: mock, opener: keyAndSecretOpener(t, priv, secret), keys: keys,
		fail: map[string]int{}, echoed: map[string]bool{}}
	front := httptest.NewServer(echo)
	defer front.Close()

	cfg := Config{ServerURL: front.URL + licensetest.BasePath, APIKey: apiKey, ProductGUID: testProduct, LicenseKey: licKey}
	if shared {
		cfg.SharedSecret = secret
	} else {
		cfg.ServerPublicKey = priv.Public().EncodeBase64()
	}
	sink, logger := newSecretSink()
	newClient := func() *Client {
		c, err := New(cfg, WithStateStore(&MemoryStateStore{}), WithEventHandler(sink.event), WithLogger(logger),
			fixedFingerprint(testFingerprint()),
			WithRetry(Retry{Attempts: 2, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}))
		require.NoError(t, err)
		return c
	}
	ctx := context.Background()
	statuses := []int{200, 400, 403, 404, 422, 500, 503}
	// Each failing call echoes one variant (of 14) of a secret (of 2 to 5)
	// in each place, cycling (pick): 3 rounds of the 28 explicit calls and
	// the 14 starts make over 14 x 5 failing calls.
	const rounds = 3

	// Explicit calls: each endpoint fails in turn, at each status.
	m := newClient()
	_, err = m.Register(ctx)
	require.NoError(t, err)
	for range rounds {
		failEachCall(t, ctx, m, echo.set, statuses, sink)
	}
	sink.err(m.Close(ctx))

	// Start, failing at register and at begin.
	for _, status := range statuses {
		for _, ep := range []string{wire.Register, wire.Begin} {
			echo.mu.Lock()
			echo.token, echo.key = "", "" // a new client knows no session yet
			echo.mu.Unlock()
			c := newClient()
			echo.set(ep, status)
			sink.err(c.Start(ctx))
			sink.status(c)
			echo.set(ep, 0)
			sink.err(c.Close(ctx))
			sink.status(c)
		}
	}

	logs := sink.logs.String()
	echo.mu.Lock()
	secrets := append([]string(nil), keys...)
	for s := range echo.echoed {
		secrets = append(secrets, s)
	}
	calls := echo.calls
	echo.mu.Unlock()
	require.GreaterOrEqual(t, len(secrets), 6, "tokens and session keys seen")
	require.Greater(t, calls, 14*(len(keys)+2))
	require.Positive(t, sink.states[Refused], "refusals seen")
	require.Contains(t, logs, `"level":"DEBUG"`)
	require.Contains(t, logs, "[redacted]", "the echo reached the client")
	texts := map[string]string{"logs": logs, "events": strings.Join(sink.events, "\n"),
		"errors": strings.Join(sink.errs, "\n")}
	t.Logf("%d calls; checked %d log bytes, %d event texts, %d error texts against %d secrets",
		calls, len(logs), len(sink.events), len(sink.errs), len(secrets))
	for where, text := range texts {
		for _, s := range secrets {
			if leak := testkit.FindLeak(text, s); leak != "" {
				t.Errorf("%s hold a run of a secret: %s", where, leak)
			}
		}
	}
	assert.Empty(t, testkit.FindLeak("x "+strings.ToLower(licKey)+" y", "unrelated-secret-value"), "the check itself")
	assert.NotEmpty(t, testkit.FindLeak("x "+strings.ToLower(licKey)+" y", licKey), "the check itself")
}
