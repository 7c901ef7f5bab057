package license

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
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
	hpke, err := envelope.NewOpener(priv)
	require.NoError(t, err)
	sso, err := envelope.NewSharedSecretOpener(secret)
	require.NoError(t, err)
	fixed := []string{apiKey, licKey}
	if shared {
		fixed = append(fixed, string(secret), base64.StdEncoding.EncodeToString(secret), hex.EncodeToString(secret))
	}
	opener := envelope.MultiOpener(hpke, sso)
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
	sink := &secretSink{types: map[EventType]int{}, states: map[State]int{}}
	logger := slog.New(slog.NewJSONHandler(&sink.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
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
	for _, status := range statuses {
		for _, ep := range wire.Endpoints {
			if ep == wire.Extend || ep == wire.End {
				require.NoError(t, m.BeginSession(ctx))
			}
			echo.set(ep, status)
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
			echo.set(ep, 0)
		}
	}
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
