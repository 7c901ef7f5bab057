package license

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/licensekit/licensekit-go/internal/statefile"
)

// ErrStateRollback reports a persisted state older than its anti-rollback
// record: the state file (or the whole state directory) was restored from
// a copy. It grants no offline time until the server answers again; an
// online start works as usual.
var ErrStateRollback = errors.New("license: persisted state is older than its anti-rollback record")

// The anti-rollback record is a second, small sealed file kept outside
// StateDir, one per state file (keyed by product, licence, state directory
// and slot, or the shared file's name in shared mode: sharedrecord.go),
// holding the latest state generation and wall-time high-water mark. Restoring the state directory from a backup leaves it ahead of the
// restored state, which then grants no offline time.
//
// By default it lives under os.UserConfigDir()/licensekit/rollback, so it
// is per user: a run as another user has its own record (re-created from the
// state on first use) and the protection is per user too. Where no such
// directory is writable (no home directory), the client says so once in
// the log and runs without it: a restored state directory then goes
// unnoticed.
type rollbackRecord struct {
	Version    int       `json:"v"`
	Generation uint64    `json:"generation"`
	HighWater  time.Time `json:"high_water"`
}

const rollbackRecordVersion = 1

var rollbackAAD = []byte("licensekit rollback record v1")

// rollbackGuard is the client's handle on its record.
type rollbackGuard struct {
	// f is the record's file, locked. In shared mode it is held only by
	// the renewer, acquired at its first write (sharedrecord.go).
	f *statefile.File
	// In shared mode, where the record is: every process reads it without
	// the lock; seen is the latest generation read from the record or the
	// shared state, sent the latest send time read from the shared state,
	// and warned notes that a failure to lock was logged.
	shared    bool
	dir, name string
	seen      uint64
	sent      time.Time
	warned    bool
}

// WithRollbackRecordDir keeps the anti-rollback record in dir instead of
// os.UserConfigDir()/licensekit/rollback: for containers, where the user's
// configuration directory is not persistent or not writable, and for
// tests. Choose a directory outside StateDir that a restore of StateDir
// does not touch. An empty dir keeps the default.
func WithRollbackRecordDir(dir string) Option {
	return func(o *options) { o.rollbackDir = dir }
}

// rollbackDir returns where the record lives, or "" when nowhere.
func (c *Client) rollbackDir() (string, error) {
	if c.opts.rollbackDir != "" {
		return c.opts.rollbackDir, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "licensekit", "rollback"), nil
}

// rollbackName names the record of one state file: a digest of product,
// licence, state location and slot, so that no identity shows in the name.
func (c *Client) rollbackName(where string, slot int) string {
	h := sha256.New()
	for _, p := range []string{"licensekit rollback v1", c.cfg.ProductGUID, c.cfg.LicenseKey, where, strconv.Itoa(slot)} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "rb-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// loadRollbackLocked opens the record after the state was loaded, and
// compares. It runs only for persisted state (a file in StateDir, or a
// custom store when WithRollbackRecordDir is given).
func (c *Client) loadRollbackLocked() {
	if c.sharedOn() {
		c.loadSharedRollbackLocked() // sharedrecord.go
		return
	}
	var where string
	slot := 0
	switch {
	case c.slot != nil:
		abs, err := filepath.Abs(c.cfg.StateDir)
		if err != nil {
			abs = c.cfg.StateDir
		}
		where, slot = abs, c.slot.Slot()
	case c.store != nil && c.opts.rollbackDir != "":
		where = "store"
	default:
		return
	}
	dir, err := c.rollbackDir()
	var f *statefile.File
	if err == nil {
		f, err = statefile.Acquire(dir, c.rollbackName(where, slot), 1)
	}
	if err != nil {
		c.log.Warn("no writable place for the anti-rollback record; a restored state directory will not be detected",
			"error", err)
		return
	}
	c.rb = &rollbackGuard{f: f}
	blob, err := f.Read()
	var rec *rollbackRecord
	switch {
	case errors.Is(err, statefile.ErrNotExist):
	case err != nil:
		c.log.Warn("anti-rollback record unreadable; re-creating it from the state", "error", err)
	default:
		rec = openRollbackRecord(c.key, blob)
		if rec == nil {
			c.log.Warn("anti-rollback record does not open; re-creating it from the state")
			_, _ = f.Quarantine()
		}
	}
	if rec == nil {
		if c.st.Generation > 0 || !c.st.Sent.IsZero() {
			c.log.Info("anti-rollback record missing; re-created from the state")
		}
		c.writeRollbackLocked()
		return
	}
	if rec.HighWater.After(c.st.HighWater) {
		c.st.HighWater = rec.HighWater // the clock check sees the latest time too
	}
	if c.st.Generation < rec.Generation {
		c.markRestoredLocked(rec.Generation)
	}
}

// markRestoredLocked handles a state behind its record (at generation
// gen): no offline time, and none in what is saved next either, so that a
// save (which moves the state past the record) cannot turn the restored
// copy into a current one.
func (c *Client) markRestoredLocked(gen uint64) {
	c.restored = true
	c.log.Warn("persisted state is older than its anti-rollback record (restored from a copy); no offline time until the server answers",
		"state_generation", c.st.Generation, "record_generation", gen)
	c.st.Generation = gen   // the next save moves past the record
	c.st.Sent = time.Time{} // the restored deadlines grant nothing, now or after a save
}

func openRollbackRecord(key, blob []byte) *rollbackRecord {
	plain, err := statefile.Open(key, rollbackAAD, blob)
	if err != nil {
		return nil
	}
	var r rollbackRecord
	if json.Unmarshal(plain, &r) != nil || r.Version != rollbackRecordVersion {
		return nil
	}
	return &r
}

// writeRollbackLocked stores the state's generation and high-water mark in
// the record, after the state itself was saved (a crash between the two
// leaves the state ahead of its record, which is harmless).
func (c *Client) writeRollbackLocked() {
	if c.rb == nil {
		return
	}
	f := c.rb.f
	if c.rb.shared {
		if f = c.sharedRecordLocked(); f == nil {
			return // a follower, or no lock on the record
		}
	}
	plain, _ := json.Marshal(rollbackRecord{Version: rollbackRecordVersion, Generation: c.st.Generation, HighWater: c.st.HighWater})
	blob, err := statefile.Seal(c.key, rollbackAAD, plain)
	if err == nil {
		err = f.Write(blob)
	}
	if err != nil {
		c.log.Warn("could not save the anti-rollback record", "error", err)
	}
}

// restoredErr reports a state restored from a copy, for the offline
// allowance check.
func (c *Client) restoredErr() error {
	if !c.restored {
		return nil
	}
	return &stateError{kind: ErrStateRollback, msg: "restored from a copy; no offline time until the server answers"}
}

// releaseRollback drops the record's lock.
func (c *Client) releaseRollback() {
	if c.rb != nil && c.rb.f != nil {
		_ = c.rb.f.Release()
	}
}
