package doctor_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/doctor"
	"github.com/licensekit/licensekit-go/transport"
)

// TestBundleHasNoSecret runs every check, the full round trip included,
// then searches the bundle, the JSON report and the text output for every
// secret: API key, licence key, shared secret in each encoding, every
// token the server issued, and every raw hardware identifier.
func TestBundleHasNoSecret(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	fp := strongFP(rawMAC)
	e.runProduct(t, fpSource(fp))
	rep := e.run(t, fp, doctor.Full())
	require.Equal(t, doctor.OK, check(t, rep, doctor.CheckRoundTrip).Verdict)

	var bundle, text bytes.Buffer
	require.NoError(t, rep.WriteBundle(&bundle))
	require.NoError(t, rep.WriteText(&text, true))
	report, err := json.Marshal(rep)
	require.NoError(t, err)

	secret := e.cfg.SharedSecret
	secrets := map[string]string{
		"api key":              e.cfg.APIKey,
		"licence key":          e.cfg.LicenseKey,
		"shared secret base64": base64.StdEncoding.EncodeToString(secret),
		"shared secret raw64":  base64.RawStdEncoding.EncodeToString(secret),
		"shared secret url64":  base64.URLEncoding.EncodeToString(secret),
		"shared secret hex":    hex.EncodeToString(secret),
		"shared secret JSON":   string(mustJSON(t, secret)),
	}
	tokens := 0
	for _, r := range e.srv.Requests() {
		var p struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(r.Payload, &p) == nil && p.Token != "" {
			secrets["token of "+r.Endpoint] = p.Token
			tokens++
		}
	}
	require.NotZero(t, tokens, "no token seen: the test would prove nothing about tokens")
	for _, raw := range rawIdentifiers() {
		secrets["hardware identifier "+raw] = raw
	}
	for name, out := range map[string]string{"bundle": bundle.String(), "report": string(report), "text": text.String()} {
		for what, s := range secrets {
			require.NotEmpty(t, s)
			assert.NotContains(t, out, s, "%s contains the %s", name, what)
		}
	}

	var b doctor.Bundle
	require.NoError(t, json.Unmarshal(bundle.Bytes(), &b))
	assert.Equal(t, doctor.BundleFormat, b.Format)
	assert.Equal(t, transport.Version, b.SDKVersion)
	assert.Equal(t, runtime.Version(), b.GoVersion)
	assert.Equal(t, runtime.GOOS+"/"+runtime.GOARCH, b.OS+"/"+b.Arch)
	assert.Len(t, b.Salt, 32)
	assert.Len(t, b.Identifiers["machine_id"], 1)
	assert.Len(t, b.Report.Checks, 11)
	assert.False(t, b.Failed)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return bytes.Trim(b, `"`)
}

// TestBundlesCompare: two bundles from one machine are unlinkable, and
// stay so when the second is made against the first, which then names
// what changed.
func TestBundlesCompare(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	first := bundleOf(t, e.run(t, strongFP(rawMAC)))

	// Independent bundles: fresh salts, no equal digest.
	second := bundleOf(t, e.run(t, strongFP(rawMAC)))
	assert.NotEqual(t, first.Salt, second.Salt)
	assert.NotEqual(t, first.Identifiers["machine_id"], second.Identifiers["machine_id"])

	// Against the first: nothing changed, and still a salt of its own.
	base, err := doctor.ReadBundle(bytes.NewReader(mustBundle(t, first)))
	require.NoError(t, err)
	same := e.run(t, strongFP(rawMAC), doctor.WithBaseline(base))
	third := bundleOf(t, same)
	assert.NotEqual(t, first.Salt, third.Salt)
	assert.NotEqual(t, first.Identifiers["machine_id"], third.Identifiers["machine_id"])
	assert.True(t, strings.HasPrefix(evidence(check(t, same, doctor.CheckFingerprint), "changed_since_baseline"), "nothing"))

	// A new network card since the first bundle.
	changed := e.run(t, strongFP("3c:22:fb:aa:bb:cc"), doctor.WithBaseline(base))
	got := evidence(check(t, changed, doctor.CheckFingerprint), "changed_since_baseline")
	assert.True(t, strings.HasPrefix(got, "mac_addresses (baseline bundle of "), got)
}

// digestUnder is the bundle's identifier digest (doctor.WriteBundle's
// doc), written out here so that the test does not share the code's
// mistakes.
func digestUnder(salt []byte, component, value string) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte("licensekit doctor id v1\x00" + component + "\x00" + value))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// TestBaselineCannotChooseSalt: a bundle handed in with a salt its maker
// chose (all zeros, as for a precomputed table, with the digests a table
// would hold) does not make this machine's report or bundle use that salt:
// no digest under it appears anywhere in the output, and the report's salt
// is fresh. The comparison still answers, and answers only, what it is
// for: which components differ.
func TestBaselineCannotChooseSalt(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	chosen := make([]byte, 16)
	values := map[string]string{"machine_id": rawMachineID, "mb_serial": rawBoard, "board_serial": rawBoard,
		"volume_hash": rawVolume, "mac_addresses": rawMAC, "cpu_id": rawCPU, "host_name": rawHost}
	ids := map[string][]string{}
	for name, v := range values {
		ids[name] = []string{digestUnder(chosen, name, v)}
	}
	ids["host_name"] = []string{digestUnder(chosen, "host_name", "guessed-host")} // one guess wrong
	planted, err := json.Marshal(map[string]any{"format": doctor.BundleFormat, "salt": hex.EncodeToString(chosen),
		"created": "2026-01-01T00:00:00Z", "identifiers": ids})
	require.NoError(t, err)
	base, err := doctor.ReadBundle(bytes.NewReader(planted))
	require.NoError(t, err)

	rep := e.run(t, strongFP(rawMAC), doctor.WithBaseline(base))
	out := mustBundleOf(t, rep)
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text, true))
	b := bundleOf(t, rep)
	assert.NotEqual(t, hex.EncodeToString(chosen), b.Salt)
	assert.Len(t, b.Salt, 32)
	seen := 0
	for name, v := range values {
		d := digestUnder(chosen, name, v)
		assert.NotContains(t, string(out), d, "the bundle holds %s digested under the chosen salt", name)
		assert.NotContains(t, text.String(), d, "the text holds %s digested under the chosen salt", name)
		salt, err := hex.DecodeString(b.Salt)
		require.NoError(t, err)
		if got, ok := b.Identifiers[name]; ok {
			assert.Equal(t, []string{digestUnder(salt, name, v)}, got, "%s under the report's own salt", name)
			seen++
		}
	}
	assert.GreaterOrEqual(t, seen, 6, "identifiers in the bundle")
	got := evidence(check(t, rep, doctor.CheckFingerprint), "changed_since_baseline")
	assert.True(t, strings.HasPrefix(got, "host_name (baseline bundle of "), got)
}

// TestReadBundleRejectsGarbage: bad input gets an error, never a panic.
func TestReadBundleRejectsGarbage(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "{", `{"format":"other"}`, `{"format":"` + doctor.BundleFormat + `","salt":"zz"}`, "[1,2]"} {
		_, err := doctor.ReadBundle(strings.NewReader(in))
		assert.Error(t, err, in)
	}
}

func bundleOf(t *testing.T, rep *doctor.Report) *doctor.Bundle {
	t.Helper()
	var b doctor.Bundle
	require.NoError(t, json.Unmarshal(mustBundleOf(t, rep), &b))
	return &b
}

func mustBundleOf(t *testing.T, rep *doctor.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, rep.WriteBundle(&buf))
	return buf.Bytes()
}

func mustBundle(t *testing.T, b *doctor.Bundle) []byte {
	t.Helper()
	out, err := json.Marshal(b)
	require.NoError(t, err)
	return out
}

// TestWriteText: one line per check with a verdict column, fixes under
// the checks that are not ok.
func TestWriteText(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	e.srv.SetClockSkew(time.Hour)
	rep := e.run(t, strongFP(rawMAC))
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out, false))
	s := out.String()
	assert.Regexp(t, `(?m)^CHECK\s+VERDICT\s+FINDING$`, s)
	for _, c := range rep.Checks {
		assert.Regexp(t, `(?m)^`+c.ID+`\s+`+string(c.Verdict)+`\s+\S`, s)
	}
	assert.Regexp(t, `(?m)^clock\s+fail\s+this machine's clock is 1h0m0s behind`, s)
	assert.Contains(t, s, "→ turn on automatic time (NTP)")
	assert.Regexp(t, `\d+ ok, \d+ warn, 1 fail, 3 skipped; the licence was not checked\n$`, s)
}

// FuzzReadBundle: a bundle is untrusted input for the tools that read it.
func FuzzReadBundle(f *testing.F) {
	f.Add([]byte(`{"format":"` + doctor.BundleFormat + `","salt":"00112233445566778899aabbccddeeff","report":{"checks":[]}}`))
	f.Add([]byte(`{"format":"` + doctor.BundleFormat + `","salt":"00","identifiers":{"a":["b"]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := doctor.ReadBundle(bytes.NewReader(data))
		if err != nil {
			return
		}
		if b.Format != doctor.BundleFormat {
			t.Fatalf("ReadBundle accepted format %q", b.Format)
		}
		if b.Report != nil {
			var buf bytes.Buffer
			if err := b.Report.WriteBundle(&buf); err != nil {
				t.Fatalf("WriteBundle of a read report: %v", err)
			}
		}
	})
}
