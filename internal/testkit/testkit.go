// Package testkit holds the pieces that the SDK's tests and the examples'
// tests share: the fixed machine they run a client on, the network of an
// air-gapped machine, a buffer for logs written concurrently, the
// benchmarks' median, and a finder of secrets left in text (FindLeak).
package testkit

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
)

// AirGap is the network of an air-gapped machine: an http.RoundTripper
// whose every request fails at once.
type AirGap struct{}

// RoundTrip fails.
func (AirGap) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("network is unreachable")
}

// Fingerprint returns a new copy of the fixed machine, with two strong
// components (the board serial and the machine id). A test may change its
// copy.
func Fingerprint() *fingerprint.Fingerprint {
	return &fingerprint.Fingerprint{
		CPUID:        fingerprint.Component{Name: fingerprint.NameCPUID, Value: "cpu-0001", Strength: fingerprint.Weak},
		MBSerial:     fingerprint.Component{Name: fingerprint.NameMBSerial, Value: "board-0001", Strength: fingerprint.Strong},
		MACAddresses: fingerprint.Component{Name: fingerprint.NameMACAddresses, Values: []string{"00:1b:21:3a:4f:5c"}, Strength: fingerprint.Medium},
		VolumeHash:   fingerprint.Component{Name: fingerprint.NameVolumeHash, Value: "9f2c5b0e", Strength: fingerprint.Medium},
		HostName:     fingerprint.Component{Name: fingerprint.NameHostName, Value: "scenario-box", Strength: fingerprint.Weak},
		Extra: []fingerprint.Component{
			{Name: fingerprint.NameMachineID, Value: "5e1f00d1", Strength: fingerprint.Strong},
		},
	}
}

// LockedBuffer is a bytes.Buffer safe for concurrent use, for logs.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Median returns the median of d, sorting d; 0 when d is empty.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// FindLeak returns a run of 8 of secret's letters and digits (case and every
// other character ignored) left in text outside "[redacted]" markers,
// reading text as it is and with \u00XX escapes decoded, with the text
// around it; "" when there is none. It is written apart from the redactor
// (internal/verdict), so that the two do not share a mistake.
func FindLeak(text, secret string) string {
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
