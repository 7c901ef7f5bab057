package statefile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrNotLeader is returned by [Shared.Write] and [Shared.Quarantine] when the
// caller does not hold the shared file's leader lock.
var ErrNotLeader = errors.New("statefile: not the leader of the shared state")

// SharedName returns the file name of the state that the processes of one
// licence of one product share (shared sessions): [BaseName] followed by
// "-shared", which no slot name can be.
func SharedName(product, licence string) string { return BaseName(product, licence) + "-shared" }

// Shared is one state file that several processes use together: any of
// them reads it, and one at a time, the leader, writes it. Leadership is an
// exclusive, non-blocking OS lock on "<name>.lock"; membership is a shared
// OS lock on "<name>.members" that every member holds until Release, so
// that a member can tell whether it is the last one ([Shared.Alone]). The
// OS drops both locks when a process dies, so a crashed leader is replaced
// at the next [Shared.TryLead] of another member. A Shared is safe for
// concurrent use.
type Shared struct {
	// view reads and writes the file; its released, set only under mu, makes
	// every method of both fail with fs.ErrClosed after Release.
	view File

	mu      sync.Mutex
	lead    *os.File
	member  *os.File
	leading bool
	seen    fs.FileInfo // the file as of the last Read
}

// joinPoll is how often JoinShared retries while the last member of the
// shared file holds the membership lock exclusively.
const joinPoll = 10 * time.Millisecond

// JoinShared creates dir (mode 0700) if needed, opens the lock files of the
// shared state name and takes a shared membership lock. While the last
// member is ending the shared session (it holds the membership lock
// exclusively, see [Shared.Alone]) it waits, until ctx ends. The new member
// is not the leader; call [Shared.TryLead].
func JoinShared(ctx context.Context, dir, name string) (*Shared, error) {
	if err := makeDir("join", dir, name); err != nil {
		return nil, err
	}
	lead, err := openLock(filepath.Join(dir, name+".lock"), os.O_CREATE)
	if err != nil {
		return nil, wrap("join", name+".lock", err)
	}
	member, err := openLock(filepath.Join(dir, name+".members"), os.O_CREATE)
	fail := func(err error) (*Shared, error) {
		_ = lead.Close()
		_ = member.Close() // nil when its open failed: Close then does nothing
		return nil, err
	}
	if err != nil {
		return fail(wrap("join", name+".members", err))
	}
	for err := lockShared(member); err != nil; err = lockShared(member) {
		if !errors.Is(err, errBusy) {
			return fail(wrap("join", name+".members", err))
		}
		select {
		case <-ctx.Done():
			return fail(&Error{Op: "join", Path: name, Err: ctx.Err()})
		case <-time.After(joinPoll):
		}
	}
	return &Shared{view: File{dir: dir, name: name}, lead: lead, member: member}, nil
}

// TryLead takes the leader lock unless another member holds it, without
// waiting. It reports whether this member leads now. A leader that took
// over removes temporary files a dead leader left.
func (s *Shared) TryLead() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view.released {
		return false, &Error{Op: "lead", Path: s.view.name, Err: fs.ErrClosed}
	}
	if s.leading {
		return true, nil
	}
	switch err := lockFile(s.lead); {
	case errors.Is(err, errBusy):
		return false, nil
	case err != nil:
		return false, wrap("lead", s.view.name+".lock", err)
	}
	s.leading = true
	s.view.removeTemps()
	return true, nil
}

// Resign gives up the leader lock and stays a member, so that another
// member's [Shared.TryLead] can take over. It does nothing when this member
// does not lead.
func (s *Shared) Resign() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading || s.view.released {
		return nil
	}
	s.leading = false
	if err := unlockFile(s.lead); err != nil {
		return wrap("resign", s.view.name+".lock", err)
	}
	return nil
}

// Leading reports whether this member holds the leader lock.
func (s *Shared) Leading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading
}

// Path returns the full path of the shared state file.
func (s *Shared) Path() string { return s.view.Path() }

// Read returns the shared file's contents, as [File.Read] does, and
// remembers the file's identity for [Shared.Changed].
func (s *Shared) Read() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Stat first: a write between the stat and the read only makes the next
	// Changed report a change that was already read.
	st, _ := os.Stat(s.view.Path())
	data, err := s.view.Read()
	if err == nil {
		s.seen = st
	}
	return data, err
}

// Changed reports, from one stat of the file, whether it was replaced or
// modified since the last successful Read (or whether it appeared or
// vanished). Every Write renames a new file into place, so a write shows as
// another file even when size and time match.
func (s *Shared) Changed() bool {
	s.mu.Lock()
	seen := s.seen
	s.mu.Unlock()
	st, err := os.Stat(s.view.Path())
	switch {
	case err != nil:
		return seen != nil
	case seen == nil:
		return true
	}
	return !os.SameFile(seen, st) || !st.ModTime().Equal(seen.ModTime()) || st.Size() != seen.Size()
}

// Write replaces the shared file atomically, as [File.Write] does. Only the
// leader writes: others get an error matching [ErrNotLeader].
func (s *Shared) Write(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.leaderLocked("write"); err != nil {
		return err
	}
	return s.view.Write(data)
}

// Quarantine moves the shared file aside, as [File.Quarantine] does. Only
// the leader does that.
func (s *Shared) Quarantine() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.leaderLocked("quarantine"); err != nil {
		return "", err
	}
	return s.view.Quarantine()
}

func (s *Shared) leaderLocked(op string) error {
	switch {
	case s.view.released:
		return &Error{Op: op, Path: s.view.name, Err: fs.ErrClosed}
	case !s.leading:
		return &Error{Op: op, Path: s.view.name, Err: ErrNotLeader}
	}
	return nil
}

// Alone gives up this member's shared membership lock and tries, without
// waiting, to take it exclusively. It reports true when no other member
// remains; the exclusive lock then keeps new members waiting in JoinShared
// until Release, so that the caller can end the shared session without a
// newcomer adopting it meanwhile. When it reports false, other members
// remain and this one is no longer counted as a member. Of several members
// calling Alone at once, at least one gets true only if all of them leave.
func (s *Shared) Alone() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view.released {
		return false, &Error{Op: "alone", Path: s.view.name, Err: fs.ErrClosed}
	}
	if err := unlockFile(s.member); err != nil {
		return false, wrap("alone", s.view.name+".members", err)
	}
	switch err := lockFile(s.member); {
	case errors.Is(err, errBusy):
		return false, nil
	case err != nil:
		return false, wrap("alone", s.view.name+".members", err)
	}
	return true, nil
}

// Release gives up leadership first, then membership, and closes the lock
// files. It is idempotent.
func (s *Shared) Release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view.released {
		return nil
	}
	s.view.released = true
	var errs []error
	if s.leading {
		s.leading = false
		if err := unlockFile(s.lead); err != nil {
			errs = append(errs, wrap("release", s.view.name+".lock", err))
		}
	}
	if err := s.lead.Close(); err != nil {
		errs = append(errs, wrap("release", s.view.name+".lock", err))
	}
	// Closing drops the membership lock, shared or exclusive.
	if err := s.member.Close(); err != nil {
		errs = append(errs, wrap("release", s.view.name+".members", err))
	}
	return errors.Join(errs...)
}
