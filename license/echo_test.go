package license

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

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

// echoLeak returns a run of at least 8 of secret's letters and digits (case
// and every other character ignored) left in text outside "[redacted]"
// markers, reading text as it is and with \u00XX escapes decoded; "" when
// there is none.
func echoLeak(text, secret string) string {
	norm := func(s string, decode bool) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if decode && c == '\\' && i+5 < len(s) && s[i+1:i+4] == "u00" {
				if v, err := strconv.ParseUint(s[i+4:i+6], 16, 8); err == nil {
					c = byte(v)
					i += 5
				}
			}
			switch {
			case 'A' <= c && c <= 'Z':
				b.WriteByte(c + 'a' - 'A')
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	sec := norm(secret, false)
	for piece := range strings.SplitSeq(text, "[redacted]") {
		for _, decode := range []bool{false, true} {
			p := norm(piece, decode)
			for i := 0; i+8 <= len(sec); i++ {
				if j := strings.Index(p, sec[i:i+8]); j >= 0 {
					return sec[i:i+8] + " in ..." + p[max(0, j-40):min(len(p), j+48)] + "..."
				}
			}
		}
	}
	return ""
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
	hpke, err := envelope.NewOpener(priv)
	require.NoError(t, err)
	sso, err := envelope.NewSharedSecretOpener(secret)
	require.NoError(t, err)
	keys := []string{licKey, apiKey}
	if shared {
		keys = append(keys, string(secret))
	}
	echo := &variantEcho{mock: mock.Handler(), srv: mock, opener: envelope.MultiOpener(hpke, sso), keys: keys,
		fail: map[string]int{}, echoed: map[string]bool{}}
	front := httptest.NewServer(echo)
	defer front.Close()

	cfg := Config{ServerURL: front.URL + licensetest.BasePath, APIKey: apiKey, ProductGUID: testProduct, LicenseKey: licKey}
	if shared {
		cfg.SharedSecret = secret
	} else {
		cfg.ServerPublicKey = priv.Public().EncodeBase64()
	}
	sink := &secretSink{types: map[EventType]int{}, states: map[State]int{}}
	logger := slog.New(slog.NewJSONHandler(&sink.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
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
	for round := range rounds {
		for _, status := range statuses {
			for _, ep := range wire.Endpoints {
				if ep == wire.Extend || ep == wire.End {
					require.NoError(t, m.BeginSession(ctx), "round %d, %d at %s", round, status, ep)
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
			if leak := echoLeak(text, s); leak != "" {
				t.Errorf("%s hold a run of a secret: %s", where, leak)
			}
		}
	}
	assert.Empty(t, echoLeak("x "+strings.ToLower(licKey)+" y", "unrelated-secret-value"), "the check itself")
	assert.NotEmpty(t, echoLeak("x "+strings.ToLower(licKey)+" y", licKey), "the check itself")
}
