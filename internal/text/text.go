// Package text holds the SDK's one sanitiser: every text from the network,
// or from another program, passes Clean before it reaches an error string,
// a log line or an event. Clean removes nothing secret; that is the
// redactor's job (internal/verdict), which runs first. IndexFold is the
// one case-blind search of raw bytes.
package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean makes s one printable line of at most n bytes: control characters,
// invalid UTF-8 and runs of white space become one space, leading and
// trailing space is dropped, and a longer text is cut on a rune boundary and
// ends in "…" (counted in the n bytes when n is at least 3).
func Clean(s string, n int) string {
	var b strings.Builder
	pending := false
	for _, c := range s {
		if c == utf8.RuneError || unicode.IsControl(c) || unicode.IsSpace(c) {
			pending = b.Len() > 0
			continue
		}
		add := utf8.RuneLen(c)
		if pending {
			add++
		}
		if b.Len()+add > n {
			// Cut on a rune boundary, leaving room for the ellipsis.
			out := b.String()
			for len(out) > max(n-len("…"), 0) {
				_, size := utf8.DecodeLastRuneInString(out)
				out = out[:len(out)-size]
			}
			return out + "…"
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteRune(c)
	}
	return b.String()
}

// IndexFold is the index of the lower-case ASCII pattern pat in b, ignoring
// ASCII case, or -1. Unlike bytes.ToLower it never changes lengths, so the
// index is valid in b whatever bytes b holds.
func IndexFold(b []byte, pat string) int {
	for i := 0; i+len(pat) <= len(b); i++ {
		j := 0
		for ; j < len(pat); j++ {
			c := b[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != pat[j] {
				break
			}
		}
		if j == len(pat) {
			return i
		}
	}
	return -1
}
