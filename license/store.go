package license

import (
	"context"
	"errors"
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
// <h> is statefile.BaseName(product, licence); the record directory is
// recordLocation's. Every file is sealed with the first of the machine's
// keys (sealKeys), opens with any, and carries a format version ("v"). The
// record and the refusal live outside StateDir, so that a restore of
// StateDir leaves them ahead, and a refusal reaches every slot and process
// (record.go).
type store struct {
	cfg  *Config
	opts *options
	log  *slog.Logger
	emit func(Event)

	keys [][]byte // the machine's state keys, the sealing one first
	// back keeps the sealed state bytes: a slot, the shared file or the
	// vendor's store; nil when state lives in memory only.
	back       StateStore
	slot       *statefile.File   // normal mode with StateDir
	shared     *statefile.Shared // shared mode
	sharedName string

	rb        *rollbackGuard // nil when there is no record
	restored  bool           // the state is older than its record
	recordErr error          // the record's location exists but cannot be used
	corrupt   error          // the state did not open and was moved aside
	savedHW   time.Time      // the high-water mark last saved
	// saved is the state last read from or written to the shared file.
	saved      persisted
	savedValid bool
	// refusal is the licence's refusal as last read from or written to its
	// file in refusalDir ("" for none).
	refusal    *refusalRecord
	refusalDir string
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
		// A slot acquired after ctx ended is released at once.
		f, err := withContext(ctx, func() (*statefile.File, error) {
			return statefile.Acquire(s.cfg.StateDir, statefile.BaseName(s.cfg.ProductGUID, s.cfg.LicenseKey), s.opts.slots)
		}, func(f *statefile.File) {
			if f != nil {
				_ = f.Release()
			}
		})
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
	case errors.Is(err, ErrNoState) || errors.Is(err, statefile.ErrNotExist): // a vendor's store, or a state file
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
	if p.OfflineOpen && (s.shared == nil || s.shared.Leading()) {
		// The last run saved while offline and did not close (and no other
		// client uses the state now): it may have run one save interval on.
		used += offlineSaveEvery
	}
	return p, used, nil
}

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
// state, then its record and the licence's refusal. In shared mode only
// the renewer saves, and only a changed state (sameState). A failure is
// reported, never fatal.
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
		p.Unanchored = true // until the server answers (vouched)
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

func (s *store) persistent() bool { return s.back != nil }

// anchorErr says why the state as loaded cannot be trusted against its
// anti-rollback record now. Unlike offlineErr it ignores a past Unanchored
// mark.
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

// vouched notes that the server has just answered with a session.
func (s *store) vouched(p *persisted) {
	s.restored = false
	p.Unanchored = false
}

// offlineErr says why the persisted state grants no offline time, apart
// from its deadlines and refusal: anchorErr, or an Unanchored mark.
func (s *store) offlineErr(p *persisted) error {
	if err := s.anchorErr(); err != nil || !p.Unanchored {
		return err
	}
	return &stateError{kind: ErrRollbackRecordUnusable,
		msg: "the state was saved while the record could not be used; no offline time until the server answers"}
}

// reload reads the shared file again when it changed (or always, with
// force), and returns it unless it is behind what this client has seen: a
// lower generation than one already seen, with no newer send time and no
// newer refusal (a copy restored under running processes; a renewer that
// started its state afresh still reaches its followers). What it returns
// is noted as seen and current.
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
	if rb := s.rb; rb != nil {
		newerRefusal := p.Refusal != nil && (cur.Refusal == nil || p.Refusal.At.After(cur.Refusal.At))
		if p.Generation < rb.seen && !p.Sent.After(rb.sent) && !newerRefusal {
			s.log.Warn("shared state is older than one already read (restored from a copy); keeping the newer one",
				"state_generation", p.Generation, "seen_generation", rb.seen)
			return nil
		}
		rb.seen = max(rb.seen, p.Generation)
		if p.Sent.After(rb.sent) {
			rb.sent = p.Sent
		}
		s.restored = false
	}
	s.saved, s.savedValid = *p, true
	return p
}

func (s *store) tryLead() bool {
	lead, err := s.shared.TryLead()
	if err != nil {
		s.log.Warn("shared session: renewer lock failed", "error", err)
	}
	return lead
}

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

// fileStore keeps the state in a locked slot in Config.StateDir. Every
// operation returns when ctx ends even if the disk does not answer; it then
// finishes in the background, ordered by the slot's own lock.
type fileStore struct{ f *statefile.File }

func (s fileStore) Load(ctx context.Context) ([]byte, error) { return withContext(ctx, s.f.Read, nil) }

func (s fileStore) Save(ctx context.Context, data []byte) error {
	_, err := withContext(ctx, func() (struct{}, error) { return struct{}{}, s.f.Write(data) }, nil)
	return err
}

func (s fileStore) Discard(ctx context.Context) error {
	_, err := withContext(ctx, s.f.Quarantine, nil)
	return err
}

// sharedStore keeps the state in the shared file: everyone reads it, only
// the renewer writes it (store.save checks) or moves it aside.
type sharedStore struct{ f *statefile.Shared }

func (s sharedStore) Load(context.Context) ([]byte, error) { return s.f.Read() }

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

// sealKeys returns the keys the state may be sealed under on this machine,
// the sealing one first; docs/lifecycle.md ("The state key") says which
// identifiers and why.
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

// peekedState is one saved copy of the state as peek found it.
type peekedState struct {
	Slot    int
	Held    bool // a running client holds it
	Missing bool // nothing is saved there
	State   *persisted
	Err     error // why it could not be read or does not open
}

// peek reads and opens every saved copy of this licence's state (the
// vendor's store, or each slot), changing nothing and taking no lock: the
// doctor's read.
func (s *store) peek(ctx context.Context, fp *fingerprint.Fingerprint) ([]peekedState, error) {
	keys := sealKeys(s.cfg, fp)
	if s.opts.store != nil {
		var ps peekedState
		blob, err := s.opts.store.Load(ctx)
		switch {
		case errors.Is(err, ErrNoState):
			ps.Missing = true
		case err != nil:
			ps.Err = &stateError{kind: ErrStateCorrupt, msg: "unreadable", err: err}
		default:
			ps.State, ps.Err = openStateWith(keys, blob)
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
		ps := peekedState{Slot: in.Slot, Held: in.Held}
		switch {
		case errors.Is(in.ReadErr, statefile.ErrNotExist):
			ps.Missing = true
		case errors.Is(in.ReadErr, statefile.ErrCorrupt):
			ps.Err = &stateError{kind: ErrStateCorrupt, msg: "not a state file", err: in.ReadErr}
		case in.ReadErr != nil:
			ps.Err = in.ReadErr
		default:
			ps.State, ps.Err = openStateWith(keys, in.Data)
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

// recordLocation returns the record directory: WithRollbackRecordDir, else
// os.UserConfigDir()/licensekit/rollback. ok is false when there is none
// (no configuration directory that exists or, with create, can be made);
// a directory that exists but refuses is returned, and fails when used.
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
