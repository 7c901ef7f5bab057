package statefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// SlotInfo is what [Probe] found for one slot of a state directory.
type SlotInfo struct {
	// Slot is the slot index: 0 for base, i for base-i.
	Slot int
	// Held is true when another open file held the slot's lock at the
	// moment of the probe: a running client owns the slot.
	Held bool
	// LockErr is set when the lock could not be tried for another reason
	// (permissions, a platform without file locks).
	LockErr error
	// Data is the slot's raw contents, nil when nothing is saved or it
	// could not be read.
	Data []byte
	// ReadErr is why Data could not be read; it matches [ErrNotExist] when
	// the slot has never been written.
	ReadErr error
}

// Probe looks at every slot of base in dir for a diagnosis, changing
// nothing. It creates no directory and no file. For each slot whose lock
// file exists it tries the lock once, without waiting, and releases it at
// once; a lock held by a running client is reported (SlotInfo.Held), never
// waited for or taken over. It reads each slot's state file whether or not
// the lock is held: writes are atomic renames, so a concurrent writer never
// shows a torn file.
//
// It returns an error matching fs.ErrNotExist when dir does not exist, and
// one matching [ErrNotDir] when dir is not a directory.
func Probe(dir, base string, slots int) ([]SlotInfo, error) {
	if err := checkBase(base); err != nil {
		return nil, &Error{Op: "probe", Err: err}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, wrap("probe", base, err)
	}
	if !st.IsDir() {
		return nil, &Error{Op: "probe", Path: base, Err: ErrNotDir}
	}
	out := make([]SlotInfo, max(slots, 1))
	for i := range out {
		name := slotName(base, i)
		out[i].Slot = i
		out[i].Held, out[i].LockErr = probeLock(filepath.Join(dir, name+".lock"))
		out[i].Data, out[i].ReadErr = (&File{dir: dir, name: name}).Read()
	}
	return out, nil
}

// ErrNotDir is matched by the error of [Probe] when the state directory's
// path names a file or something else that is not a directory.
var ErrNotDir = errors.New("statefile: state directory is not a directory")

// probeLock tries the lock at path once and releases it at once. A missing
// lock file means the slot was never used: not held.
func probeLock(path string) (held bool, err error) {
	lf, err := openLock(path, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err == nil {
		defer lf.Close()
		if err = lockFile(lf); err == nil {
			err = unlockFile(lf)
		}
	}
	switch {
	case errors.Is(err, errBusy):
		return true, nil
	case err != nil:
		return false, wrap("probe", filepath.Base(path), err)
	}
	return false, nil
}
