// Package hook hands package licensetest/admin the parts of a
// licensetest.Server that licensetest keeps unexported: its logger, the
// faults in effect, its request log and a slot for the admin package's own
// per-server state, and the random tokens both packages make. Package
// licensetest sets Of in its init.
package hook

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"sync"
	"time"
)

// Of returns the internals of a *licensetest.Server.
var Of func(server any) Internals

// CheckDurations reports what is wrong with a licence with these
// durations, as licensetest.Server.AddLicense would.
var CheckDurations func(product, key string, session, grace, max time.Duration) error

// Internals are a server's unexported parts.
type Internals struct {
	Logger *slog.Logger
	// Faults returns a snapshot of the faults in effect.
	Faults func() Faults
	// Requests returns the last n retained requests (a
	// []licensetest.Request, oldest first) and the sequence number (from
	// 1) of the first of them.
	Requests func(n int) (last any, first int)
	// Slot holds the admin package's state for this server.
	Slot *Slot
}

// Faults is a snapshot of a server's faults, as the admin API reports
// them: kinds and durations as text, "all" for a fault on every endpoint,
// settings that are off left out.
type Faults struct {
	Down        bool              `json:"-"`
	Mode        string            `json:"-"` // a licensetest.DownMode's String
	Queued      []Queued          `json:"queued"`
	Latency     map[string]string `json:"latency"`
	RetryAfter  map[string]string `json:"retry_after"`
	ContentType map[string]string `json:"content_type"`
	Skew        string            `json:"skew"`
}

// Queued is a queued fault: Left is how many requests it still meets (-1
// for all).
type Queued struct {
	Endpoint string `json:"endpoint"`
	Kind     string `json:"kind"`
	Left     int    `json:"left"`
	Status   int    `json:"status,omitempty"`
}

// Slot is a value kept with a server, guarded by Mu.
type Slot struct {
	Mu sync.Mutex
	V  any
}

// RandomToken returns n random bytes, unpadded base64url: the server's API
// keys, tokens and session keys, and the admin token.
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
