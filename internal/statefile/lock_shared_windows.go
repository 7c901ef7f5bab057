//go:build windows

package statefile

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockShared takes a shared LockFileEx lock on the first byte of f without
// waiting. It returns errBusy while another handle holds an exclusive lock.
func lockShared(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		lerr = windows.LockFileEx(windows.Handle(fd), windows.LOCKFILE_FAIL_IMMEDIATELY,
			0, 1, 0, new(windows.Overlapped))
	}); err != nil {
		return err
	}
	if errors.Is(lerr, windows.ERROR_LOCK_VIOLATION) {
		return errBusy
	}
	if lerr != nil {
		return &os.SyscallError{Syscall: "LockFileEx", Err: lerr}
	}
	return nil
}
