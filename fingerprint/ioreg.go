package fingerprint

import (
	"bufio"
	"bytes"
	"strings"
)

// parseIoreg parses the text output of `ioreg -rd1 -c IOPlatformExpertDevice` on macOS into the
// string-valued properties of the first node: lines of the form
//
//	"IOPlatformUUID" = "7C6F...-..."
//	"manufacturer" = <"Apple Inc.">
//
// Quoted strings and data holding a quoted string are returned without quotes; other values (numbers,
// hex data, dictionaries) are skipped. The first occurrence of a key wins.
func parseIoreg(out []byte) map[string]string {
	props := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	depth := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "{":
			depth++
			continue
		case line == "}":
			depth--
			if depth <= 0 && len(props) > 0 {
				return props // end of the first node
			}
			continue
		case !strings.HasPrefix(line, `"`):
			continue
		}
		key, val, ok := strings.Cut(line[1:], `" = `)
		if !ok || key == "" {
			continue
		}
		if strings.HasPrefix(val, `<"`) && strings.HasSuffix(val, `">`) {
			val = val[1 : len(val)-1]
		}
		if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' || strings.Contains(val[1:len(val)-1], `"`) {
			continue // not a string, or a list of strings
		}
		if _, dup := props[key]; !dup {
			props[key] = cleanValue(val[1 : len(val)-1])
		}
	}
	return props
}
