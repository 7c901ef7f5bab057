package verdict_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/internal/verdict"
)

func TestRedactorForms(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef/+==")
	r := verdict.NewRedactor("API/KEY+1", "LIC-KEY-2")
	r.AddSecret(secret)
	forms := []string{
		"API/KEY+1", `API\/KEY+1`, "API%2FKEY%2B1", "LIC-KEY-2",
		string(secret), hex.EncodeToString(secret),
		base64.StdEncoding.EncodeToString(secret), base64.RawStdEncoding.EncodeToString(secret),
		base64.URLEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret),
	}
	for _, f := range forms {
		got := r.Redact("before " + f + " after")
		assert.Equal(t, "before [redacted] after", got, "form %q", f)
	}
}

func TestRedactorLiveValues(t *testing.T) {
	t.Parallel()
	r := verdict.NewRedactor()
	assert.Equal(t, "tok-1234", r.Redact("tok-1234"), "nothing known yet")
	r.AddLive("tok-1234")
	r.AddLive("tok-5678")
	assert.Equal(t, "[redacted] [redacted]", r.Redact("tok-1234 tok-5678"), "a rotated token stays hidden")
	r.AddLive("abc") // too short to be a secret: ignored
	assert.Equal(t, "abc", r.Redact("abc"))
	for i := range 100 {
		r.AddLive(strings.Repeat("x", 10) + string(rune('A'+i%26)) + strings.Repeat("y", i))
	}
	assert.Equal(t, "tok-5678", r.Redact("tok-5678"), "only the last few live values are kept")
	// The escaped forms of a value stay with it as older values drop out.
	r.AddLive("tok/with+slash")
	for i := range 10 {
		r.AddLive("later-token-" + strings.Repeat("z", i))
	}
	assert.Equal(t, "[redacted] [redacted] [redacted]", r.Redact(`tok/with+slash tok\/with+slash tok%2Fwith%2Bslash`))
}

func TestRedactorLongestFirstAndExtras(t *testing.T) {
	t.Parallel()
	r := verdict.NewRedactor("abcdefgh")
	got := r.Redact("saw abcdefgh-1234 and abcdefgh", "abcdefgh-1234", "short")
	assert.Equal(t, "saw [redacted] and [redacted]", got)
	var nilR *verdict.Redactor
	assert.Equal(t, "x [redacted]", nilR.Redact("x payload-value", "payload-value"))
}

func TestTextRedactsBeforeCutting(t *testing.T) {
	t.Parallel()
	secret := "SECRET-" + strings.Repeat("k", 40)
	r := verdict.NewRedactor(secret)
	msg := strings.Repeat("x", 60) + secret
	got := r.Text(msg, 80)
	assert.NotContains(t, got, "SECRET")
	assert.LessOrEqual(t, len(got), 80)
	assert.Equal(t, "line one [redacted]…", r.Text("line one\n"+secret+" and more", 22))
}

func TestRedactorConcurrent(t *testing.T) {
	t.Parallel()
	r := verdict.NewRedactor("fixed-secret")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				// 8 goroutines × 8 values: within the live window.
				tok := "token-" + strings.Repeat("z", i) + string(rune('a'+j%8))
				r.AddLive(tok)
				if got := r.Redact("x " + tok + " fixed-secret"); got != "x [redacted] [redacted]" {
					t.Errorf("Redact = %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestPayloadValues(t *testing.T) {
	t.Parallel()
	got := verdict.PayloadValues([]byte(`{"license_key":"LK-123456","short":"abc","mac_addresses":["00:11:22:33:44:55"],"user_hash":{"team":"core-platform"},"duration":60}`))
	assert.ElementsMatch(t, []string{"LK-123456", "00:11:22:33:44:55", "core-platform"}, got)
	assert.Nil(t, verdict.PayloadValues([]byte("not json")))
}

func FuzzRedactText(f *testing.F) {
	f.Add("the key is SECRET-123 ok", 40)
	f.Add("\x00\xffSECRET-123SECRET-123", 5)
	const secret = "SECRET-123"
	r := verdict.NewRedactor(secret)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = 1 + abs(n)%300
		got := r.Text(s, n)
		if len(got) > n+len("…") || !utf8.ValidString(got) {
			t.Fatalf("Text(%q, %d) = %q", s, n, got)
		}
		if strings.Contains(got, secret) {
			t.Fatalf("Text(%q) kept the secret: %q", s, got)
		}
	})
}

// unicodeEscape writes every byte of s as a \u00XX escape.
func unicodeEscape(s string) string {
	var b strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&b, `\u%04x`, s[i])
	}
	return b.String()
}

// percentEscape writes every byte of s as a %XX escape.
func percentEscape(s string) string {
	var b strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// variants are the ways a server was seen to echo a key changed.
func variants(s string) map[string]string {
	q, _ := json.Marshal(`{"license_key":"` + s + `"}`)
	return map[string]string{
		"exact":          s,
		"upper":          strings.ToUpper(s),
		"lower":          strings.ToLower(s),
		"dash-stripped":  strings.ReplaceAll(s, "-", ""),
		"spaces":         strings.ReplaceAll(s, "-", " "),
		"underscores":    strings.ReplaceAll(strings.ToLower(s), "-", "_"),
		"dots":           strings.ReplaceAll(s, "-", "."),
		"first 11":       s[:11],
		"last 9":         s[len(s)-9:],
		"middle 10":      s[len(s)/2-5 : len(s)/2+5],
		"embedded":       "key=" + strings.ToUpper(s) + "&x=1",
		"glued":          "abc" + strings.ReplaceAll(s, "-", "") + "xyz",
		"json-escaped":   string(q),
		"unicode-escape": "key " + unicodeEscape(strings.ToUpper(s)) + " bad",
		"url-escaped":    url.QueryEscape("k=" + s),
		"percent-all":    "k=" + percentEscape(s),
	}
}

// TestRedactorVariants: a key echoed upper- or lower-cased, with its
// separators stripped or changed, cut to 8 or more characters, glued into
// other text, or JSON-, \u00XX-, %XX- or URL-escaped leaves no run of 8 of its
// characters behind; the text around it survives.
func TestRedactorVariants(t *testing.T) {
	t.Parallel()
	lic := "LK-7Q2M-X9RB-4TZC-H8WN-5YJD"
	api := "ak_live_3vN8pQ2wZ7kR4mT9"
	r := verdict.NewRedactor(api, lic)
	r.AddLive("tOk3n-Wq9Zr4Xk8Lm2Pv7")
	for _, secret := range []string{lic, api, "tOk3n-Wq9Zr4Xk8Lm2Pv7"} {
		for name, v := range variants(secret) {
			text := "server said: " + v + " (code 7)."
			got := r.Redact(text)
			if leak := testkit.FindLeak(got, secret); leak != "" {
				t.Errorf("%s of %s: %q kept %q", name, secret, got, leak)
			}
			assert.True(t, strings.HasPrefix(got, "server said: "), "%s: %q", name, got)
			assert.True(t, strings.HasSuffix(got, " (code 7)."), "%s: %q", name, got)
			assert.Contains(t, got, verdict.Redacted, "%s", name)
		}
	}
	assert.Equal(t, "a [redacted] b", r.Redact("a "+lic+" b"), "an exact form is one marker")
	assert.Equal(t, "a [redacted] b", r.Redact("a "+strings.ToLower(lic)+" b"))
	assert.Equal(t, "[redacted], [redacted]", r.Redact(strings.ToUpper(api)+", "+lic[:10]))
}

// TestRedactorLeavesProse: the loose match costs nothing to ordinary text:
// words, numbers, dates and a key's own short pieces (under 8 characters)
// stay, and a secret of under 8 characters is matched only exactly as
// typed, so that "TEST" does not remove every "test".
func TestRedactorLeavesProse(t *testing.T) {
	t.Parallel()
	r := verdict.NewRedactor("LK-7Q2M-X9RB-4TZC-H8WN-5YJD", "Test1")
	for _, s := range []string{
		"The licence was not found for this product; check the key and try again.",
		"Proxy authentication required: contact your administrator (ref 2026-12-07T14:13:52Z).",
		"seat limit reached: 5 of 5 seats in use since 12/07/2026",
		"pieces under eight: LK-7Q2M and 4TZC-H8W, or eight: H8WN-5YJD",
		"a test1 and TEST1 and test-1",
	} {
		want := s
		if strings.HasPrefix(s, "pieces") {
			want = "pieces under eight: LK-7Q2M and 4TZC-H8W, or eight: [redacted]"
		}
		assert.Equal(t, want, r.Redact(s))
	}
	assert.Equal(t, "exact [redacted] only", r.Redact("exact Test1 only"))
}

// FuzzRedactRuns: whatever the text and the secret, Redact does not panic,
// and no run of 8 of the secret's characters (case and separators
// ignored, \u00XX escapes decoded) survives outside its markers.
func FuzzRedactRuns(f *testing.F) {
	const lic = "LK-7Q2M-X9RB-4TZC-H8WN-5YJD"
	for _, v := range variants(lic) {
		f.Add("x "+v+" y", lic)
	}
	f.Add(`\u004c\u004b-7q2m`+"X9RB", lic)
	f.Add("redacted[redacted]redacted", "REDACTED-REDACTED")
	f.Add("abcdefgh%2Fijkl", "abcdefgh/ijkl")
	f.Fuzz(func(t *testing.T, text, secret string) {
		r := verdict.NewRedactor(secret)
		r.AddLive(strings.ToLower(secret) + "-live")
		got := r.Redact(text)
		if leak := testkit.FindLeak(got, secret); leak != "" {
			t.Fatalf("Redact(%q) with secret %q = %q: kept %q", text, secret, got, leak)
		}
	})
}

// TestRedactorLiveWindow adds values one and two at a time, as begins and
// extends do, and checks after each that the last 64 are all removed (the
// ones extended in place as well as the ones a rebuild derived) while the
// fixed secrets stay removed.
func TestRedactorLiveWindow(t *testing.T) {
	t.Parallel()
	r := verdict.NewRedactor("APIKEY-4f1c9a0be27d4c65")
	r.AddLive("first-QWERTYUIOPLKJH")
	var added []string
	for i := range 300 {
		v := fmt.Sprintf("tok%d-%s", i, strings.Repeat(string(rune('a'+i%26)), 8+i%40))
		if i%3 == 0 {
			r.AddLive(v, v+"-key")
			added = append(added, v, v+"-key")
		} else {
			r.AddLive(v)
			added = append(added, v)
		}
		for _, old := range added[max(0, len(added)-64):] {
			if got := r.Redact("x " + old + " y"); !strings.Contains(got, verdict.Redacted) || strings.Contains(got, old) {
				t.Fatalf("after %d adds, %q gives %q", i, old, got)
			}
		}
		if got := r.Redact("APIKEY-4f1c9a0be27d4c65"); got != "[redacted]" {
			t.Fatalf("after %d adds, the fixed secret gives %q", i, got)
		}
	}
	assert.Equal(t, "first-QWERTYUIOPLKJH", r.Redact("first-QWERTYUIOPLKJH"), "old values drop out")
}

// A reply that echoes a secret thousands of times is redacted in one copy
// of the text, not one copy per echo (which would be quadratic in its
// length).
func TestRedactorManyEchoes(t *testing.T) {
	const secret, echoes = "sk-live-0123456789abcdef", 2000
	r := verdict.NewRedactor(secret)
	// Upper-cased, so that only the run windows find it, not the exact form.
	text := strings.Repeat(strings.ToUpper(secret)+" ", echoes)
	want := strings.Repeat(verdict.Redacted+" ", echoes)
	assert.Equal(t, want, r.Redact(text))
	allocs := testing.AllocsPerRun(5, func() { r.Redact(text) })
	t.Logf("%.0f allocations for %d echoes", allocs, echoes)
	assert.Less(t, allocs, float64(echoes/20), "the text is copied once per echo")
}
