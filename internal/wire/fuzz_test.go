package wire

import (
	"os"
	"path/filepath"
	"testing"
)

// seedGolden adds every reply golden file to f's corpus.
func seedGolden(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"success":false}`))
	f.Add([]byte(`{"control_options":{"session_duration":1e9}}`))
}

// FuzzDecodeReply feeds arbitrary bytes to every reply decoder. None may
// panic, and a success must honour the decoders' guarantees.
func FuzzDecodeReply(f *testing.F) {
	seedGolden(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if r, err := DecodeRegister(body); err == nil {
			if r.GUID == "" || r.ControlOptions.SessionDuration <= 0 || r.ControlOptions.ValidationGracePeriod < 0 {
				t.Fatalf("DecodeRegister accepted an invalid reply: %+v", r)
			}
		}
		if r, err := DecodeBegin(body); err == nil {
			if r.Token == "" || r.ControlOptions.SessionDuration <= 0 {
				t.Fatalf("DecodeBegin accepted an invalid reply: %+v", r)
			}
			_ = ParseFeatures(r.Features)
		}
		if r, err := DecodeExtend(body); err == nil && r.ControlOptions.SessionDuration <= 0 {
			t.Fatalf("DecodeExtend accepted a non-positive session_duration: %+v", r)
		}
		_, _ = DecodeEnd(body)
		_ = DecodeFailure(End, body)
	})
}

// FuzzParseTimestamp checks that any text parses without panic and is kept.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2026-11-25T18:00:00Z", "2026-11-25 18:00:00", "1764093600", "1764093600.25", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts := ParseTimestamp(s)
		if ts.Raw != s {
			t.Fatalf("ParseTimestamp(%q).Raw = %q", s, ts.Raw)
		}
	})
}

// FuzzParseFeatures checks that the result is sorted, unique and non-empty
// names, whatever the input.
func FuzzParseFeatures(f *testing.F) {
	for _, s := range []string{"a,b", `["a","b"]`, `{"a":true}`, " ; ,", "[", "{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseFeatures(s)
		for i, n := range got {
			if n == "" || (i > 0 && got[i-1] >= n) {
				t.Fatalf("ParseFeatures(%q) = %q: not sorted unique non-empty names", s, got)
			}
		}
	})
}
