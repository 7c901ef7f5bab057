//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package statefile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockShared takes a shared flock on f without waiting. It returns errBusy
// while another open file holds an exclusive lock.
func lockShared(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = unix.Flock(int(fd), unix.LOCK_SH|unix.LOCK_NB)
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
