package license

import (
	"context"
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

// The anti-rollback record of a shared state file (see rollback.go for the
// record itself). There is one per shared file, keyed by product, licence,
// state directory and the shared file's name. Only the renewer writes it,
// after each write of the shared state and under the record's own lock,
// which the renewer takes at its first write and gives up when it stops
// renewing. Every process reads it without the lock when it loads the
// shared state: the renewer writes the state before the record, so a
// reader that finds the record ahead reads the state again before it calls
// the state restored.

// loadSharedRollbackLocked opens the shared file's record and compares it
// with the shared state just loaded.
func (c *Client) loadSharedRollbackLocked() {
	abs, err := filepath.Abs(c.cfg.StateDir)
	if err != nil {
		abs = c.cfg.StateDir
	}
	dir, err := c.rollbackDir()
	if err != nil {
		c.log.Warn("no place for the anti-rollback record; a restored state directory will not be detected",
			"error", err)
		return
	}
	c.rb = &rollbackGuard{shared: true, dir: dir, name: c.rollbackName(filepath.Join(abs, c.sh.name), 0)}
	blob, err := statefile.ReadUnlocked(c.rb.dir, c.rb.name)
	var rec *rollbackRecord
	switch {
	case errors.Is(err, statefile.ErrNotExist):
	case err != nil:
		c.log.Warn("anti-rollback record unreadable; the renewer re-creates it from the state", "error", err)
	default:
		if rec = openRollbackRecord(c.key, blob); rec == nil {
			c.log.Warn("anti-rollback record does not open; the renewer re-creates it from the state")
		}
	}
	if rec == nil {
		if c.sh.file.Leading() {
			if c.st.Generation > 0 || !c.st.Sent.IsZero() {
				c.log.Info("anti-rollback record missing; re-created from the shared state")
			}
			c.writeRollbackLocked()
		}
		c.rb.seen, c.rb.sent = c.st.Generation, c.st.Sent
		return
	}
	if c.st.Generation < rec.Generation {
		// The renewer may have written the state and the record since
		// the state was read: read it again before judging.
		c.refreshSharedLocked(true)
	}
	if rec.HighWater.After(c.st.HighWater) {
		c.st.HighWater = rec.HighWater // the clock check sees the latest time too
	}
	c.rb.seen = max(rec.Generation, c.st.Generation)
	if c.st.Sent.After(c.rb.sent) {
		c.rb.sent = c.st.Sent
	}
	if c.st.Generation < rec.Generation {
		c.markRestoredLocked(rec.Generation)
	}
}

// sharedStateBehindLocked reports whether a shared state p just read is
// older than one this client has already seen (a copy restored under
// running processes), and otherwise notes it as seen. Older means a lower
// generation with no newer send time and no newer refusal: a renewer that
// had to start its state afresh (a corrupt file and no record) still
// reaches its followers with each contact with the server. A state taken
// is current: it ends a restored client's restriction.
func (c *Client) sharedStateBehindLocked(p *persisted) bool {
	rb := c.rb
	if rb == nil {
		return false
	}
	newerRefusal := p.Refusal != nil && (c.st.Refusal == nil || p.Refusal.At.After(c.st.Refusal.At))
	if p.Generation < rb.seen && !p.Sent.After(rb.sent) && !newerRefusal {
		c.log.Warn("shared state is older than one already read (restored from a copy); keeping the newer one",
			"state_generation", p.Generation, "seen_generation", rb.seen)
		return true
	}
	rb.seen = max(rb.seen, p.Generation)
	if p.Sent.After(rb.sent) {
		rb.sent = p.Sent
	}
	c.restored = false
	return false
}

// sharedRecordLocked returns the record's locked file for a write, taking
// the lock at the renewer's first write; nil for a follower or when the
// lock cannot be had (said once).
func (c *Client) sharedRecordLocked() *statefile.File {
	rb := c.rb
	if !c.sh.file.Leading() {
		return nil
	}
	if rb.f == nil {
		f, err := statefile.Acquire(rb.dir, rb.name, 1)
		if err != nil {
			if !rb.warned {
				rb.warned = true
				c.log.Warn("no writable place for the anti-rollback record; a restored state directory will not be detected",
					"error", err)
			}
			return nil
		}
		rb.f = f
	}
	return rb.f
}

// resignSharedLocked gives up the renewer lock, and the record's lock
// before it, when this client stops renewing for good (a final refusal, a
// failed Start): another process may then renew, and ask the server itself.
func (c *Client) resignSharedLocked() {
	if !c.sharedOn() || !c.sh.file.Leading() {
		return
	}
	c.saveLocked(context.Background()) // its last state and high-water mark, with the record
	c.releaseSharedRecord()
	if err := c.sh.file.Resign(); err != nil {
		c.log.Warn("shared session: could not give up the renewer lock", "error", err)
		return
	}
	c.sh.role.Store(uint32(Follower))
}

// releaseSharedRecord drops the lock on the shared file's record, so that
// the next renewer can take it.
func (c *Client) releaseSharedRecord() {
	if c.rb != nil && c.rb.shared && c.rb.f != nil {
		_ = c.rb.f.Release()
		c.rb.f = nil
	}
}
