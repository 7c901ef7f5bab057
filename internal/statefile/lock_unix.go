//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package statefile

import (
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
	return control(f, "flock", unix.EWOULDBLOCK, func(fd uintptr) error {
		for {
			if err := unix.Flock(int(fd), how|unix.LOCK_NB); err != unix.EINTR {
				return err
			}
		}
	})
}

// unlockFile drops the flock on f. Closing f would drop it too.
func unlockFile(f *os.File) error {
	return control(f, "flock", nil, func(fd uintptr) error { return unix.Flock(int(fd), unix.LOCK_UN) })
}
