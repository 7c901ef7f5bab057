package licensetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

var update = flag.Bool("update", false, "rewrite golden files")

const goldenDir = "../../testdata/licensetest"

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func keysOf(tb testing.TB, body []byte) []string {
	tb.Helper()
	var m map[string]json.RawMessage
	require.NoError(tb, json.Unmarshal(body, &m), "body %q", body)
	return slices.Sorted(maps.Keys(m))
}

func regFor(p, k string, n int) wire.RegisterRequest {
	r := wiretest.RegisterReq(n)
	r.ProductGUID, r.LicenseKey = p, k
	return r
}

func beginFor(p, k, guid string, n int) wire.BeginRequest {
	return wire.BeginRequest{ProductGUID: p, LicenseKey: k, InstanceGUID: guid, Machine: wiretest.Machine(n)}
}

// patch marshals v, then sets (or, for a nil value, deletes) one member.
func patch(v any, name string, value any) []byte {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if value == nil {
		delete(m, name)
	} else {
		if raw, ok := value.(json.RawMessage); ok {
			value = raw
		}
		m[name] = value
	}
	out, _ := json.Marshal(m)
	return out
}

// fixture is a server with licences in every state and tokens in every
// state, for the failure table.
type fixture struct {
	s                            *licensetest.Server
	c                            *wiretest.Client
	clock                        *fakeClock
	guid1, guid2                 string
	live, ended, lapsed, revoked string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{clock: newFakeClock()}
	fx.s = licensetest.NewServer(&licensetest.Config{Clock: fx.clock.Now})
	t.Cleanup(fx.s.Close)
	for _, l := range []licensetest.License{
		{ProductGUID: "p1", Key: "k1", Seats: 1, SessionDuration: time.Minute},
		{ProductGUID: "p2", Key: "k2", SessionDuration: time.Minute},
		{ProductGUID: "p3", Key: "k3", SessionDuration: 10 * time.Second},
		{ProductGUID: "p4", Key: "k4", SessionDuration: time.Minute},
		{ProductGUID: "p5", Key: "k5", State: licensetest.Expired},
	} {
		require.NoError(t, fx.s.AddLicense(l))
	}
	fx.c = wiretest.NewClient(t, fx.s, nil)
	fx.guid1 = registerFor(t, fx.c, "p1", "k1", 1)
	fx.live = beginAs(t, fx.c, "p1", "k1", fx.guid1)
	fx.guid2 = registerFor(t, fx.c, "p2", "k2", 2)
	fx.ended = beginAs(t, fx.c, "p2", "k2", fx.guid2)
	mustEnd(t, fx.c, fx.ended)
	g3 := registerFor(t, fx.c, "p3", "k3", 3)
	fx.lapsed = beginAs(t, fx.c, "p3", "k3", g3)
	g4 := registerFor(t, fx.c, "p4", "k4", 4)
	fx.revoked = beginAs(t, fx.c, "p4", "k4", g4)
	require.NoError(t, fx.s.SetLicenseState("p4", "k4", licensetest.Revoked))
	fx.clock.Advance(11 * time.Second)
	return fx
}

func registerFor(tb testing.TB, c *wiretest.Client, p, k string, n int) string {
	tb.Helper()
	r := c.MustPost(tb, licensetest.Register, regFor(p, k, n))
	require.Equal(tb, http.StatusOK, r.Status, "%s", r.Body)
	rep, err := wire.DecodeRegister(r.Body)
	require.NoError(tb, err)
	return rep.GUID
}

func beginAs(tb testing.TB, c *wiretest.Client, p, k, guid string) string {
	tb.Helper()
	r := c.MustPost(tb, licensetest.Begin, beginFor(p, k, guid, 0))
	require.Equal(tb, http.StatusOK, r.Status, "%s", r.Body)
	rep, err := wire.DecodeBegin(r.Body)
	require.NoError(tb, err)
	return rep.Token
}

// TestFailures covers every failure shape of every endpoint. The statuses and
// error texts are also a golden file: clients classify on them.
func TestFailures(t *testing.T) {
	type tc struct {
		endpoint string
		name     string
		payload  func(fx *fixture) any // sealed and sent; nil when raw is set
		raw      func(fx *fixture) []byte
		status   int
		word     string
	}
	var cases []tc
	for _, ep := range []string{licensetest.Register, licensetest.Begin, licensetest.Extend, licensetest.End} {
		cases = append(cases,
			tc{ep, "body is not JSON", nil, func(*fixture) []byte { return []byte("not json") }, 400, "envelope: malformed request"},
			tc{ep, "body is a JSON array", nil, func(*fixture) []byte { return []byte(`["key","data"]`) }, 400, "envelope: malformed request"},
			tc{ep, "data missing", nil, func(fx *fixture) []byte { return []byte(`{"key":"` + fx.s.Info().APIKey + `"}`) }, 400, "envelope: malformed request"},
			tc{ep, "key is a number", nil, func(*fixture) []byte { return []byte(`{"key":1,"data":"AAAA"}`) }, 400, "envelope: malformed request"},
			tc{ep, "extra member", nil, func(fx *fixture) []byte { return []byte(`{"key":"` + fx.s.Info().APIKey + `","data":"AAAA","x":""}`) }, 400, "envelope: malformed request"},
			tc{ep, "member twice", nil, func(fx *fixture) []byte {
				return []byte(`{"key":"` + fx.s.Info().APIKey + `","data":"AAAA","data":"AAAA"}`)
			}, 400, "envelope: malformed request"},
			tc{ep, "unknown api key", nil, func(fx *fixture) []byte {
				sd, _ := fx.c.Sealer.Seal(envelope.Request{APIKey: "other", Endpoint: ep}, []byte(`{}`))
				b, _ := json.Marshal(wire.Request{Key: "other", Data: sd.Data})
				return b
			}, 401, "envelope: request does not authenticate"},
			tc{ep, "data does not open", nil, func(fx *fixture) []byte {
				b, _ := json.Marshal(wire.Request{Key: fx.s.Info().APIKey, Data: "AAAAAAAAAAAAAAAAAAAAAAAA"})
				return b
			}, 400, "envelope: unsupported version"},
			tc{ep, "data sealed to another key", nil, func(fx *fixture) []byte {
				other, _ := envelope.GenerateKey(envelope.KEMX25519)
				sealer, _ := envelope.NewSealer(other.Public())
				sd, _ := sealer.Seal(envelope.Request{APIKey: fx.s.Info().APIKey, Endpoint: ep}, []byte(`{}`))
				b, _ := json.Marshal(wire.Request{Key: fx.s.Info().APIKey, Data: sd.Data})
				return b
			}, 401, "envelope: request does not authenticate"},
			tc{ep, "data sealed for another endpoint", nil, func(fx *fixture) []byte {
				sd, _ := fx.c.Sealer.Seal(envelope.Request{APIKey: fx.s.Info().APIKey, Endpoint: otherEndpoint(ep)}, []byte(`{}`))
				b, _ := json.Marshal(wire.Request{Key: fx.s.Info().APIKey, Data: sd.Data})
				return b
			}, 401, "envelope: request does not authenticate"},
			tc{ep, "stale timestamp", nil, func(fx *fixture) []byte {
				sd, _ := fx.c.Sealer.Seal(envelope.Request{APIKey: fx.s.Info().APIKey, Endpoint: ep, Time: time.Now().Add(-time.Hour)}, []byte(`{}`))
				b, _ := json.Marshal(wire.Request{Key: fx.s.Info().APIKey, Data: sd.Data})
				return b
			}, 401, "envelope: timestamp outside the accepted window"},
			tc{ep, "payload is an array", func(*fixture) any { return []byte(`[1]`) }, nil, 400, "not a JSON object"},
			tc{ep, "payload is invalid JSON", func(*fixture) any { return []byte(`{"token":`) }, nil, 400, "invalid JSON"},
		)
	}
	reg := func(p, k string) func(*fixture) any { return func(*fixture) any { return regFor(p, k, 9) } }
	regPatch := func(name string, v any) func(*fixture) any {
		return func(*fixture) any { return patch(regFor("p1", "k1", 9), name, v) }
	}
	cases = append(cases,
		tc{licensetest.Register, "product_guid missing", regPatch("product_guid", nil), nil, 400, "missing field product_guid"},
		tc{licensetest.Register, "license_key empty", regPatch("license_key", ""), nil, 400, "field license_key is empty"},
		tc{licensetest.Register, "cpu_id is a number", regPatch("cpu_id", 7), nil, 400, "field cpu_id must be a string"},
		tc{licensetest.Register, "host_name missing", regPatch("host_name", nil), nil, 400, "missing field host_name"},
		tc{licensetest.Register, "mac_addresses is a string", regPatch("mac_addresses", "aa"), nil, 400, "mac_addresses must be an array of strings"},
		tc{licensetest.Register, "mac_addresses holds a number", regPatch("mac_addresses", []int{1}), nil, 400, "mac_addresses must be an array of strings"},
		tc{licensetest.Register, "user_hash is an array", regPatch("user_hash", []string{}), nil, 400, "user_hash must be an object of strings"},
		tc{licensetest.Register, "name is null", regPatch("name", json.RawMessage("null")), nil, 400, "field name must be a string"},
		tc{licensetest.Register, "unknown license", reg("p1", "nope"), nil, 403, "unknown license"},
		tc{licensetest.Register, "revoked license", reg("p4", "k4"), nil, 403, "revoked"},
		tc{licensetest.Register, "expired license", reg("p5", "k5"), nil, 403, "expired"},
	)
	begin := func(p, k string, guid func(fx *fixture) string) func(*fixture) any {
		return func(fx *fixture) any { return beginFor(p, k, guid(fx), 9) }
	}
	g1 := func(fx *fixture) string { return fx.guid1 }
	g2 := func(fx *fixture) string { return fx.guid2 }
	beginPatch := func(name string, v any) func(*fixture) any {
		return func(fx *fixture) any { return patch(beginFor("p2", "k2", fx.guid2, 9), name, v) }
	}
	cases = append(cases,
		tc{licensetest.Begin, "instance_guid missing", beginPatch("instance_guid", nil), nil, 400, "missing field instance_guid"},
		tc{licensetest.Begin, "mb_serial missing", beginPatch("mb_serial", nil), nil, 400, "missing field mb_serial"},
		tc{licensetest.Begin, "duration is a string", beginPatch("duration", "60"), nil, 400, "duration must be a non-negative number"},
		tc{licensetest.Begin, "duration is negative", beginPatch("duration", -5), nil, 400, "duration must be a non-negative number"},
		tc{licensetest.Begin, "unknown instance", begin("p2", "k2", func(*fixture) string { return "nope" }), nil, 404, "unknown instance"},
		tc{licensetest.Begin, "instance of another license", begin("p2", "k2", g1), nil, 404, "unknown instance"},
		tc{licensetest.Begin, "seat limit", begin("p1", "k1", g1), nil, 409, "seat limit"},
		tc{licensetest.Begin, "unknown license", begin("p2", "nope", g2), nil, 403, "unknown license"},
		tc{licensetest.Begin, "revoked license", begin("p4", "k4", g2), nil, 403, "revoked"},
		tc{licensetest.Begin, "expired license", begin("p5", "k5", g2), nil, 403, "expired"},
	)
	tok := func(ep string, f func(fx *fixture) string) func(*fixture) any {
		return func(fx *fixture) any {
			if ep == licensetest.End {
				return wire.EndRequest{Token: f(fx)}
			}
			return wire.ExtendRequest{Token: f(fx)}
		}
	}
	for _, ep := range []string{licensetest.Extend, licensetest.End} {
		cases = append(cases,
			tc{ep, "token missing", func(*fixture) any { return []byte(`{}`) }, nil, 400, "missing field token"},
			tc{ep, "token is a number", func(*fixture) any { return []byte(`{"token":5}`) }, nil, 400, "field token must be a string"},
			tc{ep, "token empty", tok(ep, func(*fixture) string { return "" }), nil, 400, "field token is empty"},
			tc{ep, "unknown token", tok(ep, func(*fixture) string { return "nope" }), nil, 404, "unknown token"},
			tc{ep, "ended token", tok(ep, func(fx *fixture) string { return fx.ended }), nil, 404, "unknown token"},
			tc{ep, "lapsed token", tok(ep, func(fx *fixture) string { return fx.lapsed }), nil, 404, "session lapsed"},
		)
	}
	cases = append(cases,
		tc{licensetest.Extend, "duration is a bool", func(fx *fixture) any { return patch(wire.ExtendRequest{Token: fx.live}, "duration", true) }, nil, 400, "duration must be a non-negative number"},
		tc{licensetest.Extend, "revoked license", tok(licensetest.Extend, func(fx *fixture) string { return fx.revoked }), nil, 403, "revoked"},
	)

	// Every case is a refusal, which changes nothing, so they share one
	// fixture.
	fx := newFixture(t)
	var mu sync.Mutex
	lines := make([]string, len(cases))
	for i, c := range cases {
		t.Run(c.endpoint+"/"+c.name, func(t *testing.T) {
			t.Parallel()
			var r *wiretest.Reply
			var err error
			if c.raw != nil {
				r, err = fx.c.PostRaw(c.endpoint, c.raw(fx), nil)
			} else {
				r, err = fx.c.Post(c.endpoint, c.payload(fx))
			}
			require.NoError(t, err)
			// Raw bodies fail at the envelope: those are envelope-level
			// rejections (not licence verdicts), with their own status at
			// every endpoint and the extra member envelope_error.
			envelopeLevel := c.raw != nil
			want := c.status
			keys := []string{"envelope_error", "error", "success", "time"}
			if !envelopeLevel {
				keys = keys[1:]
				if c.endpoint == licensetest.End {
					want = http.StatusUnprocessableEntity
				}
			}
			_, isRejection := envelope.ParseRejection(r.Status, r.Body)
			assert.Equal(t, envelopeLevel, isRejection, "envelope-level rejection")
			assert.Equal(t, want, r.Status, "body %s", r.Body)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			assert.Equal(t, keys, keysOf(t, r.Body))
			f := wire.DecodeFailure(c.endpoint, r.Body)
			require.NotNil(t, f, "body %s", r.Body)
			assert.False(t, f.Success)
			assert.Contains(t, f.Message, c.word)
			assert.Equal(t, fx.clock.Now(), f.Time.Time, "time %q", f.Time.Raw)
			mu.Lock()
			lines[i] = fmt.Sprintf("%-17s %-32s %d %s", c.endpoint, c.name, r.Status, f.Message)
			mu.Unlock()
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		golden(t, "failures.golden", []byte(strings.Join(lines, "\n")+"\n"))
	})
}

// golden compares got with testdata/licensetest/name, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		require.NoError(t, os.MkdirAll(goldenDir, 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.Equal(t, string(want), string(got), "golden file %s differs; rerun with -update if intended", path)
}

func TestRoutingFailures(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{})
	for _, c := range []struct {
		method, path string
		status       int
		word         string
	}{
		{http.MethodGet, licensetest.BasePath + "/begin_session", http.StatusMethodNotAllowed, "method not allowed"},
		{http.MethodPost, licensetest.BasePath + "/nope", http.StatusNotFound, "unknown endpoint"},
		{http.MethodPost, "/begin_session", http.StatusNotFound, "unknown endpoint"},
	} {
		req, err := http.NewRequest(c.method, strings.TrimSuffix(s.URL, licensetest.BasePath)+c.path, strings.NewReader("{}"))
		require.NoError(t, err)
		resp, err := s.Client().Do(req)
		require.NoError(t, err)
		var f wire.Failure
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&f))
		resp.Body.Close()
		assert.Equal(t, c.status, resp.StatusCode, "%s %s", c.method, c.path)
		assert.Contains(t, f.Message, c.word)
	}
	assert.Zero(t, s.Count(""))
}

func TestSuccessShapes(t *testing.T) {
	t.Parallel()
	clock, _, c := clocked(t, licensetest.License{Seats: 3, SessionDuration: time.Minute, GracePeriod: time.Hour, Features: `{"pro":true}`}, licensetest.Config{})

	r := c.MustPost(t, licensetest.Register, wiretest.RegisterReq(1))
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, []string{"control_options", "first_registered_at", "guid", "success", "time"}, keysOf(t, r.Body))
	reg, err := wire.DecodeRegister(r.Body)
	require.NoError(t, err)
	assert.True(t, reg.Success)
	assert.Equal(t, clock.Now(), reg.Time.Time)
	assert.Equal(t, clock.Now(), reg.FirstRegisteredAt.Time)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, reg.GUID)
	assert.Equal(t, wire.ControlOptions{SessionDuration: 60, ValidationGracePeriod: 3600}, reg.ControlOptions)

	r = c.MustPost(t, licensetest.Begin, beginFor(product, key, reg.GUID, 1))
	assert.Equal(t, []string{"control_options", "features", "session_key", "status", "time", "token"}, keysOf(t, r.Body))
	b, err := wire.DecodeBegin(r.Body)
	require.NoError(t, err)
	assert.EqualValues(t, licensetest.SessionStatus, b.Status)
	assert.NotEmpty(t, b.SessionKey)
	assert.NotEmpty(t, b.Token)
	assert.NotEqual(t, b.SessionKey, b.Token)
	assert.Equal(t, `{"pro":true}`, b.Features)
	assert.Equal(t, wire.ControlOptions{SessionDuration: 60, ValidationGracePeriod: 3600}, b.ControlOptions)

	r = c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: b.Token})
	assert.Equal(t, []string{"control_options", "status", "time", "token"}, keysOf(t, r.Body))
	e, err := wire.DecodeExtend(r.Body)
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.Status)
	assert.Equal(t, b.Token, e.Token)

	r = c.MustPost(t, licensetest.End, wire.EndRequest{Token: b.Token})
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, []string{"time"}, keysOf(t, r.Body))
	end, err := wire.DecodeEnd(r.Body)
	require.NoError(t, err)
	assert.Equal(t, clock.Now(), end.Time.Time)
}

func TestModes(t *testing.T) {
	t.Parallel()
	mlkem, err := envelope.GenerateKey(envelope.KEMMLKEM768X25519)
	require.NoError(t, err)
	for _, c := range []struct {
		name   string
		cfg    *licensetest.Config
		secret bool
		sealed bool
	}{
		{"hpke", nil, false, false},
		{"hpke sealed", nil, false, true},
		{"shared secret", nil, true, false},
		{"shared secret sealed", nil, true, true},
		{"mlkem", &licensetest.Config{KEM: envelope.KEMMLKEM768X25519}, false, true},
		{"private key", &licensetest.Config{PrivateKey: mlkem}, false, false},
		{"require sealed", &licensetest.Config{SealedReplies: true}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := wiretest.NewServer(t, wiretest.License(), c.cfg)
			var opts []envelope.Option
			if c.sealed {
				opts = append(opts, envelope.WithSealedReplies())
			}
			cl := wiretest.NewClient(t, s, nil, opts...)
			if c.secret {
				cl = newSecretClient(t, s, nil, opts...)
			}
			require.NoError(t, lifecycle(cl, 1))
			reqs := s.Requests()
			require.Len(t, reqs, 4)
			for _, r := range reqs {
				assert.Equal(t, c.sealed, r.Sealed, r.Endpoint)
				assert.Equal(t, http.StatusOK, r.Status, r.Endpoint)
			}
			if c.sealed {
				r, err := cl.Post(licensetest.Extend, wire.ExtendRequest{Token: "nope"})
				require.NoError(t, err)
				require.NoError(t, r.Err)
				assert.Equal(t, []string{"data"}, keysOf(t, r.Raw), "a sealed failure")
				assert.Equal(t, "unknown token", failure(r).Message)
			}
		})
	}
	t.Run("private key is used", func(t *testing.T) {
		t.Parallel()
		s := wiretest.NewServer(t, licensetest.License{}, &licensetest.Config{PrivateKey: mlkem, Secret: make([]byte, 32), APIKey: "api-key"})
		assert.Equal(t, mlkem.KeyID(), s.Info().PublicKey.KeyID())
		assert.True(t, mlkem.Public().Equal(s.Info().PublicKey))
		assert.Equal(t, make([]byte, 32), s.Info().Secret)
		assert.Equal(t, "api-key", s.Info().APIKey)
	})
	t.Run("sealed replies required", func(t *testing.T) {
		t.Parallel()
		s := wiretest.NewServer(t, licensetest.License{}, &licensetest.Config{SealedReplies: true})
		r, err := wiretest.NewClient(t, s, nil).Post(licensetest.Register, wiretest.RegisterReq(1))
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, r.Status)
		assert.Equal(t, "envelope: malformed request", failure(r).Message)
		rej, ok := envelope.ParseRejection(r.Status, r.Raw)
		require.True(t, ok)
		assert.Equal(t, envelope.CodeMalformed, rej.Code)
	})
}

func TestRegisterIdempotent(t *testing.T) {
	t.Parallel()
	clock, s, c := clocked(t, licensetest.License{}, licensetest.Config{})
	first := c.Register(t, 1)
	clock.Advance(time.Hour)

	again := wiretest.RegisterReq(1)
	again.IPAddress = "192.168.1.9"                                         // ignored
	again.MACAddresses = []string{"00:11:22:33:44:01", "00:11:22:33:44:01"} // same set
	again.UserHash = map[string]string{"other": "x"}                        // not identity
	r := c.MustPost(t, licensetest.Register, again)
	rep, err := wire.DecodeRegister(r.Body)
	require.NoError(t, err)
	assert.Equal(t, first.GUID, rep.GUID)
	assert.Equal(t, first.FirstRegisteredAt, rep.FirstRegisteredAt)
	assert.Equal(t, clock.Now(), rep.Time.Time)

	for name, mut := range map[string]func(*wire.RegisterRequest){
		"email":    func(r *wire.RegisterRequest) { r.Email = "bob@example.com" },
		"name":     func(r *wire.RegisterRequest) { r.Name = "Bob" },
		"cpu":      func(r *wire.RegisterRequest) { r.CPUID = "other" },
		"mac":      func(r *wire.RegisterRequest) { r.MACAddresses = append(r.MACAddresses, "ff:ff:ff:ff:ff:ff") },
		"hostname": func(r *wire.RegisterRequest) { r.HostName = "other" },
	} {
		req := wiretest.RegisterReq(1)
		mut(&req)
		rep, err := wire.DecodeRegister(c.MustPost(t, licensetest.Register, req).Body)
		require.NoError(t, err)
		assert.NotEqual(t, first.GUID, rep.GUID, name)
	}
	assert.Len(t, s.Instances(), 6)
	inst := s.Instances()[0]
	assert.Equal(t, licensetest.Instance{
		GUID: first.GUID, ProductGUID: product, LicenseKey: key,
		Machine: licensetest.Machine{
			IPAddress: "10.0.0.1", CPUID: "cpu-1", MBSerial: "mb-1",
			MACAddresses: []string{"00:11:22:33:44:01"}, VolumeHash: "vol-1", HostName: "host-1",
		},
		Name: "Ada", Email: "ada@example.com", UserHash: map[string]string{"k": "v"},
		FirstRegisteredAt: first.FirstRegisteredAt.Time,
	}, inst)
}

func TestRegisterKOfN(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{}, &licensetest.Config{Match: licensetest.KOfN(3)})
	c := wiretest.NewClient(t, s, nil)
	first := c.Register(t, 1)
	for _, tt := range []struct {
		name string
		mut  func(*wire.RegisterRequest)
		same bool
	}{
		{"two changed", func(r *wire.RegisterRequest) { r.CPUID, r.HostName = "x", "y" }, true},
		{"one mac in common", func(r *wire.RegisterRequest) {
			r.MACAddresses = []string{"AA:BB:CC:DD:EE:FF", "00:11:22:33:44:01"}
			r.CPUID, r.HostName = "x", "y"
		}, true},
		{"three changed", func(r *wire.RegisterRequest) { r.CPUID, r.HostName, r.VolumeHash = "x", "y", "z" }, false},
		{"empty fields do not count", func(r *wire.RegisterRequest) { r.CPUID, r.HostName, r.VolumeHash = "", "", "" }, false},
		{"other user", func(r *wire.RegisterRequest) { r.Email = "eve@example.com" }, false},
	} {
		req := wiretest.RegisterReq(1)
		tt.mut(&req)
		rep, err := wire.DecodeRegister(c.MustPost(t, licensetest.Register, req).Body)
		require.NoError(t, err)
		assert.Equal(t, tt.same, rep.GUID == first.GUID, tt.name)
	}
	assert.Equal(t, "3-of-5", licensetest.KOfN(3).String())
	assert.Equal(t, licensetest.KOfN(5), licensetest.KOfN(9))
	assert.Equal(t, licensetest.KOfN(1), licensetest.KOfN(-1))
	assert.Equal(t, "exact", licensetest.Exact.String())
}

func TestSeats(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{Seats: 2})
	c := wiretest.NewClient(t, s, nil)
	g := c.Register(t, 1).GUID
	t1 := c.Begin(t, g, 1).Token
	c.Begin(t, g, 1)
	assert.Equal(t, 2, s.SeatsInUse(product, key))
	r := c.MustPost(t, licensetest.Begin, beginFor(product, key, g, 1))
	assert.Equal(t, http.StatusConflict, r.Status)
	assert.Equal(t, "seat limit reached: 2 of 2 seats in use", failure(r).Message)
	mustEnd(t, c, t1)
	assert.Equal(t, 1, s.SeatsInUse(product, key))
	c.Begin(t, g, 1)
	assert.Equal(t, 2, s.SeatsInUse(product, key))
	assert.Zero(t, s.SeatsInUse(product, "nope"))

	unlimited := wiretest.NewServer(t, licensetest.License{})
	uc := wiretest.NewClient(t, unlimited, nil)
	g = uc.Register(t, 1).GUID
	for range 20 {
		uc.Begin(t, g, 1)
	}
	assert.Equal(t, 20, unlimited.SeatsInUse(product, key))
}

func TestDurations(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name             string
		session, maxDur  time.Duration
		requested, wantD int64
	}{
		{"none requested", time.Minute, 0, 0, 60},
		{"shorter requested", time.Minute, 0, 30, 30},
		{"clamped to session", time.Minute, 0, 500, 60},
		{"clamped to max", time.Minute, 2 * time.Minute, 500, 120},
		{"under max", time.Minute, 2 * time.Minute, 90, 90},
		{"huge", time.Minute, 0, 1 << 60, 60},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock, s, c := clocked(t, licensetest.License{SessionDuration: tt.session, MaxDuration: tt.maxDur, GracePeriod: 5 * time.Second}, licensetest.Config{})
			g := c.Register(t, 1).GUID
			req := beginFor(product, key, g, 1)
			req.Duration = tt.requested
			b, err := wire.DecodeBegin(c.MustPost(t, licensetest.Begin, req).Body)
			require.NoError(t, err)
			assert.Equal(t, wire.ControlOptions{SessionDuration: tt.wantD, ValidationGracePeriod: 5}, b.ControlOptions)
			sess := s.Sessions()
			require.Len(t, sess, 1)
			assert.Equal(t, clock.Now().Add(time.Duration(tt.wantD)*time.Second), sess[0].Expires)

			e, err := wire.DecodeExtend(c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: b.Token, Duration: tt.requested}).Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantD, e.ControlOptions.SessionDuration)
		})
	}
}

func TestReapingWithClock(t *testing.T) {
	t.Parallel()
	clock, s, c := clocked(t, licensetest.License{Seats: 1, SessionDuration: time.Minute}, licensetest.Config{})
	g := c.Register(t, 1).GUID
	tok := c.Begin(t, g, 1).Token

	clock.Advance(59 * time.Second)
	mustExtend(t, c, tok) // now expires at +119 s
	clock.Advance(59 * time.Second)
	require.Len(t, s.Sessions(), 1)
	assert.Equal(t, 1, s.Sessions()[0].Extensions)
	clock.Advance(time.Second) // exactly at expiry: lapsed
	assert.Empty(t, s.Sessions())
	assert.Zero(t, s.SeatsInUse(product, key))

	r := c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: tok})
	assert.Equal(t, http.StatusNotFound, r.Status)
	assert.Equal(t, "session lapsed", failure(r).Message)
	r = c.MustPost(t, licensetest.End, wire.EndRequest{Token: tok})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, "session lapsed", failure(r).Message)

	// The reaped seat is free for a new session.
	c.Begin(t, g, 1)
}

func TestTokenRotation(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{}, &licensetest.Config{TokenRotation: true})
	c := wiretest.NewClient(t, s, nil)
	g := c.Register(t, 1).GUID
	t0 := c.Begin(t, g, 1).Token
	t1 := mustExtend(t, c, t0).Token
	assert.NotEqual(t, t0, t1)
	r := c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: t0})
	assert.Equal(t, http.StatusNotFound, r.Status)
	assert.Equal(t, "unknown token", failure(r).Message)
	t2 := mustExtend(t, c, t1).Token
	require.Len(t, s.Sessions(), 1)
	assert.Equal(t, t2, s.Sessions()[0].Token)
	mustEnd(t, c, t2)
	assert.Empty(t, s.Sessions())
}

func TestLicenseChanges(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{SessionDuration: time.Minute, GracePeriod: time.Hour})
	c := wiretest.NewClient(t, s, nil)
	g := c.Register(t, 1).GUID
	tok := c.Begin(t, g, 1).Token

	require.NoError(t, s.SetControlOptions(product, key, 30*time.Second, 2*time.Minute))
	want := wire.ControlOptions{SessionDuration: 30, ValidationGracePeriod: 120}
	assert.Equal(t, want, mustExtend(t, c, tok).ControlOptions)
	assert.Equal(t, want, c.Begin(t, g, 1).ControlOptions)
	assert.Equal(t, want, c.Register(t, 1).ControlOptions)
	l, ok := s.License(product, key)
	require.True(t, ok)
	assert.Equal(t, 30*time.Second, l.SessionDuration)

	require.NoError(t, s.SetLicenseState(product, key, licensetest.Revoked))
	r := c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: tok})
	assert.Equal(t, http.StatusForbidden, r.Status)
	assert.Equal(t, "license revoked", failure(r).Message)
	require.NoError(t, s.SetLicenseState(product, key, licensetest.Expired))
	r = c.MustPost(t, licensetest.Begin, beginFor(product, key, g, 1))
	assert.Equal(t, "license expired", failure(r).Message)
	require.NoError(t, s.SetLicenseState(product, key, licensetest.Active))
	mustExtend(t, c, tok)
	// A revoked licence's session can still be ended.
	require.NoError(t, s.SetLicenseState(product, key, licensetest.Revoked))
	mustEnd(t, c, tok)

	assert.ErrorIs(t, s.SetLicenseState(product, "nope", licensetest.Revoked), licensetest.ErrUnknownLicense)
	assert.ErrorIs(t, s.SetControlOptions(product, "nope", time.Minute, 0), licensetest.ErrUnknownLicense)
	assert.Error(t, s.SetControlOptions(product, key, 1500*time.Millisecond, 0))
	assert.Error(t, s.SetLicenseState(product, key, licensetest.LicenseState(9)))
	_, ok = s.License(product, "nope")
	assert.False(t, ok)
}

func TestAddLicenseValidation(t *testing.T) {
	t.Parallel()
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	err := s.AddLicense(licensetest.License{Seats: -1, SessionDuration: 1500 * time.Millisecond, GracePeriod: -time.Second, MaxDuration: time.Millisecond, State: 7})
	require.Error(t, err)
	for _, want := range []string{"product GUID is empty", "key is empty", "seats is negative", "unknown state",
		"session duration is not a whole number of seconds", "grace period is negative", "max duration is not a whole number"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.True(t, strings.HasPrefix(err.Error(), "licensetest: "))

	require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: "p", Key: "k"}))
	l, _ := s.License("p", "k")
	assert.Equal(t, licensetest.DefaultSessionDuration, l.SessionDuration)
	// Adding again replaces the terms.
	require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: "p", Key: "k", Seats: 3}))
	l, _ = s.License("p", "k")
	assert.Equal(t, 3, l.Seats)
	assert.Equal(t, "revoked", licensetest.Revoked.String())
	assert.Equal(t, "active", licensetest.Active.String())
	assert.Equal(t, "expired", licensetest.Expired.String())
}

func TestObservation(t *testing.T) {
	t.Parallel()
	clock, s, c := clocked(t, licensetest.License{SessionDuration: time.Minute}, licensetest.Config{MaxRequests: 3})
	reg := wiretest.RegisterReq(1)
	g := c.Register(t, 1).GUID
	clock.Advance(time.Second)
	began := c.Begin(t, g, 1)
	tok := began.Token
	mustExtend(t, c, tok)
	c.MustPost(t, licensetest.End, wire.EndRequest{Token: "nope"})

	reqs := s.Requests()
	require.Len(t, reqs, 3, "WithMaxRequests(3) keeps the last three")
	assert.Equal(t, licensetest.Begin, reqs[0].Endpoint)
	assert.Equal(t, clock.Now(), reqs[0].Time)
	var got wire.BeginRequest
	require.NoError(t, json.Unmarshal(reqs[0].Payload, &got))
	assert.Equal(t, g, got.InstanceGUID)
	assert.Equal(t, http.StatusUnprocessableEntity, reqs[2].Status)
	assert.Equal(t, 1, s.Count(licensetest.Register))
	assert.Equal(t, 1, s.Count(licensetest.End))
	assert.Equal(t, 4, s.Count(""))
	_ = reg

	sess := s.Sessions()
	require.Len(t, sess, 1)
	assert.Equal(t, licensetest.Session{
		Token: tok, SessionKey: began.SessionKey, InstanceGUID: g, ProductGUID: product, LicenseKey: key,
		Started: clock.Now(), Expires: clock.Now().Add(time.Minute), Duration: time.Minute, Extensions: 1,
	}, sess[0])

	none := wiretest.NewServer(t, licensetest.License{}, &licensetest.Config{MaxRequests: -1})
	wiretest.NewClient(t, none, nil).Register(t, 1)
	assert.Empty(t, none.Requests())
	assert.Equal(t, 1, none.Count(licensetest.Register))
}

func TestRequestsKeepsPayload(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{})
	c := wiretest.NewClient(t, s, nil)
	c.MustPost(t, licensetest.Register, []byte(`{"not":"valid"}`))
	reqs := s.Requests()
	require.Len(t, reqs, 1)
	assert.JSONEq(t, `{"not":"valid"}`, string(reqs[0].Payload))
	assert.Equal(t, http.StatusBadRequest, reqs[0].Status)
	reqs[0].Payload[0] = 'X' // a copy
	assert.JSONEq(t, `{"not":"valid"}`, string(s.Requests()[0].Payload))

	r, err := c.PostRaw(licensetest.Register, []byte("junk"), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, r.Status)
	assert.Nil(t, s.Requests()[1].Payload)
	assert.True(t, errors.Is(nil, nil))
}

// otherEndpoint returns an endpoint other than ep.
func otherEndpoint(ep string) string {
	if ep == licensetest.Extend {
		return licensetest.End
	}
	return licensetest.Extend
}

// captured is one sealed request as an attacker on the path sees it.
type captured struct {
	endpoint string
	body     []byte
	reply    envelope.ReplyOpener
}

func capture(t *testing.T, c *wiretest.Client, endpoint string, payload any) captured {
	t.Helper()
	pt, err := json.Marshal(payload)
	require.NoError(t, err)
	sd, err := c.Seal(endpoint, pt)
	require.NoError(t, err)
	body, _ := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
	return captured{endpoint, body, sd.Reply}
}

func (cp captured) send(t *testing.T, c *wiretest.Client, endpoint string) *wiretest.Reply {
	t.Helper()
	r, err := c.PostRaw(endpoint, cp.body, cp.reply)
	require.NoError(t, err)
	return r
}

func rejection(t *testing.T, r *wiretest.Reply) *envelope.Rejection {
	t.Helper()
	rej, ok := envelope.ParseRejection(r.Status, r.Raw)
	require.True(t, ok, "not an envelope-level rejection: %d %s", r.Status, r.Raw)
	return rej
}

// TestReplayedBeginTakesNoSecondSeat: a begin_session sent twice (a retry, or
// a replay of a capture) is answered with the stored reply, takes one seat,
// and the legitimate client can read the repeat.
func TestReplayedBeginTakesNoSecondSeat(t *testing.T) {
	t.Parallel()
	for _, sealed := range []bool{false, true} {
		clock := newFakeClock()
		s := wiretest.NewServer(t, licensetest.License{Seats: 5}, &licensetest.Config{Clock: clock.Now})
		var opts []envelope.Option
		if sealed {
			opts = append(opts, envelope.WithSealedReplies())
		}
		c := wiretest.NewClient(t, s, nil, opts...)
		guid := c.Register(t, 1).GUID
		cp := capture(t, c, licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: guid, Machine: wiretest.Machine(1)})
		first := cp.send(t, c, licensetest.Begin)
		require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
		require.NoError(t, first.Err)
		clock.Advance(time.Minute)
		for range 3 {
			again := cp.send(t, c, licensetest.Begin)
			require.NoError(t, again.Err, "the legitimate retry opens")
			assert.Equal(t, first.Status, again.Status)
			assert.Equal(t, first.Raw, again.Raw, "the stored reply, byte for byte")
		}
		assert.Equal(t, 1, s.SeatsInUse(product, key), "sealed=%v", sealed)
		reqs := s.Requests()
		assert.True(t, reqs[len(reqs)-1].Repeat)
		assert.False(t, reqs[len(reqs)-4].Repeat)

		// After the window the capture is stale, and still takes no seat.
		clock.Advance(5 * time.Minute)
		late := cp.send(t, c, licensetest.Begin)
		assert.Equal(t, http.StatusUnauthorized, late.Status)
		rej := rejection(t, late)
		assert.Equal(t, envelope.CodeStale, rej.Code)
		assert.True(t, rej.ServerTime.Equal(clock.Now()), "the rejection carries the server's time")
		assert.Equal(t, 1, s.SeatsInUse(product, key))
	}
}

// TestReplayedExtendChangesNothing: a captured extend_session replayed after
// the window is rejected and does not extend the session.
func TestReplayedExtendChangesNothing(t *testing.T) {
	t.Parallel()
	clock, s, c := clocked(t, licensetest.License{SessionDuration: time.Hour}, licensetest.Config{})
	guid := c.Register(t, 1).GUID
	tok := c.Begin(t, guid, 1).Token
	cp := capture(t, c, licensetest.Extend, wire.ExtendRequest{Token: tok})
	require.Equal(t, http.StatusOK, cp.send(t, c, licensetest.Extend).Status)
	n := s.Count(licensetest.Extend)
	clock.Advance(50 * time.Minute)
	r := cp.send(t, c, licensetest.Extend)
	assert.Equal(t, envelope.CodeStale, rejection(t, r).Code)
	clock.Advance(11 * time.Minute) // past the hour the original extend granted
	assert.Equal(t, 0, s.SeatsInUse(product, key), "the replay extended the session")
	assert.Equal(t, n+1, s.Count(licensetest.Extend))
}

// TestEnvelopeAtAnotherEndpoint: a begin_session envelope posted to
// /extend_session, or an extend body to /end_session, is rejected as
// unauthentic (401) and changes nothing.
func TestEnvelopeAtAnotherEndpoint(t *testing.T) {
	t.Parallel()
	for _, sealed := range []bool{false, true} {
		s := wiretest.NewServer(t, licensetest.License{Seats: 2})
		var opts []envelope.Option
		if sealed {
			opts = append(opts, envelope.WithSealedReplies())
		}
		c := wiretest.NewClient(t, s, nil, opts...)
		guid := c.Register(t, 1).GUID
		tok := c.Begin(t, guid, 1).Token
		begin := capture(t, c, licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: guid, Machine: wiretest.Machine(1)})
		extend := capture(t, c, licensetest.Extend, wire.ExtendRequest{Token: tok})
		for _, tc := range []struct {
			cp captured
			to string
		}{{begin, licensetest.Extend}, {begin, licensetest.End}, {begin, licensetest.Register}, {extend, licensetest.End}, {extend, licensetest.Begin}} {
			r := tc.cp.send(t, c, tc.to)
			assert.Equal(t, http.StatusUnauthorized, r.Status, "%s at %s", tc.cp.endpoint, tc.to)
			assert.Equal(t, envelope.CodeUnauthentic, rejection(t, r).Code)
			if sealed {
				assert.ErrorIs(t, r.Err, envelope.ErrUnauthentic, "never sealed")
			}
		}
		assert.Equal(t, 1, s.SeatsInUse(product, key), "a session was ended or begun")
		mustExtend(t, c, tok) // the session is intact
	}
}

// TestRetryAfterDroppedReply: the reply of a processed request is lost on
// the way; the client's retry of the same bytes gets it, and the server does
// not process the request twice.
func TestRetryAfterDroppedReply(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{Seats: 5})
	c := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
	guid := c.Register(t, 1).GUID
	cp := capture(t, c, licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: guid, Machine: wiretest.Machine(1)})
	s.Inject(licensetest.Fault{Endpoint: licensetest.Begin, Kind: licensetest.FaultDrop, Count: 1})
	_, err := c.HC.Post(c.URL+"/"+licensetest.Begin, "application/json", bytes.NewReader(cp.body))
	require.Error(t, err)
	r := cp.send(t, c, licensetest.Begin)
	require.NoError(t, r.Err)
	require.Equal(t, http.StatusOK, r.Status)
	_, err = wire.DecodeBegin(r.Body)
	require.NoError(t, err)
	assert.Equal(t, 1, s.SeatsInUse(product, key))
}

func TestFreshnessWindowOption(t *testing.T) {
	t.Parallel()
	clock, _, c := clocked(t, licensetest.License{}, licensetest.Config{FreshnessWindow: time.Hour})
	cp := capture(t, c, licensetest.Register, wiretest.RegisterReq(1))
	clock.Advance(59 * time.Minute)
	r := cp.send(t, c, licensetest.Register)
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	clock.Advance(2 * time.Minute)
	r = cp.send(t, c, licensetest.Register)
	assert.Equal(t, envelope.CodeStale, rejection(t, r).Code)
}

// floodCapacity is the replay cache the flood tests give the server; every
// flood is several times larger, so that a cache that lets strangers fill it
// (the format 2.0 rule: a full cache forgets its oldest id and rejects every
// timestamp not after it) would lock the honest clients out.
const floodCapacity = 1024

// junkSealer seals the flood: anyone holding a copy of the product can seal
// valid envelopes. Shared-secret mode keeps the test fast; the Guard sees
// the same thing as from public-key envelopes.
type junkSealer struct {
	sealer envelope.Sealer
	apiKey string
	rnd    *rand.Rand
}

func newJunkSealer(t testing.TB, s *licensetest.Server) *junkSealer {
	t.Helper()
	sealer, err := envelope.NewSharedSecretSealer(s.Info().Secret, envelope.WithSealedReplies())
	require.NoError(t, err)
	return &junkSealer{sealer: sealer, apiKey: s.Info().APIKey, rnd: rand.New(rand.NewPCG(1, 2))}
}

// body returns the request body of the i-th junk request, stamped at ts:
// begins for licences that do not exist, extends and ends of sessions that
// do not exist, registrations, and payloads that are not JSON.
func (j *junkSealer) body(t testing.TB, i int, ts time.Time) (endpoint string, body []byte) {
	var pt []byte
	switch i % 4 {
	case 0:
		endpoint = licensetest.Begin
		pt, _ = json.Marshal(wire.BeginRequest{ProductGUID: product, LicenseKey: fmt.Sprintf("JUNK-%d", i), InstanceGUID: "x", Machine: wiretest.Machine(i)})
	case 1:
		endpoint = licensetest.Extend
		pt, _ = json.Marshal(wire.ExtendRequest{Token: fmt.Sprintf("junk-token-%d", i)})
	case 2:
		endpoint = licensetest.Register
		pt, _ = json.Marshal(wire.RegisterRequest{ProductGUID: product, LicenseKey: fmt.Sprintf("JUNK-%d", i), Machine: wiretest.Machine(i)})
	default:
		endpoint = licensetest.End
		pt = []byte(strings.Repeat("junk", 1+i%7))
	}
	sd, err := j.sealer.Seal(envelope.Request{APIKey: j.apiKey, Endpoint: endpoint, Time: ts}, pt)
	require.NoError(t, err)
	body, _ = json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
	return endpoint, body
}

// floodClient is an honest product: a real license.Client on loopback.
func floodClient(t *testing.T, s *licensetest.Server, licenceKey string, n int) *license.Client {
	t.Helper()
	fp := &fingerprint.Fingerprint{
		CPUID:      fingerprint.Component{Name: fingerprint.NameCPUID, Value: fmt.Sprintf("cpu-%d", n), Strength: fingerprint.Weak},
		MBSerial:   fingerprint.Component{Name: fingerprint.NameMBSerial, Value: fmt.Sprintf("board-%d", n), Strength: fingerprint.Strong},
		VolumeHash: fingerprint.Component{Name: fingerprint.NameVolumeHash, Value: fmt.Sprintf("vol-%d", n), Strength: fingerprint.Medium},
		HostName:   fingerprint.Component{Name: fingerprint.NameHostName, Value: fmt.Sprintf("host-%d", n), Strength: fingerprint.Weak},
	}
	c, err := license.New(license.Config{
		ServerURL: s.URL, APIKey: s.Info().APIKey, ServerPublicKey: s.Info().PublicKey.EncodeBase64(),
		ProductGUID: product, LicenseKey: licenceKey,
	},
		license.WithHTTPClient(s.Client()),
		license.WithStateStore(&license.MemoryStateStore{}),
		license.WithFingerprintSource(func(context.Context) (*fingerprint.Fingerprint, error) { return fp, nil }),
	)
	require.NoError(t, err)
	return c
}

// TestFloodLocksOutNoCustomer: while strangers flood the server with valid
// envelopes (several times the replay cache's capacity), honest clients
// start, renew and close with no request rejected, the cache stays within
// its bound, and a replay of an honest request inside the window is still
// answered with its stored reply and takes no seat.
func TestFloodLocksOutNoCustomer(t *testing.T) {
	const (
		flood     = 4 * floodCapacity
		customers = 4
		machines  = 2
	)
	for _, tc := range []struct {
		name  string
		stamp func(now time.Time, i int, rnd *rand.Rand) time.Time
	}{
		// The cheapest lockout on format 2.0: every junk id stamped at the
		// far edge of the window, so that it outlives everything honest.
		{"future-edge", func(now time.Time, _ int, _ *rand.Rand) time.Time { return now.Add(299 * time.Second) }},
		// Valid-looking timestamps spread across the whole window.
		{"across-window", func(now time.Time, _ int, rnd *rand.Rand) time.Time {
			return now.Add(time.Duration(rnd.IntN(599)-299) * time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := licensetest.NewServer(&licensetest.Config{ReplayCache: floodCapacity, SealedReplies: true})
			t.Cleanup(s.Close)
			for k := range customers {
				require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: fmt.Sprintf("K-%d", k), Seats: machines}))
			}
			require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: key, Seats: 5}))
			js := newJunkSealer(t, s)
			h := s.Handler()
			var sent atomic.Int64
			var maxLen atomic.Int64
			primed := make(chan struct{})
			floodDone := make(chan struct{})
			go func() {
				defer close(floodDone)
				for i := range flood {
					ep, body := js.body(t, i, tc.stamp(s.Now(), i, js.rnd))
					req := httptest.NewRequest(http.MethodPost, licensetest.BasePath+"/"+ep, strings.NewReader(string(body)))
					h.ServeHTTP(httptest.NewRecorder(), req)
					if n := int64(licensetest.GuardLen(s)); n > maxLen.Load() {
						maxLen.Store(n)
					}
					if sent.Add(1) == 2*floodCapacity {
						close(primed)
					}
				}
			}()
			<-primed // the cache has seen twice its capacity of junk

			var wg sync.WaitGroup
			var rejected atomic.Int64
			var mu sync.Mutex
			var errs []string
			for k := range customers {
				for m := range machines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := floodClient(t, s, fmt.Sprintf("K-%d", k), k*machines+m)
						fail := func(step string, err error) {
							rejected.Add(1)
							mu.Lock()
							errs = append(errs, fmt.Sprintf("K-%d/%d %s: %v", k, m, step, err))
							mu.Unlock()
						}
						ctx := context.Background()
						if err := c.Start(ctx); err != nil {
							fail("Start", err)
						}
						for range 3 {
							if err := c.ExtendSession(ctx); err != nil {
								fail("ExtendSession", err)
							}
						}
						if err := c.Close(ctx); err != nil {
							fail("Close", err)
						}
					}()
				}
			}
			wg.Wait()
			<-floodDone
			assert.Zero(t, rejected.Load(), "honest requests rejected during the flood:\n%s", strings.Join(errs, "\n"))
			assert.LessOrEqual(t, maxLen.Load(), int64(floodCapacity), "replay cache beyond its bound")
			assert.LessOrEqual(t, licensetest.GuardLen(s), floodCapacity)

			// After the flood, a captured honest begin replayed inside the
			// window gets the stored reply, byte for byte, and no second seat.
			hc := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
			reg := hc.Register(t, 900)
			cp := capture(t, hc, licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: reg.GUID, Machine: wiretest.Machine(900)})
			first := cp.send(t, hc, licensetest.Begin)
			require.NoError(t, first.Err)
			require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
			again := cp.send(t, hc, licensetest.Begin)
			require.NoError(t, again.Err)
			assert.Equal(t, first.Raw, again.Raw, "a replay gets the stored reply")
			assert.Equal(t, 1, s.SeatsInUse(product, key))
		})
	}
}

// TestResendAfterLostReplyOutlivesTheToken: a client that lost the reply to
// an extend (with token rotation) or an end resends the same sealed request
// and gets the stored reply, although the token it carries no longer proves
// anything: the cache is consulted before the proof.
func TestResendAfterLostReplyOutlivesTheToken(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{Seats: 1}, &licensetest.Config{TokenRotation: true, SealedReplies: true})
	c := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
	guid := c.Register(t, 1).GUID
	tok := c.Begin(t, guid, 1).Token
	for _, step := range []struct {
		ep      string
		payload any
	}{
		{licensetest.Extend, wire.ExtendRequest{Token: tok}},
		{licensetest.End, nil}, // filled in with the rotated token
	} {
		if step.ep == licensetest.End {
			step.payload = wire.EndRequest{Token: tok}
		}
		cp := capture(t, c, step.ep, step.payload)
		s.Inject(licensetest.Fault{Endpoint: step.ep, Kind: licensetest.FaultDrop, Count: 1})
		_, err := c.HC.Post(c.URL+"/"+step.ep, "application/json", strings.NewReader(string(cp.body)))
		require.Error(t, err, "the first reply is lost")
		n := s.Count(step.ep)
		r := cp.send(t, c, step.ep)
		require.NoError(t, r.Err)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", step.ep, r.Body)
		assert.Equal(t, n+1, s.Count(step.ep))
		if step.ep == licensetest.Extend {
			ext, err := wire.DecodeExtend(r.Body)
			require.NoError(t, err)
			require.NotEqual(t, tok, ext.Token, "rotated")
			tok = ext.Token
		}
	}
	assert.Zero(t, s.SeatsInUse(product, key))
}
