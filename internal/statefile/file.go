package statefile

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxSize is the largest state, in bytes, that [File.Write] accepts and
// [File.Read] returns. A larger file on disk reads as [ErrCorrupt].
const MaxSize = 1 << 20

// keepCorrupt is how many quarantined copies Quarantine keeps per slot.
const keepCorrupt = 3

// errBusy is returned by lockFile when another open file holds the lock.
var errBusy = errors.New("lock held elsewhere")

// File is one locked slot of a state directory, from [Acquire]. Its methods
// are safe for concurrent use; they serialise on the File. The slot stays
// locked until [File.Release]. After Release, Read, Write and Quarantine
// return an error matching fs.ErrClosed.
type File struct {
	dir  string
	name string
	slot int

	mu       sync.Mutex
	lock     *os.File
	released bool

	// beforeRename, when set by a test, runs after the temporary file is
	// written and closed and before it is renamed over the slot.
	beforeRename func(tmp string) error
}

// Acquire creates dir (mode 0700, parents included) if needed and locks the
// first free slot among base, base-1, ..., base-(slots-1). slots <= 0 means
// 1. The lock is an exclusive OS lock on the companion file "<slot>.lock",
// held until [File.Release] or the end of the process; two Files never share
// a slot, whether they live in one process or two. It then removes temporary
// files that a crash between write and rename left in that slot.
//
// It returns an error matching [ErrLocked] when every slot is held. base
// must be a plain file name, not a path.
func Acquire(dir, base string, slots int) (*File, error) {
	if err := makeDir("acquire", dir, base); err != nil {
		return nil, err
	}
	for i := range max(slots, 1) {
		name := slotName(base, i)
		lf, err := openLock(filepath.Join(dir, name+".lock"), os.O_CREATE)
		if err == nil {
			if err = lockFile(lf); err == nil {
				f := &File{dir: dir, name: name, slot: i, lock: lf}
				f.removeTemps()
				return f, nil
			}
			_ = lf.Close()
		}
		if !errors.Is(err, errBusy) {
			return nil, wrap("acquire", name+".lock", err)
		}
	}
	return nil, &Error{Op: "acquire", Path: base, Err: ErrLocked}
}

func makeDir(op, dir, base string) error {
	if err := checkBase(base); err != nil {
		return &Error{Op: op, Err: err}
	}
	if dir == "" {
		return &Error{Op: op, Path: base, Err: errors.New("empty state directory")}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return wrap(op, base, err)
	}
	return nil
}

func checkBase(base string) error {
	switch {
	case base == "", base == ".", base == "..":
		return fmt.Errorf("invalid base name %q", base)
	case strings.ContainsAny(base, `/\`+"\x00"), strings.ContainsRune(base, os.PathSeparator):
		return fmt.Errorf("base name %q is not a plain file name", base)
	}
	return nil
}

func slotName(base string, i int) string {
	if i == 0 {
		return base
	}
	return base + "-" + strconv.Itoa(i)
}

// openLock opens a lock file, which must be a regular file, creating it when
// create is os.O_CREATE. In a directory the process cannot write, an
// existing lock file is opened read-only, which is enough to lock it, so
// that saved state can still be read.
func openLock(path string, create int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|create|openFlags, 0o600)
	if errors.Is(err, fs.ErrPermission) {
		f, err = os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	}
	if err != nil {
		return nil, err
	}
	if err := checkRegular(f, nil); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

var errNotRegular = errors.New("not a regular file")

// checkRegular checks that the open file f is a regular file and, when
// before is given (an Lstat of its path taken before the open), that it is
// that same file, so that nothing was swapped in between.
func checkRegular(f *os.File, before fs.FileInfo) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || (before != nil && !os.SameFile(before, st)) {
		return fmt.Errorf("%w (%s)", errNotRegular, st.Mode().Type())
	}
	return nil
}

func (f *File) tempPrefix() string { return f.name + ".tmp-" }

func (f *File) corruptPrefix() string { return f.name + ".corrupt-" }

// removeTemps removes the slot's leftover temporary files, best effort.
// Only the holder of the slot's lock writes them, so any found now are from
// a writer that died.
func (f *File) removeTemps() {
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), f.tempPrefix()) {
			_ = os.Remove(filepath.Join(f.dir, e.Name()))
		}
	}
}

// Slot returns the slot index: 0 for base, i for base-i.
func (f *File) Slot() int { return f.slot }

// Path returns the full path of the slot's state file.
func (f *File) Path() string { return filepath.Join(f.dir, f.name) }

// Read returns the slot's raw contents. It returns an error matching
// [ErrNotExist] when nothing has been written, and one matching [ErrCorrupt]
// when the file is larger than [MaxSize] or not a regular file (never
// followed or opened: see the package documentation).
func (f *File) Read() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released {
		return nil, wrap("read", f.name, fs.ErrClosed)
	}
	data, err := f.read()
	if err != nil {
		return nil, wrap("read", f.name, err)
	}
	return data, nil
}

func (f *File) read() ([]byte, error) {
	before, err := os.Lstat(f.Path())
	if err == nil && !before.Mode().IsRegular() {
		return nil, corrupt("not a regular file (%s)", before.Mode().Type())
	}
	var r *os.File
	if err == nil {
		r, err = os.OpenFile(f.Path(), os.O_RDONLY|openFlags, 0)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := checkRegular(r, before); err != nil {
		return nil, corrupt("%v", err)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, corrupt("over %d bytes", MaxSize)
	}
	return data, nil
}

// ReadUnlocked reads the file name in dir as [File.Read] does (the same
// checks, the same errors), without taking or needing its lock. It is for
// a file that one holder of the lock writes and others only read: a write
// renames a complete file into place, so a reader sees the old contents or
// the new ones, never a mix.
func ReadUnlocked(dir, name string) ([]byte, error) {
	if err := checkBase(name); err != nil {
		return nil, &Error{Op: "read", Err: err}
	}
	return (&File{dir: dir, name: name}).Read()
}

// Write replaces the slot's contents atomically: it writes data to a
// temporary file in the same directory (mode 0600), syncs and closes it,
// renames it over the slot and syncs the directory (not on Windows). Data
// over [MaxSize] bytes is refused.
//
// If any step before the rename fails, the previous contents stay intact
// and the temporary file is removed. If only the final directory sync fails,
// the new contents are in place but might not survive a power cut; the
// error says "sync directory".
func (f *File) Write(data []byte) error {
	if len(data) > MaxSize {
		return &Error{Op: "write", Path: f.name, Err: fmt.Errorf("state of %d bytes is over the %d-byte limit", len(data), MaxSize)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released {
		return &Error{Op: "write", Path: f.name, Err: fs.ErrClosed}
	}
	if err := f.replace(data); err != nil {
		return wrap("write", f.name, err)
	}
	if err := syncDir(f.dir); err != nil {
		return &Error{Op: "write", Path: f.name, Err: fmt.Errorf("sync directory: %w", unwrapPath(err))}
	}
	return nil
}

// replace does the part of Write that leaves the old contents intact on
// failure.
func (f *File) replace(data []byte) (err error) {
	tmp, err := os.CreateTemp(f.dir, f.tempPrefix()+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && f.beforeRename != nil {
		err = f.beforeRename(tmp.Name())
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.Path())
}

// Quarantine moves the slot's file aside to "<slot>.corrupt-<unix nanos>"
// in the same directory and returns that file name. It keeps the three
// newest quarantined files of the slot and deletes older ones, best effort.
// When there is no file to move it returns "" and nil. After Quarantine,
// Read reports [ErrNotExist].
func (f *File) Quarantine() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released {
		return "", &Error{Op: "quarantine", Path: f.name, Err: fs.ErrClosed}
	}
	if _, err := os.Lstat(f.Path()); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	// Pick a free name. Coarse clocks (Windows) can repeat a timestamp.
	ns := time.Now().UnixNano()
	var target string
	for tries := 0; ; tries++ {
		target = f.corruptPrefix() + strconv.FormatInt(ns, 10)
		_, err := os.Lstat(filepath.Join(f.dir, target))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", wrap("quarantine", f.name, err)
		}
		if tries == 1000 {
			return "", &Error{Op: "quarantine", Path: f.name, Err: errors.New("no free quarantine name")}
		}
		ns++
	}
	if err := os.Rename(f.Path(), filepath.Join(f.dir, target)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", wrap("quarantine", f.name, err)
	}
	f.pruneCorrupt()
	return target, nil
}

// pruneCorrupt deletes all but the newest keepCorrupt quarantined files of
// the slot, best effort.
func (f *File) pruneCorrupt() {
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return
	}
	type aside struct {
		name string
		ns   int64
	}
	var found []aside
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), f.corruptPrefix())
		if ns, err := strconv.ParseInt(suffix, 10, 64); ok && err == nil {
			found = append(found, aside{e.Name(), ns})
		}
	}
	if len(found) <= keepCorrupt {
		return
	}
	slices.SortFunc(found, func(a, b aside) int { return cmp.Compare(a.ns, b.ns) })
	// os.Remove, not RemoveAll: a quarantined copy is a file (Quarantine renames the slot's file),
	// and Remove deletes through DeleteFileW on Windows, which every Windows (and Wine) supports,
	// where RemoveAll needs FileDispositionInformationEx.
	for _, a := range found[:len(found)-keepCorrupt] {
		_ = os.Remove(filepath.Join(f.dir, a.name))
	}
}

// Release unlocks the slot and closes the lock file. It is idempotent: later
// calls return nil.
func (f *File) Release() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released {
		return nil
	}
	f.released = true
	err := unlockFile(f.lock)
	if cerr := f.lock.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrap("release", f.name+".lock", err)
	}
	return nil
}
