package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/examples/legacyscheme/scheme"
	"github.com/licensekit/licensekit-go/license"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testKeys(t testing.TB) (*rsa.PrivateKey, []byte) {
	t.Helper()
	priv, err := scheme.ParsePrivateKey(mustRead("testdata/server-rsa.key"))
	if err != nil {
		t.Fatal(err)
	}
	return priv, mustRead("testdata/server-rsa.pub")
}

// servers returns the two servers every end-to-end test runs against: the
// one written from the description (docServer) and the example's handler
// (scheme.Opener with envelope.Guard) around the same licence logic.
func servers(t *testing.T) map[string]target {
	priv, _ := testKeys(t)
	d1 := newDocServer(priv)
	s1 := httptest.NewServer(d1)
	t.Cleanup(s1.Close)
	d2 := newDocServer(priv)
	s2 := httptest.NewServer(newLegacyHandler(priv, d2.act, d2.scope))
	t.Cleanup(s2.Close)
	return map[string]target{
		"described":       {s1.URL + "/api/v2", d1},
		"example handler": {s2.URL + "/api/v2", d2},
	}
}

// target is one server under test: its API URL and its licence logic.
type target struct {
	url string
	doc *docServer
}

func newClient(t *testing.T, url string, opts ...license.Option) *license.Client {
	t.Helper()
	_, pubPEM := testKeys(t)
	pub, err := scheme.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := scheme.NewSealer(pub)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]license.Option{license.WithSealer(sealer),
		license.WithStartBudget(license.StartBudget{Online: 2 * time.Second})}, opts...)
	c, err := license.New(license.Config{ServerURL: url, APIKey: "my-product", ProductGUID: "my-product",
		LicenseKey: "K-1"}, opts...)
	if err != nil {
		t.Fatalf("license.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestLifecycle(t *testing.T) {
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, srv.url)
			ctx := context.Background()
			if err := c.Start(ctx); err != nil {
				t.Fatalf("Start = %v; want nil", err)
			}
			if got := c.Status().State; got != license.Active || !c.HasFeature("pro") {
				t.Fatalf("after Start: state %v, pro %v; want Active, true", got, c.HasFeature("pro"))
			}
			if err := c.ExtendSession(ctx); err != nil {
				t.Fatalf("ExtendSession = %v; want nil", err)
			}
			if err := c.Close(ctx); err != nil {
				t.Fatalf("Close = %v; want nil", err)
			}
			if n := srv.doc.liveSessions(); n != 0 {
				t.Errorf("live sessions after Close = %d; want 0", n)
			}
			for _, ep := range []string{"register_instance", "begin_session", "extend_session", "end_session"} {
				if n := srv.doc.count(ep); n != 1 {
					t.Errorf("%s processed %d times; want 1", ep, n)
				}
			}
		})
	}
}

// A sealed refusal is the server's word: refused at once, no grace.
func TestSealedRefusalIsRefused(t *testing.T) {
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			srv.doc.set(func(s *docServer) { s.revoked = true })
			c := newClient(t, srv.url)
			err := c.Start(context.Background())
			if !errors.Is(err, license.ErrRevoked) || !errors.Is(err, license.ErrRefused) || errors.Is(err, license.ErrUnreachable) {
				t.Fatalf("Start = %v; want a refusal matching ErrRevoked", err)
			}
			var api *license.APIError
			if !errors.As(err, &api) || !api.Sealed {
				t.Errorf("Start error %v is not a sealed *APIError", err)
			}
			if got := c.Status().State; got != license.Refused {
				t.Errorf("state = %v; want Refused", got)
			}
		})
	}
}

// A plain reply (a fake server, or a forged refusal on the path) is never a
// verdict under the secure default: unreachable, grace applies.
func TestForgedPlainReplyIsUnreachable(t *testing.T) {
	priv, _ := testKeys(t)
	for _, revoked := range []bool{false, true} {
		d := newDocServer(priv)
		d.forgePlain, d.revoked = true, revoked
		srv := httptest.NewServer(d)
		c := newClient(t, srv.URL+"/api/v2", license.WithStartBudget(license.StartBudget{Online: 2 * time.Second})) // room for a loaded machine or Wine
		err := c.Start(context.Background())
		if !errors.Is(err, license.ErrUnreachable) || !errors.Is(err, license.ErrUnauthenticated) || errors.Is(err, license.ErrRefused) {
			t.Errorf("revoked=%v: Start = %v; want unreachable (unauthenticated), not refused", revoked, err)
		}
		if got := c.Status().State; got == license.Refused || got == license.Active {
			t.Errorf("revoked=%v: state = %v; want neither Refused nor Active", revoked, got)
		}
		_ = c.Close(context.Background())
		srv.Close()
	}
}

// A client whose clock is an hour off is told "stale" with the server's
// time, corrects its offset and gets through; the stale request was not
// processed.
func TestClockOffsetCorrected(t *testing.T) {
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, srv.url, license.WithTestHooks(license.TestHooks{WallClock: func() time.Time { return time.Now().Add(-time.Hour) }}))
			if err := c.Start(context.Background()); err != nil {
				t.Fatalf("Start = %v; want nil after the offset correction", err)
			}
			if n := srv.doc.count("register_instance"); n != 1 {
				t.Errorf("register_instance processed %d times; want 1", n)
			}
			if name == "described" && srv.doc.rejections("stale_timestamp") != 1 {
				t.Errorf("stale rejections = %d; want 1 (the first attempt)", srv.doc.rejections("stale_timestamp"))
			}
		})
	}
}

// post sends one sealed request to url/endpoint and returns status and body.
func post(t *testing.T, url, endpoint string, sd envelope.Sealed) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": sd.Key, "data": sd.Data})
	req, err := http.NewRequest(http.MethodPost, url+"/"+endpoint, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // no idle connection left for goleak
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func sealer(t testing.TB) *scheme.Sealer {
	t.Helper()
	_, pubPEM := testKeys(t)
	pub, _ := scheme.ParsePublicKey(pubPEM)
	s, err := scheme.NewSealer(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func flipByte(t *testing.T, b64 string, i int) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	raw[i%len(raw)] ^= 0x01
	return base64.StdEncoding.EncodeToString(raw)
}

func rejectionCode(body []byte) string {
	var v struct {
		Code string `json:"envelope_error"`
	}
	_ = json.Unmarshal(body, &v)
	return v.Code
}

// Both servers reject what the description says they must, with a plain
// envelope-level rejection, and process nothing.
func TestServerChecks(t *testing.T) {
	payload := []byte(`{"product_guid":"my-product","license_key":"K-1"}`)
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			s := sealer(t)
			seal := func(endpoint string, at time.Time) envelope.Sealed {
				sd, err := s.Seal(envelope.Request{Endpoint: endpoint, Time: at}, payload)
				if err != nil {
					t.Fatal(err)
				}
				return sd
			}
			good := seal("register_instance", time.Now())
			tamperedKey := good
			tamperedKey.Key = flipByte(t, good.Key, 17)
			tamperedData := good
			tamperedData.Data = flipByte(t, good.Data, 40)
			tamperedHeader := good
			tamperedHeader.Data = flipByte(t, good.Data, 3) // the timestamp, authenticated
			for _, tc := range []struct {
				name     string
				endpoint string
				sd       envelope.Sealed
				status   int
				code     string
			}{
				{"tampered key", "register_instance", tamperedKey, http.StatusUnauthorized, "unauthentic"},
				{"tampered data", "register_instance", tamperedData, http.StatusUnauthorized, "unauthentic"},
				{"tampered timestamp", "register_instance", tamperedHeader, http.StatusUnauthorized, "unauthentic"},
				{"other endpoint", "begin_session", good, http.StatusUnauthorized, "unauthentic"},
				{"stale timestamp", "register_instance", seal("register_instance", time.Now().Add(-10*time.Minute)), http.StatusUnauthorized, "stale_timestamp"},
				{"future timestamp", "register_instance", seal("register_instance", time.Now().Add(10*time.Minute)), http.StatusUnauthorized, "stale_timestamp"},
			} {
				status, body := post(t, srv.url, tc.endpoint, tc.sd)
				if status != tc.status || rejectionCode(body) != tc.code {
					t.Errorf("%s: HTTP %d, code %q; want %d, %q", tc.name, status, rejectionCode(body), tc.status, tc.code)
				}
				if _, err := tc.sd.Reply.OpenReply(body); !errors.Is(err, envelope.ErrUnauthentic) {
					t.Errorf("%s: the plain rejection opened as a sealed reply (err %v)", tc.name, err)
				}
			}
			if n := srv.doc.count("register_instance") + srv.doc.count("begin_session"); n != 0 {
				t.Fatalf("the rejected requests were processed %d times; want 0", n)
			}

			// The good request, then the same bytes again (a retry or a
			// replay): one answer, processed once.
			status1, body1 := post(t, srv.url, "register_instance", good)
			status2, body2 := post(t, srv.url, "register_instance", good)
			if status1 != http.StatusOK || status2 != status1 || !bytes.Equal(body1, body2) {
				t.Errorf("replay: HTTP %d then %d, same body %v; want 200 twice with the stored reply", status1, status2, bytes.Equal(body1, body2))
			}
			if n := srv.doc.count("register_instance"); n != 1 {
				t.Errorf("register_instance processed %d times; want 1", n)
			}
			plain, err := good.Reply.OpenReply(body1)
			if err != nil || !bytes.Contains(plain, []byte(`"guid"`)) {
				t.Errorf("OpenReply(reply) = %s, %v; want the register reply", plain, err)
			}
		})
	}
}

// A sealed reply opens only for its own request: moved onto another request
// (even to the same endpoint with the same payload), altered, or replaced by
// plain JSON, it is unauthentic.
func TestReplyBoundToItsRequest(t *testing.T) {
	payload := []byte(`{"product_guid":"my-product","license_key":"K-1"}`)
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			s := sealer(t)
			a, _ := s.Seal(envelope.Request{Endpoint: "register_instance"}, payload)
			b, _ := s.Seal(envelope.Request{Endpoint: "register_instance"}, payload)
			_, replyA := post(t, srv.url, "register_instance", a)
			_, replyB := post(t, srv.url, "register_instance", b)
			if _, err := a.Reply.OpenReply(replyA); err != nil {
				t.Fatalf("a's reply does not open for a: %v", err)
			}
			var sealed struct{ Data string }
			_ = json.Unmarshal(replyA, &sealed)
			altered, _ := json.Marshal(map[string]string{"data": flipByte(t, sealed.Data, 50)})
			for what, body := range map[string][]byte{
				"a's reply on b":  replyA,
				"b's reply on a":  replyB,
				"altered reply":   altered,
				"plain success":   []byte(`{"success":true,"guid":"x","control_options":{"session_duration":600,"validation_grace_period":3600}}`),
				"plain refusal":   []byte(`{"success":false,"error":"license revoked"}`),
				"empty":           nil,
				"data not base64": []byte(`{"data":"!!"}`),
			} {
				opener := b.Reply
				if what == "b's reply on a" || what == "altered reply" {
					opener = a.Reply
				}
				if _, err := opener.OpenReply(body); !errors.Is(err, envelope.ErrUnauthentic) {
					t.Errorf("%s: OpenReply error %v; want ErrUnauthentic", what, err)
				}
			}
		})
	}
}

// Requests built by hand from the description open with the example's
// Opener, and an id reused by a different request is "replayed" on both
// servers.
func TestHandBuiltRequests(t *testing.T) {
	priv, _ := testKeys(t)
	o, _ := scheme.NewOpener(priv)
	payload := []byte(`{"product_guid":"my-product","license_key":"K-1"}`)
	id := bytes.Repeat([]byte{0x5a}, 16)
	key, data := handSeal(&priv.PublicKey, "register_instance", time.Now(), id, payload)
	opened, err := o.Open(envelope.Incoming{Key: key, Data: data, Endpoint: "register_instance"})
	if err != nil || !bytes.Equal(opened.Plaintext, payload) || !bytes.Equal(opened.ID[:], id) {
		t.Fatalf("Opener on a hand-built request: %v, %v", opened, err)
	}
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			id := make([]byte, 16)
			_, _ = rand.Read(id)
			k1, d1 := handSeal(&priv.PublicKey, "register_instance", time.Now(), id, payload)
			k2, d2 := handSeal(&priv.PublicKey, "register_instance", time.Now(), id, payload)
			if status, body := post(t, srv.url, "register_instance", envelope.Sealed{Key: k1, Data: d1}); status != http.StatusOK {
				t.Fatalf("first request: HTTP %d %s; want 200", status, body)
			}
			status, body := post(t, srv.url, "register_instance", envelope.Sealed{Key: k2, Data: d2})
			if status != http.StatusUnauthorized || rejectionCode(body) != "replayed" {
				t.Errorf("same id, other data: HTTP %d, code %q; want 401, \"replayed\"", status, rejectionCode(body))
			}
			if n := srv.doc.count("register_instance"); n != 1 {
				t.Errorf("register_instance processed %d times; want 1", n)
			}
		})
	}
}

func TestKeysAndInputs(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scheme.NewSealer(&small.PublicKey); err == nil {
		t.Error("NewSealer accepted a 1024-bit key")
	}
	if _, err := scheme.NewOpener(small); err == nil {
		t.Error("NewOpener accepted a 1024-bit key")
	}
	if _, err := scheme.ParsePublicKey(mustRead("testdata/server-rsa.key")); err == nil {
		t.Error("ParsePublicKey accepted a private key block")
	}
	if _, err := scheme.ParsePublicKey([]byte("not pem")); err == nil {
		t.Error("ParsePublicKey accepted garbage")
	}

	priv, _ := testKeys(t)
	o, _ := scheme.NewOpener(priv)
	s := sealer(t)
	good, _ := s.Seal(envelope.Request{Endpoint: "begin_session"}, []byte(`{}`))
	if _, err := s.Seal(envelope.Request{Endpoint: "begin session"}, nil); !errors.Is(err, envelope.ErrMalformed) {
		t.Errorf("Seal with an invalid endpoint: %v; want ErrMalformed", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(good.Data)
	raw[0] = 0x02
	otherVersion := base64.StdEncoding.EncodeToString(raw)
	for _, tc := range []struct {
		name string
		in   envelope.Incoming
		want error
	}{
		{"empty key", envelope.Incoming{Data: good.Data, Endpoint: "begin_session"}, envelope.ErrMalformed},
		{"short key", envelope.Incoming{Key: good.Key[:40], Data: good.Data, Endpoint: "begin_session"}, envelope.ErrMalformed},
		{"short data", envelope.Incoming{Key: good.Key, Data: good.Data[:40], Endpoint: "begin_session"}, envelope.ErrMalformed},
		{"bad base64", envelope.Incoming{Key: good.Key, Data: "!!!!", Endpoint: "begin_session"}, envelope.ErrMalformed},
		{"other version", envelope.Incoming{Key: good.Key, Data: otherVersion, Endpoint: "begin_session"}, envelope.ErrUnsupportedVersion},
		{"no endpoint", envelope.Incoming{Key: good.Key, Data: good.Data}, envelope.ErrUnauthentic},
	} {
		if _, err := o.Open(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: Open error %v; want %v", tc.name, err, tc.want)
		}
	}
	opened, err := o.Open(envelope.Incoming{Key: good.Key, Data: good.Data, Endpoint: "begin_session"})
	if err != nil || string(opened.Plaintext) != `{}` || opened.ID != good.ID || opened.Endpoint != "begin_session" {
		t.Fatalf("Open(good) = %+v, %v; want the plaintext, id and endpoint", opened, err)
	}
	if d := time.Since(opened.Time); d < 0 || d > time.Minute {
		t.Errorf("opened timestamp %v is not now", opened.Time)
	}
}

func FuzzOpen(f *testing.F) {
	priv, _ := testKeys(f)
	o, _ := scheme.NewOpener(priv)
	pub := &priv.PublicKey
	s, _ := scheme.NewSealer(pub)
	sd, _ := s.Seal(envelope.Request{Endpoint: "extend_session"}, []byte(`{"token":"t"}`))
	f.Add(sd.Key, sd.Data, "extend_session")
	f.Add(sd.Key, sd.Data[:60], "extend_session")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, key, data, endpoint string) {
		opened, err := o.Open(envelope.Incoming{Key: key, Data: data, Endpoint: endpoint})
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) && !errors.Is(err, envelope.ErrUnauthentic) &&
				!errors.Is(err, envelope.ErrUnsupportedVersion) {
				t.Fatalf("Open error %v matches no category", err)
			}
			return
		}
		if opened.Endpoint != endpoint {
			t.Fatalf("opened for %q at %q", opened.Endpoint, endpoint)
		}
	})
}

func FuzzOpenReply(f *testing.F) {
	s := sealer(f)
	sd, _ := s.Seal(envelope.Request{Endpoint: "begin_session"}, []byte(`{}`))
	f.Add([]byte(`{"data":"gQ=="}`))
	f.Add([]byte(`{"success":true}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := sd.Reply.OpenReply(body); !errors.Is(err, envelope.ErrUnauthentic) {
			t.Fatalf("OpenReply(%q) error %v; want ErrUnauthentic", body, err)
		}
	})
}

// A flood of valid envelopes for licences and sessions that do not exist
// (anyone holding the product's public key can seal them) is refused
// without being remembered, and a client still runs its lifecycle.
func TestFloodTakesNoRoom(t *testing.T) {
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			s := sealer(t)
			for i := range 300 {
				ep := []string{"register_instance", "begin_session", "extend_session"}[i%3]
				payload := fmt.Appendf(nil, `{"product_guid":"my-product","license_key":"JUNK-%d","token":"t-%d"}`, i, i)
				sd, err := s.Seal(envelope.Request{Endpoint: ep, Time: time.Now().Add(30 * time.Second)}, payload)
				if err != nil {
					t.Fatal(err)
				}
				if status, _ := post(t, srv.url, ep, sd); status == http.StatusOK {
					t.Fatalf("junk %s granted", ep)
				}
			}
			srv.doc.set(func(d *docServer) {
				if len(d.seen) != 0 {
					t.Errorf("the described server remembered %d junk requests", len(d.seen))
				}
			})
			c := newClient(t, srv.url)
			if err := c.Start(context.Background()); err != nil {
				t.Fatalf("Start after the flood: %v", err)
			}
		})
	}
}

// Example runs the program: a licence lifecycle through the scheme, the
// client of newLegacyClient against the handler of newLegacyHandler.
func Example() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// Active pro: true
	// Ended sessions left: 0
}

func mustRead(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		log.Fatal(err)
	}
	return b
}
