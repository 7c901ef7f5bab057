package verdict_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/verdict"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// sealPair is one sealed request: the client's opener and the server's
// reply sealer.
type sealPair struct {
	opener envelope.ReplyOpener
	sealer envelope.ReplySealer
}

func newPair(t testing.TB, priv *envelope.PrivateKey) sealPair {
	t.Helper()
	s, err := envelope.NewSealer(priv.Public(), envelope.WithSealedReplies())
	require.NoError(t, err)
	o, err := envelope.NewOpener(priv)
	require.NoError(t, err)
	sd, err := s.Seal(envelope.Request{APIKey: "api-key", Endpoint: "begin_session"}, []byte(`{}`))
	require.NoError(t, err)
	op, err := o.Open(envelope.Incoming{Key: "api-key", Data: sd.Data, Endpoint: "begin_session"})
	require.NoError(t, err)
	return sealPair{opener: sd.Reply, sealer: op.Reply}
}

func (p sealPair) seal(t testing.TB, plain string) []byte {
	t.Helper()
	b, err := p.sealer.SealReply([]byte(plain))
	require.NoError(t, err)
	return b
}

// broken flips the last ciphertext byte of a sealed body.
func broken(t testing.TB, body []byte) []byte {
	var v struct {
		Data string `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &v))
	raw, err := base64.StdEncoding.DecodeString(v.Data)
	require.NoError(t, err)
	raw[len(raw)-1] ^= 1
	out, _ := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString(raw)})
	return out
}

// reply builds what transport.Do returns for a reply with this status.
func reply(status int, body []byte, h http.Header) (*transport.Response, error) {
	if h == nil {
		h = http.Header{}
	}
	resp := &transport.Response{Status: status, Header: h, Body: body, Attempts: 1}
	if status >= 200 && status < 300 {
		return resp, nil
	}
	te := &transport.Error{Endpoint: "x", Status: status, Attempts: 1}
	if status >= 300 && status < 400 {
		te.Err = transport.ErrRedirect
	}
	if ra := h.Get("Retry-After"); ra != "" {
		te.RetryAfter = 30 * time.Second
	}
	return resp, te
}

const (
	successBegin  = `{"status":1,"time":"2025-01-01T00:00:00Z","session_key":"sk","token":"tok-1","features":"pro","control_options":{"session_duration":600,"validation_grace_period":3600}}`
	successEnd    = `{"time":"2025-01-01T00:00:00Z"}`
	specFailure   = `{"success":false,"time":"2025-01-01T00:00:00Z","error":"license revoked"}`
	proxyPage     = `<!DOCTYPE html><html><head><title>Access Denied</title></head><body>Blocked by policy</body></html>`
	captivePortal = `<html><head><title>Hotel WiFi - Sign in</title></head><body><form>...</form></body></html>`
	otherJSON     = `{"message":"Forbidden","code":"ACCESS_DENIED"}`
)

func decodeBegin(b []byte) error { _, err := wire.DecodeBegin(b); return err }
func decodeEnd(b []byte) error   { _, err := wire.DecodeEnd(b); return err }

type row struct {
	name     string
	endpoint string // default begin_session
	sealed   bool
	status   int
	body     []byte
	header   http.Header
	err      error // a failure without a reply
	want     verdict.Category
	also     []error
}

func rows(t *testing.T) []row {
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	_ = priv
	b := func(s string) []byte { return []byte(s) }
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	U, R, C := verdict.Unreachable, verdict.Refused, verdict.ClientFault
	ic, ua, mf := verdict.ErrIntercepted, verdict.ErrUnauthenticated, verdict.ErrMalformedReply
	out := []row{
		// Proxy and gateway pages, unsealed mode.
		{name: "403 proxy HTML page", status: 403, body: b(proxyPage), want: U, also: []error{ic}},
		{name: "404 empty body", status: 404, want: U, also: []error{ic}},
		{name: "404 HTML page", status: 404, body: b("<h1>Not Found</h1>"), want: U, also: []error{ic}},
		{name: "407 with Proxy-Authenticate", status: 407, body: b(proxyPage), header: h("Proxy-Authenticate", `Basic realm="corp"`), want: U, also: []error{ic}},
		{name: "413 HTML page", status: 413, body: b(proxyPage), want: U, also: []error{ic}},
		{name: "502 HTML page", status: 502, body: b("<html>502 Bad Gateway</html>"), want: U},
		{name: "200 captive portal page", status: 200, body: b(captivePortal), want: U, also: []error{ic}},
		{name: "200 plain text", status: 200, body: b("OK"), want: U, also: []error{ic}},
		{name: "401 JSON of another shape", status: 401, body: b(otherJSON), want: U, also: []error{ic}},
		{name: "403 JSON of another shape", status: 403, body: b(otherJSON), want: U, also: []error{ic}},
		{name: "403 success:false without error text", status: 403, body: b(`{"success":false,"error":42}`), want: U, also: []error{ic}},
		{name: "403 error text without success:false", status: 403, body: b(`{"error":"license revoked"}`), want: U, also: []error{ic}},
		{name: "200 JSON of another shape", status: 200, body: b(otherJSON), want: U, also: []error{mf, wire.ErrProtocol}},
		{name: "200 success:false with a number error", status: 200, body: b(`{"success":false,"error":7}`), want: U, also: []error{mf}},
		{name: "200 truncated JSON", status: 200, body: b(successBegin[:40]), want: U, also: []error{mf}},
		{name: "200 JSON array", status: 200, body: b(`[{"success":false,"error":"license revoked"}]`), want: U, also: []error{mf}},

		// The spec's failure shape, unsealed mode.
		{name: "spec failure at 200", status: 200, body: b(specFailure), want: R, also: []error{verdict.ErrRevoked}},
		{name: "spec failure at 400", status: 400, body: b(specFailure), want: R},
		{name: "spec failure at 401", status: 401, body: b(specFailure), want: R},
		{name: "spec failure at 403", status: 403, body: b(specFailure), want: R, also: []error{verdict.ErrRevoked}},
		{name: "spec failure at 404", status: 404, body: b(specFailure), want: R},
		{name: "spec failure at 409", status: 409, body: b(specFailure), want: R},
		{name: "spec failure at 422", status: 422, body: b(specFailure), want: R},
		{name: "spec failure at 407", status: 407, body: b(specFailure), want: U, also: []error{ic}},
		{name: "spec failure at 408", status: 408, body: b(specFailure), want: U},
		{name: "spec failure at 429 with Retry-After", status: 429, body: b(specFailure), header: h("Retry-After", "30"), want: U},
		{name: "spec failure at 500", status: 500, body: b(specFailure), want: U},
		{name: "spec failure at 503 with Retry-After", status: 503, body: b(specFailure), header: h("Retry-After", "30"), want: U},
		{name: "spec success at 200", status: 200, body: b(successBegin), want: verdict.Success},
		{name: "spec success after a space", status: 200, body: b(" " + successBegin), want: verdict.Success},
		{name: "spec success with trailing data", status: 200, body: b(successBegin + "{"), want: U, also: []error{mf}},

		// end_session.
		{name: "end_session bare 422", endpoint: wire.End, status: 422, want: verdict.AlreadyEnded},
		{name: "end_session 422 with failure body", endpoint: wire.End, status: 422, body: b(specFailure), want: verdict.AlreadyEnded},
		{name: "end_session plain 422, sealed mode (forged)", endpoint: wire.End, sealed: true, status: 422, body: b("Unprocessable Entity"), want: U, also: []error{ic}},
		{name: "end_session plain 422 failure, sealed mode (forged)", endpoint: wire.End, sealed: true, status: 422, body: b(specFailure), want: U, also: []error{ua}},
		{name: "end_session success", endpoint: wire.End, status: 200, body: b(successEnd), want: verdict.Success},

		// Transport failures without a reply.
		{name: "connection refused", err: &transport.Error{Attempts: 3, Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, want: U},
		{name: "connection reset", err: &transport.Error{Attempts: 1, Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}, want: U},
		{name: "DNS failure", err: &transport.Error{Attempts: 1, Err: &net.DNSError{Err: "no such host", Name: "licensing.example", IsNotFound: true}}, want: U},
		{name: "TLS certificate not trusted", err: &transport.Error{Attempts: 1, Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, want: U},
		{name: "attempt timed out", err: &transport.Error{Attempts: 3, Err: fmt.Errorf("x: %w", context.DeadlineExceeded)}, want: U, also: []error{context.DeadlineExceeded}},
		{name: "caller cancelled", err: &transport.Error{Attempts: 1, Err: context.Canceled}, want: U, also: []error{context.Canceled}},
		{name: "invalid request", err: &transport.Error{Err: fmt.Errorf("%w: bad", transport.ErrInvalidRequest)}, want: C},
	}
	// Every 3xx.
	for _, s := range []int{300, 301, 302, 303, 304, 307, 308} {
		out = append(out, row{name: fmt.Sprintf("%d redirect", s), status: s, header: h("Location", "https://login.corp.example/auth?next=x"), want: U, also: []error{ic}})
	}

	// Sealed mode (the default).
	p := newPair(t, priv)
	replayed := newPair(t, priv).seal(t, successBegin)
	out = append(out,
		row{name: "sealed success", sealed: true, status: 200, body: p.seal(t, successBegin), want: verdict.Success},
		row{name: "sealed failure at 200", sealed: true, status: 200, body: p.seal(t, specFailure), want: R, also: []error{verdict.ErrRevoked}},
		row{name: "sealed failure at 403", sealed: true, status: 403, body: p.seal(t, specFailure), want: R},
		row{name: "sealed failure at 404", sealed: true, status: 404, body: p.seal(t, specFailure), want: R},
		row{name: "sealed failure at 503", sealed: true, status: 503, body: p.seal(t, specFailure), want: U},
		row{name: "plain success, sealed required (fake server)", sealed: true, status: 200, body: b(successBegin), want: U, also: []error{ua}},
		row{name: "plain spec failure, sealed required (forged)", sealed: true, status: 403, body: b(specFailure), want: U, also: []error{ua}},
		row{name: "plain spec failure at 200, sealed required", sealed: true, status: 200, body: b(specFailure), want: U, also: []error{ua}},
		row{name: "broken seal", sealed: true, status: 200, body: broken(t, p.seal(t, successBegin)), want: U, also: []error{ua}},
		row{name: "replayed seal from another request", sealed: true, status: 200, body: replayed, want: U, also: []error{ua}},
		row{name: "truncated sealed body", sealed: true, status: 200, body: p.seal(t, successBegin)[:30], want: U, also: []error{mf}},
		row{name: "403 proxy page, sealed mode", sealed: true, status: 403, body: b(proxyPage), want: U, also: []error{ic}},
		row{name: "200 captive portal, sealed mode", sealed: true, status: 200, body: b(captivePortal), want: U, also: []error{ic}},
		row{name: "sealed plaintext not JSON", sealed: true, status: 200, body: p.seal(t, "hello"), want: U, also: []error{mf}},
		row{name: "sealed success after a space", sealed: true, status: 200, body: p.seal(t, " "+successBegin), want: verdict.Success},
		row{name: "sealed success with trailing data", sealed: true, status: 200, body: p.seal(t, successBegin+"{"), want: U, also: []error{mf}},
		row{name: "sealed JSON of another shape", sealed: true, status: 200, body: p.seal(t, otherJSON), want: U, also: []error{mf}},
		row{name: "sealed success at 403", sealed: true, status: 403, body: p.seal(t, successBegin), want: U, also: []error{mf}},
		row{name: "end_session sealed 422", endpoint: wire.End, sealed: true, status: 422, body: p.seal(t, specFailure), want: verdict.AlreadyEnded},
		row{name: "end_session sealed 422, empty plaintext", endpoint: wire.End, sealed: true, status: 422, body: p.seal(t, ""), want: verdict.AlreadyEnded},
	)
	// Oversize and cut bodies, as transport reports them.
	out = append(out,
		row{name: "oversize body", status: 200, err: &transport.Error{Status: 200, Attempts: 1, Err: transport.ErrResponseTooLarge}, want: U, also: []error{mf, transport.ErrResponseTooLarge}},
		row{name: "oversize 403 page", status: 403, err: &transport.Error{Status: 403, Attempts: 1, Err: transport.ErrResponseTooLarge}, want: U},
		row{name: "body cut mid-way", status: 200, err: &transport.Error{Status: 200, Attempts: 1, Err: io.ErrUnexpectedEOF}, want: U},
	)
	for i := range out {
		if out[i].sealed {
			out[i].header = cloneHeader(out[i].header)
		}
	}
	// The opener of the sealed rows.
	sealedOpener = p.opener
	return out
}

// sealedOpener is the opener for the sealed rows of the current table.
var sealedOpener envelope.ReplyOpener

func cloneHeader(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	return h.Clone()
}

// plainOpener returns the body as it is, as an unsealed request's opener.
type plainOpener struct{}

func (plainOpener) OpenReply(b []byte) ([]byte, error) { return b, nil }

func input(r row) verdict.Input {
	ep := r.endpoint
	if ep == "" {
		ep = wire.Begin
	}
	in := verdict.Input{Endpoint: ep, Sealed: r.sealed, Redactor: verdict.NewRedactor("api-key-0000")}
	switch ep {
	case wire.End:
		in.Decode = decodeEnd
	default:
		in.Decode = decodeBegin
	}
	if r.sealed {
		in.Opener = sealedOpener
	} else {
		in.Opener = plainOpener{}
	}
	switch {
	case r.status == 0:
		in.Err = r.err
	case r.err != nil:
		in.Resp = &transport.Response{Status: r.status, Header: http.Header{}, Attempts: 1}
		in.Err = r.err
	default:
		in.Resp, in.Err = reply(r.status, r.body, r.header)
	}
	return in
}

// TestClassifyTable sends every reply shape through the one classifier and
// checks its category, that its error matches exactly one category
// sentinel, and the detail sentinels named.
func TestClassifyTable(t *testing.T) {
	table := rows(t)
	require.GreaterOrEqual(t, len(table), 40)
	categories := []error{verdict.ErrUnreachable, verdict.ErrRefused, verdict.ErrClientFault}
	for _, r := range table {
		t.Run(r.name, func(t *testing.T) {
			out := verdict.Classify(input(r))
			assert.Equal(t, r.want, out.Category, "Classify(%s).Category", r.name)
			switch r.want {
			case verdict.Success, verdict.AlreadyEnded:
				assert.NoError(t, out.Err)
				return
			}
			require.Error(t, out.Err)
			n := 0
			for _, c := range categories {
				if errors.Is(out.Err, c) {
					n++
				}
			}
			assert.Equal(t, 1, n, "%v matches exactly one category", out.Err)
			for _, s := range r.also {
				assert.ErrorIs(t, out.Err, s)
			}
			msg := out.Err.Error()
			assert.True(t, strings.HasPrefix(msg, "license: "), msg)
			assert.Equal(t, 1, strings.Count(msg, "license: "), "no stutter: %s", msg)
			assert.NotContains(t, msg, "\n")
			assert.NotContains(t, msg, "transport: ")
			assert.NotContains(t, msg, "envelope: ")
			assert.NotContains(t, msg, "wire: ")
			assert.LessOrEqual(t, len(msg), 400)
			if r.want == verdict.Refused {
				var api *verdict.APIError
				require.ErrorAs(t, out.Err, &api)
				assert.Equal(t, r.sealed, api.Sealed)
				assert.Equal(t, "license revoked", api.Message)
			}
		})
	}
}

// TestTransientKeepsRetryAfter checks that a 429's Retry-After reaches the
// error, so that renewal honours it.
func TestTransientKeepsRetryAfter(t *testing.T) {
	resp, err := reply(429, []byte(specFailure), http.Header{"Retry-After": {"30"}})
	out := verdict.Classify(verdict.Input{Endpoint: wire.Extend, Resp: resp, Err: err, Opener: plainOpener{}})
	var e *verdict.Error
	require.ErrorAs(t, out.Err, &e)
	assert.Equal(t, 30*time.Second, e.RetryAfter)
	assert.Equal(t, verdict.DetailTransient, e.Detail)
}

// TestMessages pins how errors read: one line, what failed, why, and what
// happens next.
func TestMessages(t *testing.T) {
	red := verdict.NewRedactor()
	cases := []struct {
		in   verdict.Input
		want string
	}{
		{verdict.Input{Endpoint: wire.Register, Err: &transport.Error{Attempts: 3,
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}},
			"license: register_instance: server unreachable after 3 attempts (connection refused); will retry"},
		{verdict.Input{Endpoint: wire.Register, Err: &transport.Error{Attempts: 1,
			Err: &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8443}, Err: syscall.ECONNREFUSED}}},
			"license: register_instance: server unreachable (connection refused dialling 192.0.2.1:8443); will retry"},
		{verdict.Input{Endpoint: wire.Extend, Err: &transport.Error{Attempts: 1, Err: context.Canceled}},
			"license: extend_session: server unreachable (cancelled)"},
		{func() verdict.Input {
			resp, err := reply(407, nil, http.Header{"Proxy-Authenticate": {"Basic"}})
			return verdict.Input{Endpoint: wire.Begin, Resp: resp, Err: err, Opener: plainOpener{}}
		}(), "license: begin_session: a proxy or gateway answered instead of the licence server (HTTP 407: proxy authentication required); will retry"},
		{func() verdict.Input {
			resp, err := reply(302, nil, http.Header{"Location": {"https://login.corp.example/sso?key=x"}})
			return verdict.Input{Endpoint: wire.Begin, Resp: resp, Err: err, Opener: plainOpener{}}
		}(), "license: begin_session: a proxy or gateway answered instead of the licence server (HTTP 302: redirect to https://login.corp.example); will retry"},
		{func() verdict.Input {
			resp, err := reply(403, []byte(proxyPage), nil)
			return verdict.Input{Endpoint: wire.Begin, Resp: resp, Err: err, Opener: plainOpener{}}
		}(), "license: begin_session: a proxy or gateway answered instead of the licence server (HTTP 403: HTML page: Access Denied); will retry"},
		{func() verdict.Input {
			resp, err := reply(403, []byte(`{"success":false,"error":"seat limit reached: 3 of 3 seats in use"}`), nil)
			return verdict.Input{Endpoint: wire.Begin, Resp: resp, Err: err, Opener: plainOpener{}}
		}(), "license: begin_session: refused by the licence server (HTTP 403): seat limit reached: 3 of 3 seats in use"},
		{func() verdict.Input {
			resp, err := reply(503, []byte(`{"success":false,"error":"down for maintenance"}`), nil)
			err.(*transport.Error).Attempts = 3
			return verdict.Input{Endpoint: wire.Extend, Resp: resp, Err: err, Opener: plainOpener{}}
		}(), "license: extend_session: server unreachable after 3 attempts (HTTP 503: service unavailable); will retry"},
	}
	for _, tc := range cases {
		tc.in.Redactor = red
		assert.Equal(t, tc.want, verdict.Classify(tc.in).Err.Error())
	}
}

// TestRedactionInClassify checks that every network text the classifier
// keeps passes the redactor: refusal messages, times, HTML titles,
// redirect targets, transient texts and request values.
func TestRedactionInClassify(t *testing.T) {
	const key, lic, token = "APIKEY-5f1c9e", "LICKEY-77aa01", "TOKEN-abcdef012345"
	red := verdict.NewRedactor(key, lic)
	red.AddLive(token)
	extra := verdict.PayloadValues([]byte(`{"host_name":"HOST-secret-01","token":"` + token + `"}`))
	echo := key + " " + lic + " " + token + " HOST-secret-01"
	bodies := []struct {
		status int
		body   string
		header http.Header
	}{
		{403, `{"success":false,"time":"` + echo + `","error":"bad ` + echo + `"}`, nil},
		{200, `{"success":false,"error":"` + echo + `"}`, nil},
		{503, `{"success":false,"error":"` + echo + `"}`, nil},
		{403, `<html><title>` + echo + `</title></html>`, nil},
		{404, echo, nil},
		{302, ``, http.Header{"Location": {"https://" + key + ".example/"}}},
	}
	for _, bb := range bodies {
		resp, err := reply(bb.status, []byte(bb.body), bb.header)
		out := verdict.Classify(verdict.Input{Endpoint: wire.Begin, Resp: resp, Err: err, Opener: plainOpener{},
			Redactor: red, Extra: extra, Decode: decodeBegin})
		require.Error(t, out.Err)
		txt := fmt.Sprintf("%v %+v", out.Err, out.Err)
		if api, ok := out.Err.(*verdict.APIError); ok {
			txt += api.Message + api.Time
		}
		for _, s := range []string{key, lic, token, "HOST-secret-01"} {
			assert.NotContains(t, txt, s, "status %d", bb.status)
		}
	}
}

// FuzzClassify checks the classifier's invariants on any reply: it never
// panics, every failure matches exactly one category, and its text is one
// printable line without the secret.
func FuzzClassify(f *testing.F) {
	for _, s := range []int{200, 302, 401, 403, 404, 407, 422, 429, 503} {
		for _, body := range []string{"", specFailure, successBegin, proxyPage, otherJSON, `{"data":"AAAA"}`} {
			f.Add(s, []byte(body), false, uint8(1))
		}
	}
	f.Add(422, []byte(""), true, uint8(3))
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(f, err)
	p := newPair(f, priv)
	const secret = "SECRET-KEY-0123456789"
	red := verdict.NewRedactor(secret)
	f.Fuzz(func(t *testing.T, status int, body []byte, sealed bool, ep uint8) {
		endpoint := wire.Endpoints[int(ep)%len(wire.Endpoints)]
		status = 100 + abs(status)%500
		body = bytes.ReplaceAll(body, []byte("{}"), []byte(`{"e":"`+secret+`"}`))
		resp, err := reply(status, body, nil)
		in := verdict.Input{Endpoint: endpoint, Resp: resp, Err: err, Sealed: sealed, Redactor: red, Decode: decodeBegin}
		in.Opener = plainOpener{}
		if sealed {
			in.Opener = p.opener
		}
		out := verdict.Classify(in)
		if out.Category == verdict.Success || out.Category == verdict.AlreadyEnded {
			if out.Err != nil {
				t.Fatalf("success with error %v", out.Err)
			}
			if sealed {
				t.Fatalf("a reply that never was sealed opened (%v): %q", out.Category, body)
			}
			return
		}
		n := 0
		for _, c := range []error{verdict.ErrUnreachable, verdict.ErrRefused, verdict.ErrClientFault} {
			if errors.Is(out.Err, c) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%v matches %d categories", out.Err, n)
		}
		msg := out.Err.Error()
		if strings.Contains(msg, secret) || strings.ContainsAny(msg, "\n\r\x00") {
			t.Fatalf("bad message %q", msg)
		}
		if sealed && out.Category == verdict.Refused {
			t.Fatalf("an unsealed body refused in sealed mode: %q", body)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}

// TestFailureShapeSpellings checks that the quick check which spares a
// success its failure decode misses no spelling encoding/json accepts for
// the "error" member, and that a success stays a success.
func TestFailureShapeSpellings(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"success":false,"error":"license revoked"}`,
		`{"success":false,"ERROR":"license revoked"}`,
		`{"success":false,"Error":"license revoked"}`,
		`{"success":false,"\u0065rror":"license revoked"}`,
		`{"success":false,"err\u006Fr":"license revoked"}`,
	} {
		resp, err := reply(403, []byte(body), nil)
		out := verdict.Classify(verdict.Input{Endpoint: wire.Extend, Resp: resp, Err: err, Opener: plainOpener{}})
		assert.Equal(t, verdict.Refused, out.Category, body)
	}
	resp, err := reply(200, []byte(`{"status":1,"time":"2026-12-07T10:00:00Z","token":"t"}`), nil)
	out := verdict.Classify(verdict.Input{Endpoint: wire.Extend, Resp: resp, Err: err, Opener: plainOpener{}})
	assert.Equal(t, verdict.Success, out.Category)
}

// TestPayloadValuesRemovedLazily checks that request values given as
// Payload are removed from a refusal's message as Extra values are.
func TestPayloadValuesRemovedLazily(t *testing.T) {
	t.Parallel()
	resp, err := reply(403, []byte(`{"success":false,"error":"no seat for machine-7f3a9c21 now"}`), nil)
	out := verdict.Classify(verdict.Input{Endpoint: wire.Begin, Resp: resp, Err: err, Opener: plainOpener{},
		Redactor: verdict.NewRedactor(), Payload: []byte(`{"cpu_id":"machine-7f3a9c21"}`)})
	var api *verdict.APIError
	require.ErrorAs(t, out.Err, &api)
	assert.Equal(t, "no seat for [redacted] now", api.Message)
}

// TestCredentialsRejected: a server that answers but does not authenticate
// the client is marked as a credentials fault, which stays unreachable
// (grace applies) and names the likely causes; freshness rejections, proxy
// and firewall pages and server errors are not.
func TestCredentialsRejected(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	rejection := func(err error) (int, []byte) { return envelope.RejectionReply(err, now) }
	ua, uaBody := rejection(envelope.ErrUnauthentic)
	st, stBody := rejection(envelope.ErrStale)
	rp, rpBody := rejection(envelope.ErrReplayed)
	b := func(s string) []byte { return []byte(s) }
	for _, tc := range []struct {
		name   string
		sealed bool
		status int
		body   []byte
		want   bool
		cat    verdict.Category
	}{
		{"envelope unauthentic (the mock: wrong API key or key)", true, ua, uaBody, true, verdict.Unreachable},
		{"envelope unauthentic, unsealed", false, ua, uaBody, true, verdict.Unreachable},
		{"envelope stale", true, st, stBody, false, verdict.Unreachable},
		{"envelope replayed", true, rp, rpBody, false, verdict.Unreachable},
		{"401 plain text", true, 401, b("Unauthorized"), true, verdict.Unreachable},
		{"401 spec failure, not sealed", true, 401, b(`{"success":false,"error":"invalid API key"}`), true, verdict.Unreachable},
		{"401 other JSON", false, 401, b(`{"message":"bad key"}`), true, verdict.Unreachable},
		{"403 spec failure, not sealed", true, 403, b(`{"success":false,"error":"access denied"}`), true, verdict.Unreachable},
		{"403 firewall page", true, 403, b(proxyPage), false, verdict.Unreachable},
		{"403 other JSON", true, 403, b(otherJSON), false, verdict.Unreachable},
		{"407", true, 407, b(proxyPage), false, verdict.Unreachable},
		{"503", true, 503, b(`{"success":false,"error":"invalid API key"}`), false, verdict.Unreachable},
		{"403 spec failure, unsealed opt-out: a refusal", false, 403, b(specFailure), false, verdict.Refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := verdict.Input{Endpoint: "begin_session", Sealed: tc.sealed, Redactor: verdict.NewRedactor("api-key-0000"),
				Opener: plainOpener{}}
			if tc.sealed {
				in.Opener = noOpener{}
			}
			in.Resp, in.Err = reply(tc.status, tc.body, nil)
			out := verdict.Classify(in)
			require.Equal(t, tc.cat, out.Category)
			assert.Equal(t, tc.want, errors.Is(out.Err, verdict.ErrCredentialsRejected), "errors.Is(%v, ErrCredentialsRejected)", out.Err)
			if tc.cat == verdict.Unreachable {
				assert.ErrorIs(t, out.Err, verdict.ErrUnreachable)
			}
			if !tc.want {
				return
			}
			msg := out.Err.Error()
			for _, cause := range []string{"API key", "public key", "shared secret", "key id"} {
				assert.Contains(t, msg, cause)
			}
			assert.Contains(t, msg, "did not authenticate this client")
			assert.Contains(t, msg, "(HTTP 40")
		})
	}
}

// noOpener opens nothing: the reply a client gets when the server could not
// seal its answer.
type noOpener struct{}

func (noOpener) OpenReply([]byte) ([]byte, error) { return nil, errors.New("does not open") }

// TestEnvelopeRejection: the server's plain envelope-level rejection is
// unreachable (never a refusal), sealed or not, and carries its code and
// the server's time for the client's clock correction.
func TestEnvelopeRejection(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, err := range []error{envelope.ErrStale, envelope.ErrUnauthentic, envelope.ErrReplayed, envelope.ErrMalformed} {
		status, body := envelope.RejectionReply(err, now)
		for _, sealed := range []bool{false, true} {
			out := verdict.Classify(verdict.Input{
				Endpoint: "extend_session",
				Resp:     &transport.Response{Status: status, Body: body},
				Err:      &transport.Error{Endpoint: "extend_session", Status: status, Attempts: 1},
				Sealed:   sealed,
			})
			require.Equal(t, verdict.Unreachable, out.Category, "%v sealed=%v", err, sealed)
			assert.ErrorIs(t, out.Err, verdict.ErrUnreachable)
			assert.NotErrorIs(t, out.Err, verdict.ErrRefused)
			var rej *verdict.EnvelopeRejection
			require.True(t, errors.As(out.Err, &rej))
			assert.True(t, rej.ServerTime.Equal(now))
			var e *verdict.Error
			require.True(t, errors.As(out.Err, &e))
			assert.Equal(t, verdict.DetailEnvelopeRejected, e.Detail)
		}
	}
}
