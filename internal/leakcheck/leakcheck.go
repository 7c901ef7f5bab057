// Package leakcheck finds a secret left in text, for the tests that check
// the redactor and the client's logs, events and errors. It is written
// apart from the redactor (internal/verdict), so that the two do not share
// a mistake.
package leakcheck

import (
	"strconv"
	"strings"
)

// Find returns a run of 8 of secret's letters and digits (case and every
// other character ignored) left in text outside "[redacted]" markers,
// reading text as it is and with \u00XX escapes decoded, with the text
// around it; "" when there is none.
func Find(text, secret string) string {
	sec := letters(secret, false)
	for piece := range strings.SplitSeq(text, "[redacted]") {
		for _, decode := range []bool{false, true} {
			p := letters(piece, decode)
			for i := 0; i+8 <= len(sec); i++ {
				if j := strings.Index(p, sec[i:i+8]); j >= 0 {
					return sec[i:i+8] + " in ..." + p[max(0, j-40):min(len(p), j+48)] + "..."
				}
			}
		}
	}
	return ""
}

// letters keeps s's ASCII letters, in lower case, and digits; with decode
// it first reads each \u00XX escape as the byte it names.
func letters(s string, decode bool) string {
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
