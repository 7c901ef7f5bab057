package license

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/internal/statefile"
)

// StateStore keeps the client's sealed state between runs. The client
// seals everything before Save and opens it after Load, so a store only
// keeps bytes. Implementations must make Save atomic: a crash leaves either
// the old bytes or the new ones.
type StateStore interface {
	// Load returns the saved bytes, or an error matching ErrNoState when
	// nothing was saved.
	Load(ctx context.Context) ([]byte, error)
	// Save replaces the saved bytes atomically.
	Save(ctx context.Context, data []byte) error
	// Discard moves the saved bytes aside (or deletes them) after they
	// failed to open.
	Discard(ctx context.Context) error
}

// ErrNoState is what StateStore.Load returns when nothing was saved.
var ErrNoState = errors.New("license: no saved state")

// MemoryStateStore is a StateStore in memory, safe for concurrent use. It
// lets tests restart a client "offline" by handing the same store to a new
// client. The zero value is ready to use.
type MemoryStateStore struct {
	mu   sync.Mutex
	data []byte
}

// Load implements StateStore.
func (s *MemoryStateStore) Load(context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		return nil, ErrNoState
	}
	return bytes.Clone(s.data), nil
}

// Save implements StateStore.
func (s *MemoryStateStore) Save(_ context.Context, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = bytes.Clone(data)
	return nil
}

// Discard implements StateStore.
func (s *MemoryStateStore) Discard(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = nil
	return nil
}

// Bytes returns a copy of the sealed bytes, for tests that tamper with them
// (and put them back with Save).
func (s *MemoryStateStore) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.data)
}

// persisted is the plaintext of the state file.
type persisted struct {
	Version           int    `json:"v"`
	InstanceGUID      string `json:"instance_guid,omitempty"`
	FirstRegisteredAt string `json:"first_registered_at,omitempty"`
	// Creds is credentialsDigest of the configuration whose requests the
	// server last answered: a session resumed under other credentials is
	// checked with the server first.
	Creds             string            `json:"creds,omitempty"`
	FingerprintDigest string            `json:"fingerprint_digest,omitempty"` // machineDigest
	Components        map[string]string `json:"components,omitempty"`         // componentDigests
	InstallID         string            `json:"install_id,omitempty"`         // machineOf
	Token             string            `json:"token,omitempty"`              // empty after a clean end
	// Sent is the wall time the last successful begin or extend was sent.
	Sent           time.Time      `json:"sent"`
	SessionSeconds int64          `json:"session_duration"`
	GraceSeconds   int64          `json:"validation_grace_period"`
	Features       string         `json:"features,omitempty"`
	LastContact    time.Time      `json:"last_contact"` // the server last answered
	HighWater      time.Time      `json:"high_water"`   // the latest wall time seen
	Refusal        *refusalRecord `json:"refusal,omitempty"`
	Generation     uint64         `json:"generation,omitempty"` // counts saves (record.go)
	// Used is the offline budget spent since Sent at this save
	// (elapsedSince). A restart continues from it.
	Used time.Duration `json:"used,omitempty"`
	// OfflineOpen is set when a running client saved while the server was
	// not answering, and cleared by Close: a restart that finds it set
	// charges offlineSaveEvery, the most the last run may not have saved.
	OfflineOpen bool `json:"offline_open,omitempty"`
	// Unanchored: saved or loaded while the record could not be used; no
	// offline time until the server answers.
	Unanchored bool `json:"unanchored,omitempty"`

	// Offline is the pending carried request file (secret: reply keys).
	Offline *offlinePending `json:"offline,omitempty"`
}

// stateVersion is the plaintext format version ("v"). See
// docs/versioning.md for the rule once a release is tagged.
const stateVersion = 2

// maxStateSeconds bounds persisted control options to a century, as the
// wire decoder does.
const maxStateSeconds = 100 * 366 * 24 * 3600

// stateAAD binds the sealed state to its purpose.
var stateAAD = []byte("licensekit state v1")

func sealState(key []byte, p *persisted) ([]byte, error) {
	p.Version = stateVersion
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return statefile.Seal(key, stateAAD, plain)
}

// openState opens and validates sealed state. Every failure matches
// ErrStateCorrupt.
func openState(key, blob []byte) (*persisted, error) {
	plain, err := statefile.Open(key, stateAAD, blob)
	if err != nil {
		return nil, &stateError{kind: ErrStateCorrupt, msg: "does not open (tampered, truncated or from another machine)", err: err}
	}
	var p persisted
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, &stateError{kind: ErrStateCorrupt, msg: "bad contents"}
	}
	if p.Version != stateVersion {
		return nil, &stateError{kind: ErrStateCorrupt, msg: fmt.Sprintf("unknown version %d", p.Version)}
	}
	if p.SessionSeconds < 0 || p.GraceSeconds < 0 || p.SessionSeconds > maxStateSeconds || p.GraceSeconds > maxStateSeconds {
		return nil, &stateError{kind: ErrStateCorrupt, msg: "control options out of range"}
	}
	if p.Used < 0 || p.Used > 2*maxStateSeconds*time.Second {
		return nil, &stateError{kind: ErrStateCorrupt, msg: "offline time out of range"}
	}
	return &p, nil
}
