package text_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/licensekit/licensekit-go/internal/text"
)

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"plain", "server said no", 200, "server said no"},
		{"controls and escapes", "line one\nline two\x00\x1b[31m", 200, "line one line two [31m"},
		{"invalid UTF-8 and runs of space", "  a \xff\xfe  b  ", 200, "a b"},
		{"cut with an ellipsis", "abcdefghij", 8, "abcde…"},
		{"exactly n", "abcdefgh", 8, "abcdefgh"},
		{"empty", "", 8, ""},
		{"n smaller than the ellipsis", "abcdef", 2, "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, text.Clean(tt.in, tt.n))
		})
	}
}

func TestCleanCutsOnARuneBoundary(t *testing.T) {
	t.Parallel()
	got := text.Clean(strings.Repeat("ü", 400), 200)
	assert.LessOrEqual(t, len(got), 200)
	assert.True(t, utf8.ValidString(got))
	assert.True(t, strings.HasSuffix(got, "…"))
}

func FuzzClean(f *testing.F) {
	f.Add("a\nb\x00c \xff", 10)
	f.Add(strings.Repeat("ü", 50), 7)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = n%300 + 300 // 1 to 599
		got := text.Clean(s, n)
		if !utf8.ValidString(got) {
			t.Fatalf("Clean(%q, %d) = %q: invalid UTF-8", s, n, got)
		}
		if len(got) > n && got != "…" {
			t.Fatalf("Clean(%q, %d) = %q: %d bytes", s, n, got, len(got))
		}
		if strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("Clean(%q, %d) = %q: a control character", s, n, got)
		}
	})
}
