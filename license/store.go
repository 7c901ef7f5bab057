package license

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
)

// The store owns everything the client keeps between runs. No other part
// of the client opens, seals or writes it: the client loads once (open),
// saves through one path (save), and asks the store what the persisted
// state may grant (offlineErr). What is kept, where, keyed by what, and who
// writes it:
//
//	what                   where                                    keyed by                         written by
//	---------------------  ---------------------------------------  -------------------------------  --------------------------------------------
//	sealed state           StateDir/lk-<h>, lk-<h>-1, ... (slots)   product, licence; slot           the client holding the slot's lock
//	                       or the vendor's StateStore               (the vendor's choice)            the client
//	shared state           StateDir/lk-<h>-shared                   product, licence                 the renewer (renewer lock); followers read
//	anti-rollback record   <record dir>/rb-<digest>                 product, licence, state          the client holding the record's lock: the
//	                                                                location, slot (shared: the      slot's client, or in shared mode the renewer;
//	                                                                shared file's name)              every process of a shared file reads it
//	licence refusal        <record dir>/rf-<digest>                 product, licence                 any client of the licence: at a final
//	                       (StateDir when there is no record dir)                                    refusal, and cleared by a sealed success
//	keys                   derived, never stored                    product, licence, machine id     -
//
// <h> is statefile.BaseName(product, licence). The record directory is
// WithRollbackRecordDir, else os.UserConfigDir()/licensekit/rollback. Every
// file is sealed (statefile.Seal) with the first of the machine's keys
// (sealKeys) and opens with any of them; the state, the record and the
// refusal each carry a format version ("v").
//
// The record and the licence refusal live outside StateDir, so that a
// restore of StateDir leaves them ahead: a state behind its record grants
// no offline time, and a refusal of the licence reaches every slot and
// every process, whatever state file it reads. A record location that
// exists but cannot be used (a file where the directory belongs, no
// permission, a record that does not open) grants no offline time from
// the persisted state, says so (ErrRollbackRecordUnusable), and marks the
// state it saves, so that offline time comes back only after the server
// has answered again. A machine with no record location at all (no user
// configuration directory) runs without one, as before its first run.
type store struct {
	cfg  *Config
	opts *options
	log  *slog.Logger
	emit func(Event)

	// keys are the machine's state keys, the sealing one first.
	keys [][]byte
	// back keeps the sealed state bytes: a slot, the shared file or the
	// vendor's store; nil when state lives in memory only.
	back StateStore
	// slot is the locked state file in normal mode with StateDir; shared
	// is the shared file in shared mode (sharedName names it).
	slot       *statefile.File
	shared     *statefile.Shared
	sharedName string

	// rb is the anti-rollback record, nil when there is none.
	rb *rollbackGuard
	// restored is set while the state is older than its record; recordErr
	// when the record's location exists but cannot be used; corrupt when
	// the state did not open and was moved aside.
	restored  bool
	recordErr error
	corrupt   error
	// savedHW is the high-water mark last saved. saved is the state as
	// last read from or written to the shared file (shared mode only).
	savedHW    time.Time
	saved      persisted
	savedValid bool
	// refusal is the licence's refusal as last read from or written to its
	// file; refusalDir is where that file lives ("" for none).
	refusal    *refusalRecord
	refusalDir string
}

func newStore(c *Client) *store {
	s := &store{cfg: &c.cfg, opts: &c.opts, log: c.log, emit: c.emit}
	if c.opts.shared != nil {
		s.sharedName = statefile.SharedName(c.cfg.ProductGUID, c.cfg.LicenseKey)
	}
	return s
}

// open takes the state's location and reads the state, its record and the
// licence's refusal, once per client. It returns the state and the offline
// time it has already used (see persisted.Used). An unusable state
// directory is no error: the client then keeps state in memory and says
// so. Errors are for a context that ended, or every slot held.
func (s *store) open(ctx context.Context, fp *fingerprint.Fingerprint) (p persisted, used time.Duration, err error) {
	s.keys = sealKeys(s.cfg, fp)
	switch {
	case s.opts.store != nil:
		s.back = s.opts.store
	case s.sharedName != "":
		f, err := statefile.JoinShared(ctx, s.cfg.StateDir, s.sharedName)
		if err != nil {
			if ctx.Err() != nil {
				return p, 0, localFault("join shared session", ctx.Err())
			}
			s.log.Warn("shared state unusable; running unshared with state in memory only", "error", err)
			s.emit(Event{Type: EventStateDiscarded, Reason: err, Detail: "shared state unusable; unshared, in memory only"})
			return p, 0, nil
		}
		s.shared = f
		s.back = sharedStore{f: f}
		s.tryLead()
	case s.cfg.StateDir != "":
		f, err := acquireSlot(ctx, s.cfg.StateDir, statefile.BaseName(s.cfg.ProductGUID, s.cfg.LicenseKey), s.opts.slots)
		if cerr := ctx.Err(); cerr != nil {
			return p, 0, localFault("open state", cerr)
		}
		if errors.Is(err, statefile.ErrLocked) {
			return p, 0, &stateError{kind: ErrStateLocked, msg: "all state slots are held by running clients", err: err}
		}
		if err != nil {
			// A read-only or broken directory must not lock the customer
			// out: run on memory, and say so.
			s.log.Warn("state directory unusable; state kept in memory only", "error", err)
			s.emit(Event{Type: EventStateDiscarded, Reason: err, Detail: "state directory unusable; in memory only"})
			return p, 0, nil
		}
		s.slot = f
		s.back = fileStore{f: f}
	default:
		return p, 0, nil // no persistence: the state lives in the client alone
	}

	loaded := false
	blob, err := s.back.Load(ctx)
	switch {
	case errors.Is(err, ErrNoState):
	case ctx.Err() != nil:
		// The caller gave up while the state was read: nothing is known
		// about it, so nothing is discarded. A later Start reads it again.
		return p, 0, localFault("read state", ctx.Err())
	case err != nil:
		s.discard(ctx, &stateError{kind: ErrStateCorrupt, msg: "unreadable", err: err})
	default:
		q, err := openStateWith(s.keys, blob)
		if err != nil {
			s.discard(ctx, err)
		} else {
			p, loaded = *q, true
			s.savedHW = q.HighWater
			if s.shared != nil {
				s.saved, s.savedValid = *q, true
			}
		}
	}
	if s.hasRecord() {
		s.loadRecord(&p, loaded)
	}
	s.loadRefusal(&p)
	if p.Sent.IsZero() {
		return p, 0, nil
	}
	used = p.Used
	if p.OfflineOpen && s.sole() {
		// The last run saved while offline and did not close: it may have
		// run up to one save interval past its last save.
		used += offlineSaveEvery
	}
	return p, used, nil
}

// sole reports whether no other client can be using this state now.
func (s *store) sole() bool { return s.shared == nil || s.shared.Leading() }

// discard moves a state that does not open aside.
func (s *store) discard(ctx context.Context, err error) {
	s.corrupt = err
	s.log.Warn("persisted state discarded", "error", err)
	if derr := s.back.Discard(ctx); derr != nil {
		s.log.Warn("could not move corrupt state aside", "error", derr)
	}
	s.emit(Event{Type: EventStateDiscarded, Reason: err, Detail: "corrupt state moved aside"})
}

// save is the one save path: it moves the high-water mark (unless the
// clock was found set back), bumps the generation, seals and writes the
// state, then writes its record and the licence's refusal. In shared mode
// only the renewer saves, and only a state that changed beyond a
// high-water mark and an offline budget that moved less than their save
// intervals. A failure is reported, never fatal.
func (s *store) save(ctx context.Context, p *persisted, rolledBack bool, wall time.Time) {
	if s.back == nil {
		return
	}
	if !rolledBack && wall.After(p.HighWater) {
		p.HighWater = wall
	}
	if s.shared != nil && (!s.shared.Leading() || s.savedValid && sameState(&s.saved, p)) {
		return
	}
	if s.recordErr != nil {
		// Saved without a usable record: offline time returns only after
		// the server has answered (vouched).
		p.Unanchored = true
	}
	p.Generation++
	blob, err := sealState(s.keys[0], p)
	if err == nil {
		err = s.back.Save(ctx, blob)
	}
	if err != nil {
		s.log.Warn("could not save licence state", "error", err)
		s.emit(Event{Type: EventStateDiscarded, Reason: err, Detail: "state not saved"})
		return
	}
	s.savedHW = p.HighWater
	if s.shared != nil {
		s.saved, s.savedValid = *p, true
	}
	s.writeRecord(p)
	s.writeRefusal(p)
}

// persistent reports whether the state is kept beyond the process (a state
// file, the shared file or the vendor's StateStore), not in memory only.
func (s *store) persistent() bool { return s.back != nil }

// anchorErr says why the state as loaded cannot be trusted against its
// anti-rollback record now: restored from a copy, or a record location
// that cannot be used. Unlike offlineErr it ignores a past Unanchored mark,
// which the server's next word (vouched) clears.
func (s *store) anchorErr() error {
	switch {
	case s.restored:
		return &stateError{kind: ErrStateRollback, msg: "restored from a copy; no offline time until the server answers"}
	case s.recordErr != nil:
		return &stateError{kind: ErrRollbackRecordUnusable,
			msg: "its location cannot be used (" + lastPart(s.recordErr) + "); no offline time from the saved state until the server answers",
			err: s.recordErr}
	}
	return nil
}

// vouched notes that the server has just answered with a session: a
// restored or unanchored state is current again.
func (s *store) vouched(p *persisted) {
	s.restored = false
	p.Unanchored = false
}

// offlineErr says why the persisted state grants no offline time apart
// from its deadlines and refusal: restored from a copy, or saved or loaded
// without a usable anti-rollback record. Nil when it may.
func (s *store) offlineErr(p *persisted) error {
	if err := s.anchorErr(); err != nil {
		return err
	}
	switch {
	case p.Unanchored:
		return &stateError{kind: ErrRollbackRecordUnusable,
			msg: "the state was saved while the record could not be used; no offline time until the server answers"}
	}
	return nil
}

// reload reads the shared file again when it changed (or always, with
// force), for a follower or a new renewer. It returns the state when it is
// newer than what this client has seen, nil otherwise.
func (s *store) reload(force bool, cur *persisted) *persisted {
	f := s.shared
	if !force && !f.Changed() {
		return nil
	}
	blob, err := f.Read()
	if err != nil {
		if !errors.Is(err, statefile.ErrNotExist) {
			s.log.Debug("shared state not readable; keeping the last one", "error", err)
		}
		return nil
	}
	p, err := openStateWith(s.keys, blob)
	if err != nil {
		s.log.Warn("shared state does not open; keeping the last one", "error", err)
		return nil
	}
	if s.sharedStateBehind(p, cur) {
		return nil
	}
	s.saved, s.savedValid = *p, true
	return p
}

// tryLead takes the shared file's renewer lock if it is free and reports
// whether this client is the renewer.
func (s *store) tryLead() bool {
	lead, err := s.shared.TryLead()
	if err != nil {
		s.log.Warn("shared session: renewer lock failed", "error", err)
	}
	return lead
}

// leading reports whether this client renews the shared file.
func (s *store) leading() bool { return s.shared != nil && s.shared.Leading() }

// resign gives up the record's lock, then the renewer lock.
func (s *store) resign() error {
	s.releaseSharedRecord()
	return s.shared.Resign()
}

// release drops every lock the store holds; Close calls it after the last
// save.
func (s *store) release() {
	if s.slot != nil {
		_ = s.slot.Release()
	}
	if s.shared != nil {
		s.releaseSharedRecord() // first, so that the next renewer can take it
		_ = s.shared.Release()
	}
	if s.rb != nil && s.rb.f != nil {
		_ = s.rb.f.Release()
	}
}

// fileStore keeps the state in a locked slot in Config.StateDir, named by
// statefile.BaseName(ProductGUID, LicenseKey). Every operation honours its
// context: it returns when ctx ends even if the disk does not answer. The
// operation itself then finishes in the background; the slot's own lock
// orders it before any later operation and before Release.
type fileStore struct{ f *statefile.File }

func (s fileStore) Load(ctx context.Context) ([]byte, error) {
	b, err := withContext(ctx, s.f.Read, nil)
	if errors.Is(err, statefile.ErrNotExist) {
		return nil, ErrNoState
	}
	return b, err
}

func (s fileStore) Save(ctx context.Context, data []byte) error {
	_, err := withContext(ctx, func() (struct{}, error) { return struct{}{}, s.f.Write(data) }, nil)
	return err
}

func (s fileStore) Discard(ctx context.Context) error {
	_, err := withContext(ctx, s.f.Quarantine, nil)
	return err
}

// sharedStore keeps the state in the shared file: everyone reads it, only
// the renewer writes it or moves it aside (store.save checks the role
// first); a follower leaves a corrupt file for the renewer to replace.
type sharedStore struct{ f *statefile.Shared }

func (s sharedStore) Load(context.Context) ([]byte, error) {
	b, err := s.f.Read()
	if errors.Is(err, statefile.ErrNotExist) {
		return nil, ErrNoState
	}
	return b, err
}

func (s sharedStore) Save(_ context.Context, data []byte) error { return s.f.Write(data) }

func (s sharedStore) Discard(context.Context) error {
	if !s.f.Leading() {
		return nil
	}
	_, err := s.f.Quarantine()
	return err
}

// withContext runs f and returns its result, or ctx's error as soon as ctx
// ends, leaving f to finish on its own and handing what it returns then to
// late, if not nil.
func withContext[T any](ctx context.Context, f func() (T, error), late func(T)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		if late != nil {
			go func() { late((<-ch).v) }()
		}
		return zero, ctx.Err()
	}
}

// acquireSlot is statefile.Acquire bounded by ctx. A slot acquired after
// ctx ended is released at once.
func acquireSlot(ctx context.Context, dir, base string, slots int) (*statefile.File, error) {
	return withContext(ctx, func() (*statefile.File, error) { return statefile.Acquire(dir, base, slots) },
		func(f *statefile.File) {
			if f != nil {
				_ = f.Release()
			}
		})
}

// sealKeys returns the keys the state may be sealed under on this machine,
// the preferred one first: state is sealed with the first and opened with
// any, so that state sealed in a run that lacked the machine identifier
// still opens once it is back. Each key takes the product, the licence and
// one machine identifier that needs no privilege and does not come and go
// (docs/lifecycle.md, "The state key"): machine_id, else product_uuid off
// Linux (root-only there), else cpu_id with volume_hash. This stops casual
// copying and editing, not a reverse engineer with a debugger.
func sealKeys(cfg *Config, fp *fingerprint.Fingerprint) [][]byte {
	var keys [][]byte
	add := func(parts ...string) {
		b := [][]byte{[]byte(cfg.ProductGUID), []byte(cfg.LicenseKey)}
		for _, p := range parts {
			b = append(b, []byte(p))
		}
		keys = append(keys, statefile.DeriveKey(b...))
	}
	if c, ok := fp.Component(fingerprint.NameMachineID); ok && c.Present() {
		add(fingerprint.NameMachineID, c.Value)
	}
	if runtime.GOOS != "linux" {
		if c, ok := fp.Component(fingerprint.NameProductUUID); ok && c.Present() {
			add(fingerprint.NameProductUUID, c.Value)
		}
	}
	add(fingerprint.NameCPUID, fp.CPUID.Value, fingerprint.NameVolumeHash, fp.VolumeHash.Value)
	return keys
}

// sealKey is the key state is sealed with on this machine.
func sealKey(cfg *Config, fp *fingerprint.Fingerprint) []byte { return sealKeys(cfg, fp)[0] }

// peekedState is one saved copy of the state as peek found it, read
// without taking it: where it is, whether a running client holds it, and
// what opened.
type peekedState struct {
	Slot int
	File string
	Held bool
	// Missing is set when nothing is saved there.
	Missing bool
	// ReadErr is why the copy could not be read, or is not a state file.
	ReadErr error
	// State is the opened state; OpenErr why it did not open.
	State   *persisted
	OpenErr error
}

// peek reads every saved copy of this licence's state (the vendor's store,
// or each slot of StateDir) and opens it with the machine's keys, changing
// nothing and taking no lock: the doctor's read. It is the only read of
// the state besides open.
func (s *store) peek(ctx context.Context, fp *fingerprint.Fingerprint) ([]peekedState, error) {
	keys := sealKeys(s.cfg, fp)
	if s.opts.store != nil {
		ps := peekedState{}
		blob, err := s.opts.store.Load(ctx)
		switch {
		case errors.Is(err, ErrNoState):
			ps.Missing = true
		case err != nil:
			ps.ReadErr = &stateError{kind: ErrStateCorrupt, msg: "unreadable", err: err}
		default:
			ps.State, ps.OpenErr = openStateWith(keys, blob)
		}
		return []peekedState{ps}, nil
	}
	if s.cfg.StateDir == "" {
		return nil, nil
	}
	infos, err := statefile.Probe(s.cfg.StateDir, statefile.BaseName(s.cfg.ProductGUID, s.cfg.LicenseKey), s.opts.slots)
	if err != nil {
		return nil, err
	}
	out := make([]peekedState, 0, len(infos))
	for _, in := range infos {
		ps := peekedState{Slot: in.Slot, File: in.Name, Held: in.Held}
		switch {
		case errors.Is(in.ReadErr, statefile.ErrNotExist):
			ps.Missing = true
		case in.ReadErr != nil && errors.Is(in.ReadErr, statefile.ErrCorrupt):
			ps.ReadErr = &stateError{kind: ErrStateCorrupt, msg: "not a state file", err: in.ReadErr}
		case in.ReadErr != nil:
			ps.ReadErr, ps.Missing = in.ReadErr, errors.Is(in.ReadErr, fs.ErrNotExist)
		default:
			ps.State, ps.OpenErr = openStateWith(keys, in.Data)
		}
		out = append(out, ps)
	}
	return out, nil
}

// openStateWith opens blob with the first of keys that fits. Every failure
// matches ErrStateCorrupt.
func openStateWith(keys [][]byte, blob []byte) (p *persisted, err error) {
	for _, k := range keys {
		if p, err = openState(k, blob); err == nil {
			return p, nil
		}
	}
	return nil, err
}

// recordLocation returns the record directory. ok is false when there is
// none at all: no WithRollbackRecordDir and no user configuration
// directory that exists or can be made (no home directory). A directory
// that exists but refuses is returned: using it then fails, and the store
// says so (recordErr). With create false it makes no directory
// (inspectState), and a missing configuration directory counts as a
// location not made yet.
func recordLocation(o *options, create bool) (dir string, ok bool) {
	if o.rollbackDir != "" {
		return o.rollbackDir, true
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", false
	}
	if _, err := os.Stat(base); create && errors.Is(err, os.ErrNotExist) {
		if os.MkdirAll(base, 0o700) != nil {
			return "", false
		}
	}
	return filepath.Join(base, "licensekit", "rollback"), true
}
