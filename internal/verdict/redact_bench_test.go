package verdict_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/licensekit/licensekit-go/internal/verdict"
)

// benchRedactor is loaded as a long-running client's is: the API key, the
// licence key, a 32-byte shared secret and a full window of live values.
func benchRedactor() *verdict.Redactor {
	r := verdict.NewRedactor("APIKEY-4f1c9a0be27d4c65a1e0f3b2c9d8e7f6", "LICKEY-8d2e4b7a1c3f4e5d9a0b6c7d8e9f0a1b")
	r.AddSecret([]byte("0123456789abcdef0123456789abcdef"))
	for i := range 64 {
		r.AddLive("tok-" + strings.Repeat(string(rune('a'+i%26)), 8) + "-7c1e9b3a5d2f4086b1a2c3d4e5f60718" + string(rune('A'+i%26)))
	}
	return r
}

// BenchmarkRedact measures the redactor on the texts it meets on every
// network call: a short header value, a refusal message, a 4 KiB body
// excerpt, and a message that does hold a secret.
func BenchmarkRedact(b *testing.B) {
	r := benchRedactor()
	texts := map[string]string{
		"header-40B":   "Sat, 07 Dec 2026 14:13:52 GMT; max=3600",
		"message-200B": strings.Repeat("The licence was not found for this product; check the key. ", 4)[:200],
		"body-4KiB":    strings.Repeat("<p>Proxy authentication required: contact your administrator.</p>\n", 64),
		"with-secret":  "invalid licence key LICKEY-8d2e4b7a1c3f4e5d9a0b6c7d8e9f0a1b for product",
	}
	for _, name := range []string{"header-40B", "message-200B", "body-4KiB", "with-secret"} {
		s := texts[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Redact(s)
			}
		})
	}
}

// BenchmarkAddLive measures what a begin or extend costs the redactor: one
// new token and session key added to a full window of live values.
func BenchmarkAddLive(b *testing.B) {
	r := benchRedactor()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		tok := fmt.Sprintf("tok-%08d-7c1e9b3a5d2f4086b1a2c3d4e5f60718", i)
		r.AddLive(tok)
		r.AddLive(tok + "-key")
	}
}
