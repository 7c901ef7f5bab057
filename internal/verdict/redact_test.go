package verdict_test

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

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

	long := strings.Repeat("ü", 400)
	got = verdict.Clean(long, 200)
	assert.LessOrEqual(t, len(got), 200)
	assert.True(t, utf8.ValidString(got))
	assert.True(t, strings.HasSuffix(got, "…"))
	assert.Equal(t, "line one line two [31m", verdict.Clean("line one\nline two\x00\x1b[31m", 200))
	assert.Equal(t, "a b", verdict.Clean("  a \xff\xfe  b  ", 200))
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
