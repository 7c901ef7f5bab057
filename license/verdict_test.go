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
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/testkit"
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
			var logs testkit.LockedBuffer
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
	var logs testkit.LockedBuffer
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

// faultCase is one named fault. run drives a client through the fault and
// returns it with the error to classify (a Start error, or else the
// client's Reason or LastError).
type faultCase struct {
	name string
	env  envConfig
	run  func(t *testing.T, e *env) (*Client, error)
	// want is the state at the end of run; cat is ErrUnreachable,
	// ErrRefused or nil for "no error".
	want State
	cat  error
	// also lists further sentinels the error must match.
	also []error
}

// rewrite is a RoundTripper that, once armed, rewrites replies of one
// endpoint: for faults the mock server does not script.
type rewrite struct {
	next     http.RoundTripper
	endpoint string
	armed    atomic.Bool
	fn       func(*http.Response) *http.Response
}

func (r *rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || !r.armed.Load() || !toEndpoint(req, r.endpoint) {
		return resp, err
	}
	return r.fn(resp), nil
}

// toEndpoint reports whether req is a call of endpoint ("" matches every
// endpoint).
func toEndpoint(req *http.Request, endpoint string) bool {
	return endpoint == "" || strings.HasSuffix(req.URL.Path, "/"+endpoint)
}

func replaceBody(resp *http.Response, status int, body []byte, header http.Header) *http.Response {
	resp.Body.Close()
	if header == nil {
		header = http.Header{"Content-Type": {"application/json"}}
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: resp.Request,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

// lapse runs a started client past its session with extends failing.
func lapse(e *env, c *Client) (*Client, error) {
	time.Sleep(e.sessionLeft(c) + time.Second)
	synctest.Wait()
	st := c.Status()
	return c, st.LastError
}

func (e *env) sessionLeft(c *Client) time.Duration {
	return time.Until(c.Status().SessionExpiry)
}

// persistent makes every matching request fail the same way.
func persistent(e *env, endpoint string, status int) {
	e.srv.Inject(licensetest.Fault{Endpoint: endpoint, Kind: licensetest.FaultFail, Count: -1, Status: status})
}

func failExtend(status int) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		persistent(e, wire.Extend, status)
		persistent(e, wire.Begin, status)
		return lapse(e, c)
	}
}

func faultWith(kind licensetest.FaultKind) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: kind, Count: -1})
		return lapse(e, c)
	}
}

// withRewrite starts a client whose replies to endpoint are rewritten by fn
// once the session is running.
func withRewrite(endpoint string, fn func(*http.Response) *http.Response) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		rw := &rewrite{next: e.srv.Transport(), endpoint: endpoint, fn: fn}
		c := e.start(WithRoundTripper(rw))
		rw.armed.Store(true)
		return lapse(e, c)
	}
}

// insecure runs a fault case with InsecureUnsealedReplies, for faults that
// rewrite plain replies.
func insecure(run func(t *testing.T, e *env) (*Client, error)) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		e.insecure = true
		return run(t, e)
	}
}

func sealedEnv() envConfig {
	return envConfig{session: 10 * time.Minute, grace: time.Hour}
}

func sealedStart(t *testing.T, e *env) *Client {
	c := e.newClient(e.config())
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

var faultCases = []faultCase{
	// Server faults.
	{name: "server down at start, no saved state", run: func(t *testing.T, e *env) (*Client, error) {
		e.srv.SetDown(true)
		return e.tryStart()
	}, want: Idle, cat: ErrUnreachable},
	{name: "server down at start, persisted session still live", run: func(t *testing.T, e *env) (*Client, error) {
		crash(e.start())
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		c := e.start()
		return c, c.Status().LastError
	}, want: Active, cat: ErrUnreachable},
	{name: "server down at start, saved state within grace", run: func(t *testing.T, e *env) (*Client, error) {
		crash(e.start())
		time.Sleep(11 * time.Minute)
		e.srv.SetDown(true)
		c := e.start()
		return c, c.Status().Reason
	}, want: Grace, cat: ErrUnreachable},
	{name: "server down mid-session", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetDown(true)
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "server down mid-session, connections reset", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetDownMode(licensetest.DownReset)
		e.srv.SetDown(true)
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "server flapping", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		for range 60 {
			e.srv.SetDown(true)
			time.Sleep(20 * time.Second)
			e.srv.SetDown(false)
			time.Sleep(40 * time.Second)
		}
		synctest.Wait()
		assert.NotContains(t, e.rec.states(), Expired)
		return c, c.Status().Reason
	}, want: Active, cat: nil},
	{name: "HTTP 500", run: failExtend(500), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 502", run: failExtend(502), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 503", run: failExtend(503), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 504", run: failExtend(504), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 408", run: failExtend(408), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 429 with Retry-After 86400: capped, grace deadline wins", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.Inject(licensetest.Fault{Kind: licensetest.FaultFail, Count: -1, Status: 429, RetryAfter: 24 * time.Hour})
		deadline := c.Status().GraceDeadline
		time.Sleep(time.Until(deadline))
		synctest.Wait()
		assert.Equal(t, Expired, c.Status().State, "Expired exactly at the grace deadline")
		// Retries kept coming despite the 24 h Retry-After: at least one a
		// minute through the hour of grace.
		assert.GreaterOrEqual(t, e.srv.Count(wire.Extend)+e.srv.Count(wire.Begin), 60)
		return c, c.Status().LastError
	}, want: Expired, cat: ErrUnreachable, also: []error{}},

	// Slow or broken replies.
	{name: "reply slower than the attempt timeout", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetLatency("", 30*time.Second)
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable, also: []error{context.DeadlineExceeded}},
	{name: "connection reset mid-body", run: faultWith(licensetest.FaultCutBody), want: Grace, cat: ErrUnreachable},
	{name: "reply lost after processing", run: faultWith(licensetest.FaultDrop), want: Grace, cat: ErrUnreachable},
	{name: "truncated body", run: faultWith(licensetest.FaultTruncate), want: Grace, cat: ErrUnreachable, also: []error{ErrMalformedReply}},
	{name: "truncated body, unsealed", run: insecure(faultWith(licensetest.FaultTruncate)), want: Grace, cat: ErrUnreachable,
		also: []error{ErrMalformedReply}},
	{name: "garbage body", run: faultWith(licensetest.FaultGarbage), want: Grace, cat: ErrUnreachable, also: []error{ErrIntercepted}},
	{name: "plain JSON success with sealed replies", run: withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 200, []byte(`{"status":1,"token":"t","control_options":{"session_duration":600}}`), nil)
	}), want: Grace, cat: ErrUnreachable, also: []error{ErrUnauthenticated}},
	{name: "valid JSON of the wrong shape, unsealed", run: insecure(withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 200, []byte(`{"status":1,"token":["x"],"control_options":{"session_duration":"soon"}}`), nil)
	})), want: Grace, cat: ErrUnreachable, also: []error{wire.ErrProtocol, ErrMalformedReply}},
	{name: "zero session_duration, unsealed", run: insecure(withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 200, []byte(`{"status":1,"token":"t","control_options":{"session_duration":0}}`), nil)
	})), want: Grace, cat: ErrUnreachable, also: []error{wire.ErrProtocol, ErrMalformedReply}},
	{name: "wrong Content-Type, valid body: accepted", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetContentType("", "text/html; charset=utf-8")
		time.Sleep(time.Hour)
		synctest.Wait()
		return c, c.Status().Reason
	}, want: Active, cat: nil},
	{name: "HTTP 200 with success:false", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		persistent(e, "", 200)
		return lapse(e, c)
	}, want: Refused, cat: ErrRefused},
	{name: "huge body: the cap holds", run: withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 200, bytes.Repeat([]byte(" "), 4<<20), nil)
	}), want: Grace, cat: ErrUnreachable},

	// Envelope and TLS.
	{name: "undecryptable sealed reply", env: sealedEnv(), run: func(t *testing.T, e *env) (*Client, error) {
		c := sealedStart(t, e)
		e.srv.Inject(licensetest.Fault{Kind: licensetest.FaultBadSeal, Count: -1})
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "replayed sealed reply from an earlier request", env: sealedEnv(), run: func(t *testing.T, e *env) (*Client, error) {
		c := sealedStart(t, e)
		e.srv.Inject(licensetest.Fault{Kind: licensetest.FaultReplay, Count: -1})
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "forged plain refusal with sealed replies", env: sealedEnv(), run: func(t *testing.T, e *env) (*Client, error) {
		rw := &rewrite{next: e.srv.Transport(), endpoint: "", fn: func(r *http.Response) *http.Response {
			return replaceBody(r, 403, []byte(`{"success":false,"error":"license revoked"}`), nil)
		}}
		c := e.newClient(e.config(), WithRoundTripper(rw))
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		rw.armed.Store(true)
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "redirect", run: withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 302, nil, http.Header{"Location": {"https://elsewhere.example/"}})
	}), want: Grace, cat: ErrUnreachable},

	// Session faults.
	{name: "licence revoked mid-session", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		c2, err := lapse(e, c)
		assert.NotContains(t, e.rec.states(), Grace, "refusal skips grace")
		return c2, err
	}, want: Refused, cat: ErrRefused, also: []error{ErrRevoked}},
	{name: "seat limit reached", env: envConfig{seats: 1}, run: func(t *testing.T, e *env) (*Client, error) {
		e.start(WithStateStore(&MemoryStateStore{}))
		return e.tryStart()
	}, want: Refused, cat: ErrRefused, also: []error{ErrSeatLimit}},
	{name: "extend refused, then begin succeeds", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Count: 1, Status: 404})
		time.Sleep(e.sessionLeft(c))
		synctest.Wait()
		assert.Equal(t, 2, e.srv.Count(wire.Begin))
		return c, c.Status().Reason
	}, want: Active, cat: nil},
	{name: "session_duration shrunk by the server", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		require.NoError(t, e.srv.SetControlOptions(testProduct, testLicense, time.Minute, time.Minute))
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, time.Minute, c.Status().SessionDuration)
		return c, c.Status().Reason
	}, want: Active, cat: nil},

	// Clock faults.
	{name: "wall clock set back 2 hours", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetDown(true)
		e.wall.jump(-2 * time.Hour)
		c, _ = lapse(e, c)
		return c, c.Status().Reason
	}, want: Expired, cat: nil, also: []error{ErrClockRollback}},
	{name: "wall clock jumps forward 3 hours (suspend)", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		time.Sleep(time.Minute)
		e.wall.jump(3 * time.Hour)
		time.Sleep(maxSleep + time.Second)
		synctest.Wait()
		assert.Equal(t, 1, e.rec.count(EventResumeDetected))
		return c, c.Status().Reason
	}, want: Active, cat: nil},

	// State file faults.
	{name: "state file corrupt", run: stateFault(func(b []byte) []byte { return []byte("LKST\x01" + strings.Repeat("x", 40)) }),
		want: Idle, cat: ErrUnreachable, also: []error{ErrStateCorrupt}},
	{name: "state file truncated", run: stateFault(func(b []byte) []byte { return b[:len(b)-10] }),
		want: Idle, cat: ErrUnreachable, also: []error{ErrStateCorrupt}},
	{name: "state file from another machine", run: func(t *testing.T, e *env) (*Client, error) {
		dir := t.TempDir()
		c1 := e.mustStartIn(dir)
		crash(c1)
		e.fp = testFingerprint()
		e.fp.Extra[1].Value = "a-different-machine"
		e.srv.SetDown(true)
		c, err := New(e.withDir(dir), append(e.options(), WithStateStore(nil))...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c, c.Start(context.Background())
	}, want: Idle, cat: ErrUnreachable, also: []error{ErrStateCorrupt}},
	{name: "read-only state directory", run: func(t *testing.T, e *env) (*Client, error) {
		dir := t.TempDir()
		require.NoError(t, os.Chmod(dir, 0o500))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		target := filepath.Join(dir, "sub")
		if os.Geteuid() == 0 {
			// Root ignores permissions: make the directory impossible instead.
			file := filepath.Join(dir, "file")
			_ = os.Chmod(dir, 0o700)
			require.NoError(t, os.WriteFile(file, nil, 0o600))
			target = filepath.Join(file, "sub")
		}
		c, err := e.startIn(target)
		return c, err
	}, want: Active, cat: nil},
	{name: "crash between temp write and rename", run: func(t *testing.T, e *env) (*Client, error) {
		dir := t.TempDir()
		c1 := e.mustStartIn(dir)
		crash(c1)
		require.NoError(t, os.WriteFile(filepath.Join(dir, stateBase+".tmp-9"), []byte("half"), 0o600))
		e.srv.SetDown(true)
		c, err := e.startIn(dir)
		require.NoError(t, err, "the last complete state is intact")
		return c, c.Status().LastError
	}, want: Active, cat: ErrUnreachable},

	// Process faults.
	{name: "two processes sharing a state directory", run: func(t *testing.T, e *env) (*Client, error) {
		dir := t.TempDir()
		a := e.mustStartIn(dir)
		b := e.mustStartIn(dir)
		assert.NotEqual(t, a.store.slot.Path(), b.store.slot.Path(), "each live client gets its own slot")
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, Active, a.Status().State)
		return b, b.Status().Reason
	}, want: Active, cat: nil},
	{name: "Close while a renewal is in flight", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetLatency(wire.Extend, time.Hour)
		waitRenewing(t, c)
		before := time.Now()
		err := c.Close(context.Background())
		assert.Less(t, time.Since(before), time.Second)
		return c, err
	}, want: Ended, cat: nil},
	{name: "context cancelled during backoff", run: func(t *testing.T, e *env) (*Client, error) {
		persistent(e, "", 503)
		e.srv.SetRetryAfter("", 10*time.Second)
		c := e.newClient(e.config())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(3 * time.Second); cancel() }()
		before := time.Now()
		err := c.Start(ctx)
		assert.Equal(t, 3*time.Second, time.Since(before), "Start returns as soon as ctx is cancelled")
		assert.ErrorIs(t, err, context.Canceled)
		return c, err
	}, want: Idle, cat: ErrUnreachable},
}

// stateFault saves a real state, mangles it, and starts offline on it.
func stateFault(mangle func([]byte) []byte) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		crash(e.start())
		_ = e.store.Save(context.Background(), mangle(e.store.Bytes()))
		e.srv.SetDown(true)
		return e.tryStart()
	}
}

// TestFaultSuite runs every named fault under testing/synctest. Each case
// asserts the state and the error category (unreachable or refused). After
// each, the client is closed and the saved state must still open. The
// bubble itself proves no goroutine is left behind: synctest.Test fails if
// any goroutine started in it is still running when it returns.
func TestFaultSuite(t *testing.T) {
	require.GreaterOrEqual(t, len(faultCases), 25)
	for _, tc := range faultCases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ec := tc.env
				if ec.session == 0 {
					ec.session, ec.grace = 10*time.Minute, time.Hour
				}
				e := newEnv(t, ec)
				c, err := tc.run(t, e)
				require.NotNil(t, c)
				st := c.Status()
				assert.Equal(t, tc.want, st.State, "state")
				checkCategory(t, tc.cat, err)
				for _, s := range tc.also {
					assert.ErrorIs(t, err, s)
				}
				if err != nil {
					assert.True(t, strings.HasPrefix(err.Error(), "license: ") || errors.Is(err, context.Canceled),
						"error %q must start with the package name", err)
				}

				// The state, whatever happened, is intact or atomically
				// replaced: it opens with the client's key.
				_ = c.Close(context.Background())
				if blob := e.store.Bytes(); len(blob) > 0 && c.store.keys != nil && c.store.corrupt == nil {
					_, oerr := openState(c.store.keys[0], blob)
					assert.NoError(t, oerr, "saved state must open")
				}
			})
		})
	}
}

func checkCategory(t *testing.T, cat, err error) {
	t.Helper()
	switch cat {
	case nil:
		if err != nil && !errors.Is(err, ErrClockRollback) {
			t.Errorf("want no error, got %v", err)
		}
	case ErrUnreachable:
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrRefused)
		assert.NotErrorIs(t, err, ErrClientFault)
	case ErrRefused:
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrRefused)
		assert.NotErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrClientFault)
	}
}

// TestTLSCertificateFailure uses a real TLS server (outside synctest): a
// certificate the client does not trust is a clear error, not retried.
func TestTLSCertificateFailure(t *testing.T) {
	srv := licensetest.NewTLSServer(nil)
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense}))
	c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense}, fixedFingerprint(testFingerprint()))
	require.NoError(t, err)
	defer c.Close(context.Background())
	err = c.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	assert.NotErrorIs(t, err, ErrRefused, "the licence server was never reached")
	assert.Equal(t, 0, srv.Count(wire.Register)+srv.Count(wire.Begin))
	assert.Equal(t, Idle, c.Status().State)

	// Trusting the server's certificate fixes it.
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ok, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense}, fixedFingerprint(testFingerprint()), WithRootCAs(pool))
	require.NoError(t, err)
	require.NoError(t, ok.Start(context.Background()))
	require.NoError(t, ok.Close(context.Background()))
}

// waitRenewing sleeps in bubble time until a renewal is in flight.
func waitRenewing(t *testing.T, c *Client) {
	t.Helper()
	for range 3600 {
		if c.Status().Renewing {
			return
		}
		time.Sleep(time.Second)
		synctest.Wait()
	}
	t.Fatal("no renewal started within an hour")
}

// deprecating is a path that adds Deprecation and Sunset headers with the
// given values to every reply.
func deprecating(e *env, deprecation, sunset string) *rewrite {
	rw := &rewrite{next: e.srv.Transport(), fn: func(r *http.Response) *http.Response {
		r.Header.Set("Deprecation", deprecation)
		r.Header.Set("Sunset", sunset)
		return r
	}}
	rw.armed.Store(true)
	return rw
}

// TestDeprecationHeaderSurfaces checks that a server's Deprecation and
// Sunset headers reach the caller as a fact, in an event and in Status.
func TestDeprecationHeaderSurfaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		c := e.start(WithRoundTripper(deprecating(e, "true", "Wed, 01 Jul 2026 00:00:00 GMT")))
		assert.True(t, c.Status().Deprecated)
		assert.Equal(t, 1, e.rec.count(EventDeprecated), "reported once, not per request")
		time.Sleep(time.Hour)
		assert.Equal(t, 1, e.rec.count(EventDeprecated))
	})
}

// TestDeprecationHeaderTextNotShown: the path adds a Deprecation header
// with its own words. Only the fact reaches Status and events: the
// product never shows the path's text to its user.
func TestDeprecationHeaderTextNotShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start(WithRoundTripper(deprecating(e, "Your licence was revoked. Call +1-555-0100", "now; call +1-555-0100")))
		assert.True(t, c.Status().Deprecated, "the fact is kept")
		assert.NotContains(t, fmt.Sprintf("%+v", c.Status()), "555")
		assert.NotContains(t, fmt.Sprintf("%+v", c.Status()), "revoked")
		n := 0
		for _, ev := range e.rec.all() {
			if ev.Type == EventDeprecated {
				n++
			}
			assert.NotContains(t, ev.Detail, "555")
			assert.NotContains(t, ev.Detail, "revoked")
		}
		assert.Equal(t, 1, n, "the fact is still reported, once")
	})
}

// TestDeprecationNeedsTheServersWord: a Deprecation header on a page that
// is not the licence server's word (a proxy's 407) sets nothing.
func TestDeprecationNeedsTheServersWord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		rw := &rewrite{next: e.srv.Transport(), endpoint: wire.Extend, fn: func(r *http.Response) *http.Response {
			return replaceBody(r, http.StatusProxyAuthRequired, []byte("<html>proxy</html>"),
				http.Header{"Deprecation": {"true"}, "Content-Type": {"text/html"}})
		}}
		c := e.start(WithRoundTripper(rw))
		rw.armed.Store(true)
		_, err := lapse(e, c)
		require.ErrorIs(t, err, ErrIntercepted)
		assert.False(t, c.Status().Deprecated)
		assert.Zero(t, e.rec.count(EventDeprecated))
	})
}
