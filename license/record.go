package license

import (
	"cmp"
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

// ErrRollbackRecordUnusable reports that the anti-rollback record's
// location exists but cannot be used (a file where its directory belongs,
// no permission, a record that does not open), or that the state was saved
// while it could not be. The persisted state then grants no offline time
// until the server answers again; an online start works as usual.
var ErrRollbackRecordUnusable = errors.New("license: anti-rollback record unusable")

// rollbackRecord is the anti-rollback record, one per state file (see store
// for the layout and why it lives apart).
type rollbackRecord struct {
	Version    int           `json:"v"`
	Generation uint64        `json:"generation"`
	HighWater  time.Time     `json:"high_water"`
	Sent       time.Time     `json:"sent"` // the state's Sent and Used
	Used       time.Duration `json:"used"`
}

const rollbackRecordVersion = 2

var rollbackAAD = []byte("licensekit rollback record v1")

// rollbackGuard is the store's handle on its record.
type rollbackGuard struct {
	// f is the record's file, locked; in shared mode only by the renewer,
	// from its first write (writeRecord).
	f *statefile.File
	// In shared mode every process reads the record without the lock; seen
	// is the latest generation read from it or the shared state, sent the
	// latest send time read, and warned notes a failure to lock was logged.
	dir, name string
	seen      uint64
	sent      time.Time
	warned    bool
}

// WithRollbackRecordDir keeps the anti-rollback record in dir instead of
// os.UserConfigDir()/licensekit/rollback: for containers, where the user's
// configuration directory is not persistent or not writable, and for
// tests. Choose a directory outside StateDir that a restore of StateDir
// does not touch. An empty dir keeps the default. A dir that cannot be
// used grants no offline time from the persisted state
// (ErrRollbackRecordUnusable).
func WithRollbackRecordDir(dir string) Option {
	return func(o *options) { o.rollbackDir = dir }
}

func (s *store) hasRecord() bool {
	return s.slot != nil || s.shared != nil || s.opts.rollbackDir != ""
}

func (s *store) recordName() string {
	where, slot := "store", 0
	if s.slot != nil || s.shared != nil {
		abs, _ := filepath.Abs(s.cfg.StateDir)
		where = cmp.Or(abs, s.cfg.StateDir) // "" when there is no working directory
		if s.shared != nil {
			where = filepath.Join(where, s.sharedName)
		} else {
			slot = s.slot.Slot()
		}
	}
	return recordName(s.cfg, where, slot)
}

func recordName(cfg *Config, where string, slot int) string {
	return "rb-" + nameDigest("licensekit rollback v1", cfg.ProductGUID, cfg.LicenseKey, where, strconv.Itoa(slot))
}

// nameDigest is a file name part that shows none of parts: 16 bytes of
// SHA-256 over each part and a 0 byte, in hex.
func nameDigest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// unusable notes that the record's location refuses: no offline time from
// the persisted state, and the state saved from now on is Unanchored.
func (s *store) unusable(p *persisted, err error) {
	if s.recordErr == nil {
		s.log.Warn("anti-rollback record unusable; no offline time from the saved state until the server answers",
			"error", err)
	}
	s.recordErr = err
	p.Unanchored = true
}

// loadRecord opens the record after the state was loaded (loaded: a state
// opened) and compares them.
func (s *store) loadRecord(p *persisted, loaded bool) {
	dir, ok := recordLocation(s.opts, true)
	if !ok {
		s.log.Warn("no place for the anti-rollback record (no user configuration directory); a restored state directory will not be detected")
		return
	}
	s.rb = &rollbackGuard{dir: dir, name: s.recordName()}
	var blob []byte
	var err error
	if s.shared != nil {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			blob, err = statefile.ReadUnlocked(dir, s.rb.name)
		}
	} else {
		if s.rb.f, err = statefile.Acquire(dir, s.rb.name, 1); err != nil {
			s.rb = nil
			s.unusable(p, err)
			return
		}
		blob, err = s.rb.f.Read()
	}
	var rec *rollbackRecord
	switch {
	case errors.Is(err, statefile.ErrNotExist):
		if loaded { // deleted: create it again from the state
			s.log.Info("anti-rollback record missing; re-created from the state")
		}
	case err != nil && !errors.Is(err, statefile.ErrCorrupt):
		s.unusable(p, err)
		return
	default:
		if rec = openRecord(s.keys, blob); rec == nil {
			// Grant nothing offline until the server answers, and write a
			// fresh record.
			s.unusable(p, errors.New("the record does not open"))
			if s.rb.f != nil {
				_, _ = s.rb.f.Quarantine()
			}
			s.recordErr = nil // the location itself works: the next save repairs it
		}
	}
	if rec == nil {
		s.writeRecord(p) // a follower does not write
		s.rb.seen, s.rb.sent = p.Generation, p.Sent
		return
	}
	if s.shared != nil && p.Generation < rec.Generation {
		// The renewer may have written the state and the record since the
		// state was read: read it again before judging.
		if blob, err := s.shared.Read(); err == nil {
			if q, err := openStateWith(s.keys, blob); err == nil && q.Generation > p.Generation {
				*p, loaded = *q, true
				s.saved, s.savedValid = *q, true
			}
		}
	}
	if rec.HighWater.After(p.HighWater) {
		p.HighWater = rec.HighWater // the clock check sees the latest time too
	}
	if rec.Sent.Equal(p.Sent) && rec.Used > p.Used {
		p.Used = rec.Used
	}
	s.rb.seen, s.rb.sent = max(rec.Generation, p.Generation), p.Sent
	if p.Generation >= rec.Generation {
		return
	}
	if loaded {
		// Restored from a copy: no offline time, now or after the next
		// save moves the state past the record.
		s.restored = true
		s.log.Warn("persisted state is older than its anti-rollback record (restored from a copy); no offline time until the server answers",
			"state_generation", p.Generation, "record_generation", rec.Generation)
		p.Sent = time.Time{} // the restored deadlines grant nothing
	}
	// Without a state (missing or corrupt, said elsewhere) nothing is granted
	// or restored. The next save moves past the record.
	p.Generation = rec.Generation
}

func openRecord(keys [][]byte, blob []byte) *rollbackRecord {
	return openSealed(keys, rollbackAAD, blob, func(r *rollbackRecord) bool { return r.Version == rollbackRecordVersion })
}

// openSealed opens blob with the first of keys that fits and decodes it;
// nil when it does not open, does not decode or is not current.
func openSealed[T any](keys [][]byte, aad, blob []byte, current func(*T) bool) *T {
	for _, k := range keys {
		if plain, err := statefile.Open(k, aad, blob); err == nil {
			var v T
			if json.Unmarshal(plain, &v) != nil || !current(&v) {
				return nil
			}
			return &v
		}
	}
	return nil
}

// writeRecord writes the record after the state itself was saved (a crash
// between the two leaves the state ahead of its record: harmless). In
// shared mode only the renewer writes it, taking its lock at its first
// write; a lock it cannot have makes the record unusable, said once.
func (s *store) writeRecord(p *persisted) {
	rb := s.rb
	if rb == nil || s.shared != nil && !s.shared.Leading() {
		return
	}
	var err error
	if rb.f == nil { // shared mode, before this renewer's first write
		if rb.f, err = statefile.Acquire(rb.dir, rb.name, 1); err != nil {
			if !rb.warned {
				rb.warned = true
				s.unusable(p, err)
			}
			return
		}
	}
	rb.seen = max(rb.seen, p.Generation)
	plain, _ := json.Marshal(rollbackRecord{Version: rollbackRecordVersion, Generation: p.Generation,
		HighWater: p.HighWater, Sent: p.Sent, Used: p.Used})
	blob, err := statefile.Seal(s.keys[0], rollbackAAD, plain)
	if err == nil {
		err = rb.f.Write(blob)
	}
	if err != nil {
		s.unusable(p, err)
	}
}

// releaseSharedRecord lets the next renewer take the record's lock.
func (s *store) releaseSharedRecord() {
	if s.rb != nil && s.shared != nil && s.rb.f != nil {
		_ = s.rb.f.Release()
		s.rb.f = nil
	}
}

// inspectRecords looks at the records of the state files at where and
// slots, creating, locking and moving nothing, and says why their location
// cannot be used (nil when it works or has not been made yet).
func inspectRecords(cfg *Config, o *options, keys [][]byte, where string, slots int) error {
	dir, ok := recordLocation(o, false)
	if !ok {
		return nil
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil // made at the first start
	case err != nil:
		return err
	case !st.IsDir():
		return errors.New("a file is where the record directory belongs")
	}
	for i := range max(slots, 1) {
		blob, err := statefile.ReadUnlocked(dir, recordName(cfg, where, i))
		switch {
		case errors.Is(err, statefile.ErrNotExist):
			continue
		case err != nil && !errors.Is(err, statefile.ErrCorrupt):
			return err
		}
		if openRecord(keys, blob) == nil {
			return errors.New("a record does not open")
		}
	}
	return nil
}

// refusalFile is the licence's latest final refusal on this machine (see
// store for where it is kept, and why).
type refusalFile struct {
	Version int            `json:"v"`
	Refusal *refusalRecord `json:"refusal,omitempty"`
	// ClearedAt is when a sealed success last cleared the refusal: a slot's
	// own copy of a refusal from before then is cleared too.
	ClearedAt time.Time `json:"cleared_at,omitzero"`
}

const refusalFileVersion = 1

var refusalAAD = []byte("licensekit licence refusal v1")

func refusalName(cfg *Config) string {
	return "rf-" + nameDigest("licensekit refusal v1", cfg.ProductGUID, cfg.LicenseKey)
}

// loadRefusal takes the licence's refusal into p when it is newer than
// p's own.
func (s *store) loadRefusal(p *persisted) {
	if s.back == nil {
		return
	}
	if dir, ok := recordLocation(s.opts, true); ok && s.hasRecord() {
		s.refusalDir = dir
	} else {
		s.refusalDir = s.cfg.StateDir
	}
	if s.refusalDir == "" {
		return
	}
	blob, err := statefile.ReadUnlocked(s.refusalDir, refusalName(s.cfg))
	if err != nil {
		if s.recordErr == nil && !errors.Is(err, statefile.ErrNotExist) {
			s.unusable(p, err)
		}
		return
	}
	rf := openRefusal(s.keys, blob)
	if rf == nil {
		// Planted or damaged: a refusal may have been erased. The next
		// refusal or success rewrites it.
		s.log.Warn("the licence's refusal file does not open; no offline time until the server answers")
		p.Unanchored = true
		return
	}
	if rf.Refusal == nil {
		if p.Refusal != nil && !p.Refusal.At.After(rf.ClearedAt) {
			p.Refusal = nil // cleared since, by a sealed success in another slot or process
		}
		return
	}
	s.refusal = rf.Refusal
	if p.Refusal == nil || rf.Refusal.At.After(p.Refusal.At) {
		p.Refusal = rf.Refusal
	}
}

func openRefusal(keys [][]byte, blob []byte) *refusalFile {
	return openSealed(keys, refusalAAD, blob, func(f *refusalFile) bool { return f.Version == refusalFileVersion })
}

// writeRefusal keeps the licence's refusal file in step with p after a
// save: a new refusal is written, a cleared one replaced by the time it
// was cleared.
func (s *store) writeRefusal(p *persisted) {
	if s.refusalDir == "" {
		return
	}
	var f refusalFile
	switch {
	case p.Refusal != nil && (s.refusal == nil || p.Refusal.At.After(s.refusal.At)):
		f = refusalFile{Version: refusalFileVersion, Refusal: p.Refusal}
	case p.Refusal == nil && s.refusal != nil:
		f = refusalFile{Version: refusalFileVersion, ClearedAt: p.LastContact}
	default:
		return
	}
	plain, _ := json.Marshal(f)
	blob, err := statefile.Seal(s.keys[0], refusalAAD, plain)
	if err == nil {
		err = s.writeRefusalFile(blob)
	}
	if err != nil {
		s.log.Warn("could not save the licence's refusal", "error", err)
		return
	}
	s.refusal = p.Refusal
}

// writeRefusalFile writes the refusal file under its lock, waiting a
// little for another client of the licence that holds it.
func (s *store) writeRefusalFile(blob []byte) error {
	file, err := statefile.Acquire(s.refusalDir, refusalName(s.cfg), 1)
	for tries := 1; errors.Is(err, statefile.ErrLocked) && tries < 20; tries++ {
		time.Sleep(10 * time.Millisecond)
		file, err = statefile.Acquire(s.refusalDir, refusalName(s.cfg), 1)
	}
	if err != nil {
		return err
	}
	defer file.Release()
	return file.Write(blob)
}
