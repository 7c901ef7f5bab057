package license

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/licensekit/licensekit-go/internal/statefile"
)

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
