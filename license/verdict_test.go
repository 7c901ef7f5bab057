package license

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// scripted is an in-memory server whose answers a test writes. With an
// opener it opens requests and seals its replies when asked, as a real
// licence server does; without one it is a fake server that cannot.
type scripted struct {
	opener envelope.Opener
	answer func(endpoint string, plain []byte) (status int, reply []byte)
}

func (s *scripted) RoundTrip(req *http.Request) (*http.Response, error) {
	_, plain, rs, err := openRequest(req, s.opener)
	if err != nil {
		return nil, err
	}
	status, reply := s.answer(path.Base(req.URL.Path), plain)
	if rs != nil && rs.Requested() {
		if sealed, err := rs.SealReply(reply); err == nil {
			reply = sealed
		}
	}
	return jsonResponse(req, status, nil, reply), nil
}

// jsonResponse is an HTTP reply with a JSON body.
func jsonResponse(req *http.Request, status int, h http.Header, body []byte) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1,
		ProtoMinor: 1, Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		Request: req}
}

// openRequest reads a v2 request and opens its data with opener (nil: it
// cannot). It returns the raw body too, to pass the request on.
func openRequest(req *http.Request, opener envelope.Opener) (raw, plain []byte, rs envelope.ReplySealer, err error) {
	raw, err = io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil || opener == nil {
		return raw, nil, nil, err
	}
	var outer wire.Request
	_ = json.Unmarshal(raw, &outer)
	ep := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
	if op, err := opener.Open(envelope.Incoming{Key: outer.Key, Data: outer.Data, Endpoint: ep}); err == nil {
		plain, rs = op.Plaintext, op.Reply
	}
	return raw, plain, rs, nil
}

// specSuccess answers every endpoint with the spec's success shape.
func specSuccess(token string) func(string, []byte) (int, []byte) {
	return func(ep string, _ []byte) (int, []byte) {
		co := `"control_options":{"session_duration":600,"validation_grace_period":3600}`
		switch ep {
		case wire.Register:
			return 200, []byte(`{"success":true,"time":"2025-01-01T00:00:00Z","guid":"inst-1",` + co + `,"first_registered_at":"2025-01-01T00:00:00Z"}`)
		case wire.Begin:
			return 200, []byte(`{"status":1,"time":"2025-01-01T00:00:00Z","session_key":"sk-0001","token":"` + token + `","features":"pro",` + co + `}`)
		case wire.Extend:
			return 200, []byte(`{"status":1,"time":"2025-01-01T00:00:00Z","token":"` + token + `",` + co + `}`)
		}
		return 200, []byte(`{"time":"2025-01-01T00:00:00Z"}`)
	}
}

// TestFakeServerCannotUnlock: a server without the vendor's key answering
// every call with the spec's success shape in plain JSON, as a hosts-file
// or DNS redirect to a home-made server does, cannot make a default client
// usable, in either envelope mode. With the opt-out it can, and the client
// says so in a warning.
func TestFakeServerCannotUnlock(t *testing.T) {
	t.Parallel()
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	secret, err := envelope.GenerateSecret()
	require.NoError(t, err)
	base := Config{ServerURL: "https://licensing.example/api/v2", APIKey: "api-key-1", ProductGUID: testProduct,
		LicenseKey: testLicense}
	for _, mode := range []string{"public-key", "shared-secret"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cfg := base
			if mode == "public-key" {
				cfg.ServerPublicKey = priv.Public().EncodeBase64()
			} else {
				cfg.SharedSecret = secret
			}
			fake := &scripted{answer: specSuccess("fake-token-1")}
			var logs lockedBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

			c, err := New(cfg, WithRoundTripper(fake), fixedFingerprint(testFingerprint()), WithLogger(logger),
				WithRetry(Retry{Attempts: 1}))
			require.NoError(t, err)
			err = c.Start(context.Background())
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.ErrorIs(t, err, ErrUnauthenticated)
			assert.NotErrorIs(t, err, ErrRefused)
			assert.False(t, c.Valid())
			assert.False(t, c.HasFeature("pro"))
			assert.Equal(t, Idle, c.Status().State)
			require.NoError(t, c.Close(context.Background()))
			assert.NotContains(t, logs.String(), "InsecureUnsealedReplies")

			cfg.InsecureUnsealedReplies = true
			c, err = New(cfg, WithRoundTripper(fake), fixedFingerprint(testFingerprint()), WithLogger(logger))
			require.NoError(t, err)
			require.NoError(t, c.Start(context.Background()))
			assert.True(t, c.HasFeature("pro"), "the opt-out trusts plain replies")
			require.NoError(t, c.ExtendSession(context.Background()))
			require.NoError(t, c.Close(context.Background()))
			assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN msg=\"InsecureUnsealedReplies is set"), logs.String())
		})
	}
}

// authSealer is an envelope sealer that says its replies are authenticated.
type authSealer struct{ envelope.Sealer }

func (authSealer) RepliesAuthenticated() bool { return true }

// TestCustomSealerMustAuthenticateReplies: WithSealer needs a sealer that
// says it authenticates replies, or the opt-out.
func TestCustomSealerMustAuthenticateReplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{features: "pro"})
		plain, err := envelope.NewSealer(e.srv.Info().PublicKey)
		require.NoError(t, err)
		sealed, err := envelope.NewSealer(e.srv.Info().PublicKey, envelope.WithSealedReplies())
		require.NoError(t, err)
		cfg := e.config()
		cfg.ServerPublicKey = ""

		_, err = New(cfg, e.options(WithSealer(plain))...)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorContains(t, err, "RepliesAuthenticated")

		c, err := New(cfg, e.options(WithSealer(authSealer{sealed}))...)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		assert.True(t, c.HasFeature("pro"))
		require.NoError(t, c.Close(context.Background()))

		cfg.InsecureUnsealedReplies = true
		c, err = New(cfg, e.options(WithSealer(plain), WithStateStore(&MemoryStateStore{}))...)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		require.NoError(t, c.Close(context.Background()))
	})
}

// TestSealedByDefault: the default client asks for sealed replies in both
// modes, and the mock seals every reply it sends it.
func TestSealedByDefault(t *testing.T) {
	for _, shared := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			cfg := e.config()
			if shared {
				cfg.ServerPublicKey, cfg.SharedSecret = "", e.srv.Info().Secret
			}
			c, err := New(cfg, e.options()...)
			require.NoError(t, err)
			require.NoError(t, c.Start(context.Background()))
			require.NoError(t, c.Close(context.Background()))
			reqs := e.srv.Requests()
			require.NotEmpty(t, reqs)
			for _, r := range reqs {
				assert.True(t, r.Sealed, "%s reply sealed (shared=%v)", r.Endpoint, shared)
			}
		})
	}
}

// TestRefusalTextsOfAnotherServer runs the client against the mock with a
// second, differently worded set of refusal texts: the default rules see
// plain refusals, the vendor's rules see the kinds.
func TestRefusalTextsOfAnotherServer(t *testing.T) {
	texts := licensetest.RefusalTexts{
		Revoked:         "Your subscription was cancelled by the publisher.",
		Expired:         "Term ended - please renew",
		SeatLimit:       "Maximum concurrent activations exceeded",
		UnknownInstance: "Device not registered",
	}
	rules := RefusalRules{
		{Kind: RefusalRevoked, Phrase: "subscription was cancelled"},
		{Kind: RefusalExpired, Phrase: "term ended"},
		{Kind: RefusalSeatLimit, Phrase: "concurrent activations"},
		{Kind: RefusalUnknownInstance, Phrase: "device not registered"},
	}
	cases := []struct {
		name  string
		setup func(e *env)
		want  error
	}{
		{"revoked", func(e *env) { require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked)) }, ErrRevoked},
		{"expired", func(e *env) { require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Expired)) }, ErrExpired},
		{"seat limit", func(e *env) { e.start(WithStateStore(&MemoryStateStore{})) }, ErrSeatLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{seats: 1, serverCfg: &licensetest.Config{RefusalTexts: texts}})
				tc.setup(e)
				for _, vendor := range []bool{false, true} {
					var opts []Option
					if vendor {
						opts = append(opts, WithRefusalRules(rules))
					}
					c := e.newClient(e.config(), append(opts, WithStateStore(&MemoryStateStore{}))...)
					err := c.Start(context.Background())
					assert.ErrorIs(t, err, ErrRefused)
					assert.NotErrorIs(t, err, ErrUnreachable)
					if vendor {
						assert.ErrorIs(t, err, tc.want, "vendor rules")
					} else {
						for _, k := range []error{ErrRevoked, ErrExpired, ErrSeatLimit, ErrUnknownInstance} {
							assert.NotErrorIs(t, err, k, "the default rules do not guess at %q", err)
						}
					}
					_ = c.Close(context.Background())
				}
			})
		})
	}
}

// TestUnknownInstanceWithVendorWording: the re-register-once rule follows
// the vendor's rules too.
func TestUnknownInstanceWithVendorWording(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		texts := licensetest.RefusalTexts{UnknownInstance: "Device not registered"}
		e := newEnv(t, envConfig{serverCfg: &licensetest.Config{RefusalTexts: texts}})
		rules := append(DefaultRefusalRules(), RefusalRule{Kind: RefusalUnknownInstance, Endpoint: wire.Begin, Phrase: "device not registered"})
		c := e.newClient(e.config(), WithRefusalClassifier(rules.Classify))
		// A state that names an instance the server never saw.
		_, err := c.Register(context.Background())
		require.NoError(t, err)
		c.st.InstanceGUID = "00000000-0000-0000-0000-000000000000"
		require.NoError(t, c.BeginSession(context.Background()))
		assert.Equal(t, 2, e.srv.Count(wire.Register), "registered again once")
		require.NoError(t, c.Close(context.Background()))
	})
}

// TestConfigTooLargeToSeal: New rejects values that cannot fit the 1 MiB
// envelope, before any request.
func TestConfigTooLargeToSeal(t *testing.T) {
	t.Parallel()
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	ok := Config{ServerURL: "https://licensing.example/api/v2", APIKey: "k", ServerPublicKey: priv.Public().EncodeBase64(),
		ProductGUID: "p", LicenseKey: "l"}
	big := strings.Repeat("x", 2<<20)
	cases := map[string]func(*Config){
		"licence key 2 MiB":  func(c *Config) { c.LicenseKey = big },
		"user attributes":    func(c *Config) { c.UserAttributes = map[string]string{"a": big[:400<<10], "b": big[:400<<10]} },
		"user name":          func(c *Config) { c.UserName = big[:800<<10] },
		"API key over 16KiB": func(c *Config) { c.APIKey = big[:17<<10] },
	}
	for name, mutate := range cases {
		cfg := ok
		mutate(&cfg)
		_, err := New(cfg)
		assert.ErrorIs(t, err, ErrInvalidConfig, name)
		assert.Less(t, len(err.Error()), 500, "the error does not quote the value")
	}
	cfg := ok
	cfg.UserAttributes = map[string]string{"notes": big[:200<<10]}
	_, err = New(cfg)
	assert.NoError(t, err, "200 KiB of attributes fit")
}

// TestTokenTooLargeForNextRequest: a sealed, authentic reply whose token
// would make the next request unsealable is a malformed reply (unreachable),
// logged once, not a failure loop of unsealable requests.
func TestTokenTooLargeForNextRequest(t *testing.T) {
	t.Parallel()
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	opener, err := envelope.NewOpener(priv)
	require.NoError(t, err)
	huge := strings.Repeat("t", 784000)
	srv := &scripted{opener: opener, answer: specSuccess(huge)}
	var logs lockedBuffer
	c, err := New(Config{ServerURL: "https://licensing.example/api/v2", APIKey: "api-key-1",
		ServerPublicKey: priv.Public().EncodeBase64(), ProductGUID: testProduct, LicenseKey: testLicense},
		WithRoundTripper(srv), fixedFingerprint(testFingerprint()),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	defer c.Close(context.Background())
	err = c.Start(context.Background())
	assert.ErrorIs(t, err, ErrUnreachable)
	assert.ErrorIs(t, err, ErrMalformedReply)
	assert.ErrorContains(t, err, "token too large")
	for range 3 {
		assert.ErrorIs(t, c.BeginSession(context.Background()), ErrMalformedReply)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "msg=\"malformed reply: the next request could not be sealed"), "logged once: %s", logs.String())
	assert.NotContains(t, logs.String(), huge[:64])
	assert.False(t, c.Valid())
}

// TestUnsealableRequestIsClientFault: a sealer that fails is a client
// fault, not a refusal and not "unreachable".
func TestUnsealableRequestIsClientFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		cfg := e.config()
		cfg.ServerPublicKey = ""
		c := e.newClient(cfg, WithSealer(failingSealer{}))
		err := c.Start(context.Background())
		assert.ErrorIs(t, err, ErrClientFault)
		assert.NotErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrRefused)
		assert.Equal(t, "license: register_instance: request cannot be sealed (hsm offline)", err.Error())
		require.NoError(t, c.Close(context.Background()))
	})
}

type failingSealer struct{}

func (failingSealer) Seal(envelope.Request, []byte) (envelope.Sealed, error) {
	return envelope.Sealed{}, fmt.Errorf("vendor sealer: hsm offline")
}
func (failingSealer) RepliesAuthenticated() bool { return true }

// echoServer passes requests to the mock until told to fail an endpoint;
// then it answers with every secret it knows, and the request's payload,
// in the failure text (sealed when asked, as the licence server's own
// words), in the time field and in Deprecation and Sunset headers.
type echoServer struct {
	next    http.RoundTripper
	srv     *licensetest.Server
	opener  envelope.Opener
	fixed   []string
	mu      sync.Mutex
	fail    map[string]int  // endpoint -> status
	before  map[string]bool // tokens of other clients, issued before this one
	tokens  map[string]bool
	keys    map[string]bool
	payload map[string]bool
}

func (s *echoServer) set(endpoint string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if endpoint == "" {
		for _, ep := range wire.Endpoints {
			s.fail[ep] = status
		}
		return
	}
	s.fail[endpoint] = status
}

func (s *echoServer) learn() {
	for _, ss := range s.srv.Sessions() {
		if s.before[ss.Token] {
			continue
		}
		s.tokens[ss.Token] = true
		s.keys[ss.SessionKey] = true
	}
}

func (s *echoServer) RoundTrip(req *http.Request) (*http.Response, error) {
	raw, plain, rs, err := openRequest(req, s.opener)
	if err != nil {
		return nil, err
	}
	ep := path.Base(req.URL.Path)
	s.mu.Lock()
	status := s.fail[ep]
	s.learn()
	s.payload[string(plain)] = true
	var p struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(plain, &p) == nil && p.Token != "" {
		s.tokens[p.Token] = true
	}
	echo := append([]string(nil), s.fixed...)
	for tok := range s.tokens {
		echo = append(echo, tok)
	}
	for k := range s.keys {
		echo = append(echo, k)
	}
	s.mu.Unlock()
	if status == 0 {
		fwd := req.Clone(req.Context())
		fwd.Body = io.NopCloser(bytes.NewReader(raw))
		resp, err := s.next.RoundTrip(fwd)
		if err == nil {
			s.mu.Lock()
			s.learn()
			s.mu.Unlock()
		}
		return resp, err
	}
	text := "no: " + strings.Join(echo, " ") + " payload " + string(plain)
	reply, _ := json.Marshal(map[string]any{"success": false, "time": text, "error": text})
	if rs != nil && rs.Requested() {
		reply, _ = rs.SealReply(reply)
	}
	h := http.Header{}
	h.Set("Deprecation", "echo "+strings.Join(echo, " "))
	h.Set("Sunset", strings.Join(echo, ","))
	return jsonResponse(req, status, h, reply), nil
}

// TestEchoingServerLeaksNothing: a server that repeats every secret the
// client holds (API key, licence key, shared secret raw and base64, every
// token and session key) and the whole payload in every endpoint's failure
// text, at 200, 400, 403, 404, 422, 500 and 503, with a Debug logger: no
// secret reaches a log line, an error string, an event or Status. The
// redactor is what makes this pass.
func TestEchoingServerLeaksNothing(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "public-key", true: "shared-secret"}[shared], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { echoLifecycle(t, shared) })
		})
	}
}

func echoLifecycle(t *testing.T, shared bool) {
	const D = 10 * time.Minute
	apiKey := "APIKEY-" + randomHex(t, 16)
	licKey := "LICKEY-" + randomHex(t, 16)
	secret := []byte("SHARED-SECRET-" + randomHex(t, 16)) // printable, so JSON carries it raw
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	srv := licensetest.NewUnstartedServer(&licensetest.Config{APIKey: apiKey, PrivateKey: priv, Secret: secret, TokenRotation: true})
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: licKey,
		SessionDuration: D, GracePeriod: time.Hour, Features: "pro"}))
	fixed := []string{apiKey, licKey}
	if shared {
		fixed = append(fixed, string(secret), base64.StdEncoding.EncodeToString(secret), hex.EncodeToString(secret))
	}
	opener := keyAndSecretOpener(t, priv, secret)
	// One echo server per client: it echoes that client's tokens and
	// session keys, the secrets the client knows.
	var echoes []*echoServer
	newEcho := func() *echoServer {
		e := &echoServer{next: srv.Transport(), srv: srv, opener: opener, fixed: fixed, fail: map[string]int{},
			before: map[string]bool{}, tokens: map[string]bool{}, keys: map[string]bool{}, payload: map[string]bool{}}
		for _, ss := range srv.Sessions() {
			e.before[ss.Token] = true
		}
		echoes = append(echoes, e)
		return e
	}

	fp := testFingerprint()
	fp.HostName.Value = "HOST-" + randomHex(t, 12)
	cfg := Config{ServerURL: srv.URL, APIKey: apiKey, ProductGUID: testProduct, LicenseKey: licKey,
		UserEmail: "user-" + randomHex(t, 8) + "@example.com"}
	if shared {
		cfg.SharedSecret = secret
	} else {
		cfg.ServerPublicKey = priv.Public().EncodeBase64()
	}
	sink, logger := newSecretSink()
	newClient := func(echo *echoServer) *Client {
		c, err := New(cfg, WithRoundTripper(echo), WithStateStore(&MemoryStateStore{}), WithEventHandler(sink.event),
			WithLogger(logger), fixedFingerprint(fp),
			WithRetry(Retry{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}))
		require.NoError(t, err)
		return c
	}
	ctx := context.Background()
	statuses := []int{200, 400, 403, 404, 422, 500, 503}

	// Explicit calls: each endpoint fails in turn, at each status.
	echo := newEcho()
	m := newClient(echo)
	_, err = m.Register(ctx)
	require.NoError(t, err)
	failEachCall(t, ctx, m, echo.set, statuses, sink)
	sink.err(m.Close(ctx))

	// The renewal loop: every call fails at each status in turn.
	for _, status := range statuses {
		echo := newEcho()
		c := newClient(echo)
		require.NoError(t, c.Start(ctx))
		echo.set("", status)
		time.Sleep(D + time.Minute)
		sink.status(c)
		sink.err(c.Close(ctx))
		sink.status(c)
		echo.set("", 0)
	}
	synctest.Wait()

	logs := sink.logs.String()
	require.Positive(t, sink.states[Refused], "refusals seen")
	require.Positive(t, sink.states[Grace], "grace seen")
	require.Positive(t, sink.types[EventDeprecated], "deprecation events seen")
	require.Contains(t, logs, "[redacted]", "the echo reached the client")
	texts := map[string]string{"logs": logs, "events": strings.Join(sink.events, "\n"), "errors": strings.Join(sink.errs, "\n")}
	secrets := append([]string(nil), fixed...)
	for _, echo := range echoes {
		echo.mu.Lock()
		for tok := range echo.tokens {
			secrets = append(secrets, tok)
		}
		for k := range echo.keys {
			secrets = append(secrets, k)
		}
		for p := range echo.payload {
			if len(p) > 16 {
				secrets = append(secrets, p)
			}
		}
		echo.mu.Unlock()
	}
	secrets = append(secrets, fp.HostName.Value, cfg.UserEmail)
	require.GreaterOrEqual(t, len(secrets), 20)
	for where, text := range texts {
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("%s contain a secret: ...%s...", where, text[max(0, i-100):min(len(text), i+len(s)+20)])
			}
		}
	}
}

// TestAPIKeyOptionalWithSealer: a custom sealer owns the request's "key"
// field, so APIKey is required only for the built-in modes.
func TestAPIKeyOptionalWithSealer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		sealed, err := envelope.NewSealer(e.srv.Info().PublicKey, envelope.WithSealedReplies())
		require.NoError(t, err)
		cfg := e.config()
		cfg.APIKey = ""

		_, err = New(cfg, e.options()...)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorContains(t, err, "APIKey is empty")

		cfg.ServerPublicKey = ""
		_, err = New(cfg, e.options(WithSealer(authSealer{sealed}))...)
		assert.NoError(t, err)
	})
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func sealedConfig(e *env) Config {
	cfg := e.config()
	cfg.InsecureUnsealedReplies = false
	return cfg
}

// TestRelabelledSealedSuccessDoesNotRefuse: the path rewrites the status of
// a sealed 200 to 403. The sealed plaintext is a success, so this is a
// protocol error (unreachable), never a refusal, at Start and in renewal.
func TestRelabelledSealedSuccessDoesNotRefuse(t *testing.T) {
	for _, status := range []int{403, 404, 409, 422} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				rw := &rewrite{next: e.srv.Transport(), fn: func(r *http.Response) *http.Response {
					if r.StatusCode != http.StatusOK {
						return r
					}
					r.StatusCode, r.Status = status, http.StatusText(status)
					return r
				}}
				// At Start: begin_session's sealed 200 relabelled.
				rw.armed.Store(true)
				rw.endpoint = wire.Begin
				c := e.newClient(sealedConfig(e), WithRoundTripper(rw))
				err := c.Start(context.Background())
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrUnreachable)
				assert.NotErrorIs(t, err, ErrRefused)
				assert.ErrorIs(t, err, ErrMalformedReply)
				assert.NotEqual(t, Refused, c.Status().State)
				require.NoError(t, c.Close(context.Background()))

				// In renewal: extend_session's sealed 200 relabelled.
				rw.armed.Store(false)
				c = e.newClient(sealedConfig(e), WithRoundTripper(rw))
				require.NoError(t, c.Start(context.Background()))
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				rw.endpoint = wire.Extend
				rw.armed.Store(true)
				_, err = lapse(e, c)
				assert.Equal(t, Grace, c.Status().State)
				assert.ErrorIs(t, err, ErrUnreachable)
				assert.NotErrorIs(t, err, ErrRefused)
			})
		})
	}
}

// TestSealedFailureRefusesAtAnyStatus: a sealed failure in the spec's shape
// is the server's word whether it comes with 200 or a 4xx; the same sealed
// failure under 5xx, 429, 408 or 407 is unreachable.
func TestSealedFailureRefusesAtAnyStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		cat    error
	}{
		{200, ErrRefused}, {400, ErrRefused}, {403, ErrRefused}, {404, ErrRefused}, {409, ErrRefused},
		{500, ErrUnreachable}, {503, ErrUnreachable}, {429, ErrUnreachable}, {408, ErrUnreachable}, {407, ErrUnreachable},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultFail, Count: -1,
					Status: tc.status, Message: "license revoked"})
				c := e.newClient(sealedConfig(e))
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				err := c.Start(context.Background())
				checkCategory(t, tc.cat, err)
				if tc.cat == ErrRefused {
					assert.ErrorIs(t, err, ErrRevoked)
					assert.Equal(t, Refused, c.Status().State)
				} else {
					assert.NotEqual(t, Refused, c.Status().State)
				}
				for _, r := range e.srv.Requests() {
					if r.Endpoint == wire.Begin && tc.status != 500 {
						assert.True(t, r.Sealed, "the failure was sealed")
					}
				}
			})
		})
	}
}

// TestEnvelopeAtAnotherEndpointIsUnreachable: the path posts the client's
// extend_session envelope to /end_session. The server rejects it as
// unauthentic and ends nothing; the client stays in grace, never Refused.
func TestEnvelopeAtAnotherEndpointIsUnreachable(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
			next := e.srv.Transport()
			var armed atomic.Bool
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if armed.Load() && toEndpoint(r, wire.Extend) {
					r = r.Clone(r.Context())
					r.URL.Path = strings.TrimSuffix(r.URL.Path, wire.Extend) + wire.End
				}
				return next.RoundTrip(r)
			})
			cfg := e.config()
			cfg.InsecureUnsealedReplies = !sealed
			c := e.newClient(cfg, WithRoundTripper(rt))
			require.NoError(t, c.Start(context.Background()))
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			armed.Store(true)
			_, err := lapse(e, c)
			assert.Equal(t, Grace, c.Status().State)
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.NotErrorIs(t, err, ErrRefused)
			var ee *EnvelopeError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, envelope.CodeUnauthentic, ee.Code)
			require.Positive(t, countRejected(e.srv, wire.End))
			assert.Equal(t, e.srv.Count(wire.End), countRejected(e.srv, wire.End), "a moved envelope was processed")
		})
	}
}

func countRejected(s *licensetest.Server, ep string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Endpoint == ep && r.Rejected != "" {
			n++
		}
	}
	return n
}

// TestClockOffsetCorrected: a machine whose clock is an hour slow gets a
// stale-timestamp rejection, learns the offset from the server's time,
// retries once and starts; later calls carry the corrected time.
func TestClockOffsetCorrected(t *testing.T) {
	for _, skew := range []time.Duration{-time.Hour, time.Hour, 3 * time.Hour} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			e.wall.jump(skew)
			c := e.start(WithRoundTripper(e.srv.Transport()))
			assert.Equal(t, Active, c.Status().State)
			assert.Equal(t, 1, countRejected(e.srv, wire.Register), "one stale rejection, then the corrected retry")
			assert.Zero(t, countRejected(e.srv, wire.Begin), "the offset is kept")
			time.Sleep(30 * time.Minute)
			synctest.Wait()
			assert.Equal(t, Active, c.Status().State)
			assert.Zero(t, countRejected(e.srv, wire.Extend))
		})
	}
}

// TestClockSkewError: a server that keeps rejecting the timestamp (here a
// path that always answers stale) ends in a typed ErrClockSkew, in the
// unreachable category: grace applies and nothing is refused.
func TestClockSkewError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		var stale atomic.Bool
		next := e.srv.Transport()
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if !stale.Load() {
				return next.RoundTrip(r)
			}
			status, body := envelope.RejectionReply(&envelope.Error{Op: "admit", Err: envelope.ErrStale}, time.Now().Add(2*time.Hour))
			return replaceBody(&http.Response{Body: http.NoBody, Request: r}, status, body, nil), nil
		})
		c := e.start(WithRoundTripper(rt))
		stale.Store(true)
		_, err := lapse(e, c)
		assert.Equal(t, Grace, c.Status().State)
		assert.ErrorIs(t, err, ErrClockSkew)
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrRefused)
		var cs *ClockSkewError
		require.ErrorAs(t, err, &cs)
		assert.InDelta(t, float64(2*time.Hour), float64(cs.Offset), float64(2*time.Second))
		assert.Contains(t, err.Error(), "check this machine's clock")
	})
}

// customSealer is a vendor scheme: it owns the request's key field and sees
// every request's endpoint and timestamp.
type customSealer struct {
	inner envelope.Sealer
	seen  chan envelope.Request
}

func (s *customSealer) Seal(req envelope.Request, plaintext []byte) (envelope.Sealed, error) {
	s.seen <- req
	sd, err := s.inner.Seal(req, plaintext)
	sd.Key = "wrapped-content-key"
	return sd, err
}

func (s *customSealer) RepliesAuthenticated() bool { return s.inner.RepliesAuthenticated() }

// TestCustomSealerOwnsKey: WithSealer's scheme chooses the request's "key"
// and is told the endpoint and the (offset-corrected) timestamp.
func TestCustomSealerOwnsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		inner, err := envelope.NewSealer(e.srv.Info().PublicKey, envelope.WithSealedReplies())
		require.NoError(t, err)
		cs := &customSealer{inner: inner, seen: make(chan envelope.Request, 16)}
		keys := make(chan string, 16)
		next := e.srv.Transport()
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			var body wire.Request
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &body)
			keys <- body.Key
			r.Body = io.NopCloser(bytes.NewReader(b))
			return next.RoundTrip(r)
		})
		cfg := e.config()
		cfg.ServerPublicKey = ""
		c := e.newClient(cfg, WithSealer(cs), WithRoundTripper(rt))
		defer c.Close(context.Background())
		err = c.Start(context.Background())
		// licensetest knows only its API key: the custom key is rejected
		// at the envelope level, which is unreachable, not a refusal.
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrUnreachable)
		var ee *EnvelopeError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, envelope.CodeUnauthentic, ee.Code)
		assert.Equal(t, "wrapped-content-key", <-keys)
		req := <-cs.seen
		assert.Equal(t, wire.Register, req.Endpoint)
		assert.Equal(t, e.srv.Info().APIKey, req.APIKey)
		assert.WithinDuration(t, e.wall.now(), req.Time, time.Second)
	})
}

// Defences that must not be turned against a paying customer (issue 21,
// sections 1, 3 and 5): a forged stale rejection, a forged end_session
// answer, a lost begin reply, a capacity refusal and a Deprecation header.

// forger is the network path: while armed > 0 it answers requests to
// endpoint ("" for all) itself, without forwarding them, with answer; each
// answer uses one of armed.
type forger struct {
	next     http.RoundTripper
	endpoint string
	armed    atomic.Int32
	answer   func(*http.Request) *http.Response
}

func (f *forger) RoundTrip(r *http.Request) (*http.Response, error) {
	if toEndpoint(r, f.endpoint) && f.armed.Add(-1) >= 0 {
		return f.answer(r), nil
	}
	return f.next.RoundTrip(r)
}

func plainReply(r *http.Request, status int, body []byte) *http.Response {
	return replaceBody(&http.Response{Body: http.NoBody, Request: r}, status, body, nil)
}

// staleAt answers with a plain stale-timestamp rejection carrying t as the
// server's time: what anyone on the path can send.
func staleAt(t time.Time) func(*http.Request) *http.Response {
	return func(r *http.Request) *http.Response {
		status, body := envelope.RejectionReply(&envelope.Error{Op: "admit", Err: envelope.ErrStale}, t)
		return plainReply(r, status, body)
	}
}

var forgedTimes = []struct {
	name string
	at   func() time.Time
}{
	{"past-1969", func() time.Time { return time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC) }},
	{"far-future", func() time.Time { return time.Now().AddDate(80, 0, 0) }},
	{"future-5y", func() time.Time { return time.Now().AddDate(5, 0, 0) }},
}

// forgeStale runs test once per forged time, as a subtest in a synctest
// bubble, with an env (10-minute sessions, an hour of grace) and a path
// that answers endpoint with a plain stale rejection at that time (once
// armed).
func forgeStale(t *testing.T, endpoint string, test func(t *testing.T, e *env, path *forger)) {
	for _, ft := range forgedTimes {
		t.Run(ft.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				test(t, e, &forger{next: e.srv.Transport(), endpoint: endpoint, answer: staleAt(ft.at())})
			})
		})
	}
}

// TestForgedStaleRejectionInRenewal: the path answers one extend_session
// with a plain stale rejection in 1969 or far in the future. It costs at
// most one retry: the forged offset is never kept, every later renewal
// reaches the server with the machine's own time, and the client stays
// Active for hours.
func TestForgedStaleRejectionInRenewal(t *testing.T) {
	forgeStale(t, wire.Extend, func(t *testing.T, e *env, path *forger) {
		c := e.start(WithRoundTripper(path))
		path.armed.Store(1)
		extends := e.srv.Count(wire.Extend)
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		assert.Equal(t, Active, c.Status().State)
		assert.Greater(t, e.srv.Count(wire.Extend)-extends, 10, "renewals reach the server")
		assert.LessOrEqual(t, countRejected(e.srv, wire.Extend), 1,
			"the forged offset reached the server more than once")
		c.lock(context.Background())
		assert.Zero(t, c.integ.offset, "a forged offset was kept")
		c.unlock()
	})
}

// TestForgedStaleRejectionAtStart: the same forgery answers the first
// register_instance of Start. Start (retried once at most, by the caller)
// reaches the server and the client is Active.
func TestForgedStaleRejectionAtStart(t *testing.T) {
	forgeStale(t, wire.Register, func(t *testing.T, e *env, path *forger) {
		path.armed.Store(1)
		c := e.newClient(e.config(), WithRoundTripper(path))
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		err := c.Start(context.Background())
		if err != nil {
			assert.ErrorIs(t, err, ErrUnreachable)
			err = c.Start(context.Background())
		}
		require.NoError(t, err, "a forged rejection cost more than one retry")
		assert.Equal(t, Active, c.Status().State)
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, Active, c.Status().State)
	})
}

// TestForgedStaleRejectionShared: in shared mode the path forges one
// rejection for the renewer. The renewer is not stuck, so neither it nor
// the follower that depends on it loses the licence.
func TestForgedStaleRejectionShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		path := &forger{next: e.srv.Transport(), endpoint: wire.Extend,
			answer: staleAt(time.Date(1969, 7, 20, 0, 0, 0, 0, time.UTC))}
		r := e.mustStartIn(dir, append(sharedIn(records), WithRoundTripper(path))...)
		f := e.mustStartIn(dir, sharedIn(records)...)
		require.Equal(t, Renewer, r.Shared().Role)
		require.Equal(t, Follower, f.Shared().Role)
		path.armed.Store(1)
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		assert.Equal(t, Active, r.Status().State)
		assert.Equal(t, Active, f.Status().State, "the stuck renewer held the follower hostage")
	})
}

// TestRequestTimeBounded: an offset that would stamp requests before the
// release year or absurdly far ahead is not used.
func TestRequestTimeBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		c := e.newClient(e.config())
		c.opts.timeFloor = time.Time{} // the release floor
		e.wall.jump(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Sub(e.wall.now()))
		for _, off := range []time.Duration{-60 * 365 * 24 * time.Hour, 200 * 365 * 24 * time.Hour} {
			c.integ.offset = off
			assert.WithinDuration(t, e.wall.now(), c.requestTime(), time.Second)
		}
		c.integ.offset = time.Hour
		assert.WithinDuration(t, e.wall.now().Add(time.Hour), c.requestTime(), time.Second)
	})
}

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

// levelCounter is a slog handler that counts records at or above a level
// and keeps their messages.
type levelCounter struct {
	min  slog.Level
	n    atomic.Int64
	msgs chan string
}

func newLevelCounter(min slog.Level) *levelCounter {
	return &levelCounter{min: min, msgs: make(chan string, 256)}
}

func (h *levelCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h *levelCounter) Handle(_ context.Context, r slog.Record) error {
	h.n.Add(1)
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelCounter) WithGroup(string) slog.Handler      { return h }

// answerAll is a second, differently worded server: it answers every
// request with one status and body, as a server or gateway that rejects the
// client's credentials in its own words does.
func answerAll(status int, contentType, body string) roundTripFunc {
	return func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {contentType}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: r}, nil
	}
}

// credentialFaults are the ways a client meets a server that does not
// authenticate it: the mock with a wrong API key, public key or shared
// secret, and a second server that words its rejection otherwise.
func credentialFaults(t *testing.T, e *env) map[string]func() (Config, []Option) {
	t.Helper()
	other, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	return map[string]func() (Config, []Option){
		"mock, wrong API key": func() (Config, []Option) {
			cfg := e.config()
			cfg.APIKey = "nope"
			return cfg, nil
		},
		"mock, wrong public key": func() (Config, []Option) {
			cfg := e.config()
			cfg.ServerPublicKey = other.Public().EncodeBase64()
			return cfg, nil
		},
		"mock, wrong shared secret": func() (Config, []Option) {
			cfg := e.config()
			cfg.ServerPublicKey, cfg.SharedSecret = "", bytes.Repeat([]byte{7}, 32)
			return cfg, nil
		},
		"other server, 401 text": func() (Config, []Option) {
			return e.config(), []Option{WithRoundTripper(answerAll(401, "text/plain", "Unauthorized: invalid key"))}
		},
		"other server, 403 plain failure": func() (Config, []Option) {
			return e.config(), []Option{WithRoundTripper(answerAll(403, "application/json", `{"success":false,"error":"access denied for this key"}`))}
		},
	}
}

// eachCredentialFault runs test once per credential fault, as a subtest in
// a synctest bubble, with a new env (10-minute sessions, an hour of grace);
// fault returns the config and options that make the fault against it.
func eachCredentialFault(t *testing.T, test func(t *testing.T, e *env, fault func() (Config, []Option))) {
	for name := range credentialFaults(t, newEnv(t, envConfig{})) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				test(t, e, func() (Config, []Option) { return credentialFaults(t, e)[name]() })
			})
		})
	}
}

// TestWrongCredentialsAfterAGoodRun: after one good run with saved state, a
// client whose credentials the server does not accept keeps the grace it is
// owed (Active, then Grace: never Refused), while Status.ConfigFault names
// the fault, EventConfigFault fires once and the error-level log line
// appears once, however many renewals fail.
func TestWrongCredentialsAfterAGoodRun(t *testing.T) {
	eachCredentialFault(t, func(t *testing.T, e *env, fault func() (Config, []Option)) {
		good := e.start()
		require.NoError(t, good.Close(context.Background()))
		assert.Nil(t, good.Status().ConfigFault)

		cfg, opts := fault()
		logs := newLevelCounter(slog.LevelError)
		c := e.newClient(cfg, append(opts, WithLogger(slog.New(logs)))...)
		require.NoError(t, c.Start(context.Background()), "the saved deadlines carry an offline start")
		t.Cleanup(func() { _ = c.Close(context.Background()) })

		st := c.Status()
		assert.Equal(t, Active, st.State)
		require.ErrorIs(t, st.ConfigFault, ErrCredentialsRejected)
		assert.ErrorIs(t, st.ConfigFault, ErrUnreachable)
		assert.NotErrorIs(t, st.ConfigFault, ErrRefused)

		time.Sleep(30 * time.Minute) // the session lapses; renewals keep failing
		st = c.Status()
		assert.Equal(t, Grace, st.State, "the customer keeps the grace they are owed")
		assert.ErrorIs(t, st.ConfigFault, ErrCredentialsRejected)
		assert.Equal(t, 1, e.rec.count(EventConfigFault), "EventConfigFault fires once")
		assert.Equal(t, int64(1), logs.n.Load(), "one error-level log line")
		assert.Contains(t, <-logs.msgs, "configuration fault")
		assert.Greater(t, e.rec.count(EventRenewFailed), 3, "renewals kept failing")
		for _, ev := range e.rec.all() {
			if ev.Type == EventConfigFault {
				assert.ErrorIs(t, ev.Reason, ErrCredentialsRejected)
				assert.Contains(t, ev.Detail, "API key")
			}
		}
	})
}

// TestWrongCredentialsOnAFreshMachine: without saved state, Start fails
// with an unreachable error that names the likely causes.
func TestWrongCredentialsOnAFreshMachine(t *testing.T) {
	eachCredentialFault(t, func(t *testing.T, e *env, fault func() (Config, []Option)) {
		cfg, opts := fault()
		c := e.newClient(cfg, opts...)
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		err := c.Start(context.Background())
		require.ErrorIs(t, err, ErrCredentialsRejected)
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrRefused)
		for _, cause := range []string{"API key", "public key", "shared secret", "key id"} {
			assert.Contains(t, err.Error(), cause)
		}
		assert.Equal(t, Idle, c.Status().State)
		assert.ErrorIs(t, c.Status().ConfigFault, ErrCredentialsRejected)
		assert.Equal(t, 1, e.rec.count(EventConfigFault))
	})
}

// TestConfigFaultClears: a reply that opens clears the fault, and a later
// rejection is announced again.
func TestConfigFaultClears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		var reject atomic.Bool
		next := e.srv.Transport()
		deny := answerAll(401, "text/plain", "Unauthorized")
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if reject.Load() {
				return deny(r)
			}
			return next.RoundTrip(r)
		})
		c := e.start(WithRoundTripper(rt))
		reject.Store(true)
		time.Sleep(8 * time.Minute) // a renewal or two fail
		require.ErrorIs(t, c.Status().ConfigFault, ErrCredentialsRejected)
		reject.Store(false)
		time.Sleep(5 * time.Minute)
		assert.Nil(t, c.Status().ConfigFault, "a reply that opened clears the fault")
		assert.Equal(t, Active, c.Status().State)
		reject.Store(true)
		time.Sleep(8 * time.Minute)
		assert.ErrorIs(t, c.Status().ConfigFault, ErrCredentialsRejected)
		assert.Equal(t, 2, e.rec.count(EventConfigFault), "one event per occurrence")
	})
}

// TestWrongCredentialsResumingASharedSession: in shared mode a run that
// finds a live shared session resumes it without a network call, unless
// the session was last answered under other credentials. Then it asks the
// server first: a wrong API key shows at once as Status.ConfigFault while
// the live session still carries the run (Active, never Refused), and the
// session is not touched on the server. With the right credentials again
// the session resumes with no call at all.
func TestWrongCredentialsResumingASharedSession(t *testing.T) {
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: 10 * time.Minute, GracePeriod: time.Hour}))
	dir := t.TempDir()
	ctx := context.Background()
	run := func(apiKey string) (Status, SharedStart) {
		t.Helper()
		cfg := Config{ServerURL: srv.URL, APIKey: apiKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
		c, err := New(cfg, fixedFingerprint(testFingerprint()), WithSharedSession(SharedSession{}),
			WithRetry(Retry{Attempts: 1, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}))
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx))
		st, how := c.Status(), c.Shared().Start
		require.NoError(t, c.Close(ctx))
		return st, how
	}
	calls := func() int {
		return srv.Count(licensetest.Register) + srv.Count(licensetest.Begin) +
			srv.Count(licensetest.Extend) + srv.Count(licensetest.End)
	}

	st, how := run(srv.Info().APIKey)
	require.Equal(t, StartBegan, how)
	require.Nil(t, st.ConfigFault)
	before := calls()

	st, how = run(srv.Info().APIKey)
	assert.Equal(t, StartResumed, how, "the same credentials resume without a call")
	assert.Equal(t, before, calls())

	st, how = run("nope")
	assert.Greater(t, calls(), before, "other credentials: the server is asked")
	assert.Equal(t, Active, st.State, "the live session still carries the run")
	assert.ErrorIs(t, st.ConfigFault, ErrCredentialsRejected)
	assert.Equal(t, StartOffline, how)
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense), "the live session was not ended")

	after := calls()
	st, how = run(srv.Info().APIKey)
	assert.Equal(t, StartResumed, how, "the right credentials again: resumed without a call")
	assert.Nil(t, st.ConfigFault)
	assert.Equal(t, after, calls())
}

// TestChangedCredentialsTakeNoSecondSeat: the check after a credentials
// change cannot be turned against a customer whose credentials changed
// honestly (here the same public key, written as PEM instead of base64):
// the live session is ended before a new one begins, so a one-seat licence
// is not refused, and the run is Active on the new session.
func TestChangedCredentialsTakeNoSecondSeat(t *testing.T) {
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, Seats: 1,
		SessionDuration: 10 * time.Minute, GracePeriod: time.Hour}))
	dir := t.TempDir()
	ctx := context.Background()
	run := func(pub string) (Status, SharedStart) {
		t.Helper()
		cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: pub,
			ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
		c, err := New(cfg, fixedFingerprint(testFingerprint()), WithSharedSession(SharedSession{}))
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx))
		st, how := c.Status(), c.Shared().Start
		require.NoError(t, c.Close(ctx))
		return st, how
	}
	_, how := run(srv.Info().PublicKey.EncodeBase64())
	require.Equal(t, StartBegan, how)

	st, how := run(string(srv.Info().PublicKey.EncodePEM()))
	assert.Equal(t, StartBegan, how, "other credentials: the server is asked")
	assert.Equal(t, Active, st.State)
	assert.Nil(t, st.ConfigFault)
	assert.Equal(t, 1, srv.Count(licensetest.End), "the old session was ended first")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense), "no second seat")
}
