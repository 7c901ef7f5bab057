//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package statefile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock on f without waiting. flock locks
// belong to the open file description, so two opens of one file in one
// process exclude each other. It returns errBusy when the lock is held.
func lockFile(f *os.File) error { return flockNB(f, unix.LOCK_EX) }

// lockShared takes a shared flock on f without waiting. It returns errBusy
// while another open file holds an exclusive lock.
func lockShared(f *os.File) error { return flockNB(f, unix.LOCK_SH) }

// flockNB takes a flock of kind how (LOCK_EX or LOCK_SH) without waiting.
func flockNB(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = unix.Flock(int(fd), how|unix.LOCK_NB)
			if lerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errors.Is(lerr, unix.EWOULDBLOCK) {
		return errBusy
	}
	if lerr != nil {
		return &os.SyscallError{Syscall: "flock", Err: lerr}
	}
	return nil
}

// unlockFile drops the flock on f. Closing f would drop it too.
func unlockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		lerr = unix.Flock(int(fd), unix.LOCK_UN)
	}); err != nil {
		return err
	}
	if lerr != nil {
		return &os.SyscallError{Syscall: "flock", Err: lerr}
	}
	return nil
}
