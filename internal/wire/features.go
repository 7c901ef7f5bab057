package wire

import (
	"encoding/json"
	"slices"
	"strings"
)

// maxFeatures bounds how many names ParseFeatures returns.
const maxFeatures = 1024

// ParseFeatures splits the features string of a begin_session reply into a
// sorted set of names. The spec calls features a string and says no more, so
// three forms are understood:
//   - JSON: an array of strings, or an object whose keys are names and whose
//     values enable them unless false, null, 0 or "";
//   - a list separated by commas, semicolons or white space.
//
// Names are trimmed and deduplicated; empty names are dropped. It never fails.
func ParseFeatures(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	var names []string
	var arr []any
	var obj map[string]any
	switch {
	case s[0] == '[' && json.Unmarshal([]byte(s), &arr) == nil:
		for _, v := range arr {
			if str, ok := v.(string); ok {
				names = append(names, str)
			}
		}
	case s[0] == '{' && json.Unmarshal([]byte(s), &obj) == nil:
		for k, v := range obj {
			if enabled(v) {
				names = append(names, k)
			}
		}
	default:
		names = strings.FieldsFunc(s, func(r rune) bool {
			return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
		})
	}
	return normalise(names)
}

func enabled(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	}
	return true
}

func normalise(names []string) []string {
	out := names[:0]
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	out = out[:min(len(out), maxFeatures)]
	if len(out) == 0 {
		return nil
	}
	return slices.Clip(out)
}
