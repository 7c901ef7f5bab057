//go:build windows

package statefile

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockFile takes an exclusive LockFileEx lock on the first byte of f without
// waiting. Such locks belong to the file handle, so two opens of one file in
// one process exclude each other. It returns errBusy when the lock is held.
func lockFile(f *os.File) error { return lockFileEx(f, windows.LOCKFILE_EXCLUSIVE_LOCK) }

// lockShared takes a shared LockFileEx lock on the first byte of f without
// waiting. It returns errBusy while another handle holds an exclusive lock.
func lockShared(f *os.File) error { return lockFileEx(f, 0) }

// lockFileEx locks the first byte of f with flags, without waiting.
func lockFileEx(f *os.File, flags uint32) error {
	return control(f, "LockFileEx", windows.ERROR_LOCK_VIOLATION, func(fd uintptr) error {
		return windows.LockFileEx(windows.Handle(fd), flags|windows.LOCKFILE_FAIL_IMMEDIATELY,
			0, 1, 0, new(windows.Overlapped))
	})
}

// unlockFile releases the lock taken by lockFile. Closing f would release it
// too, eventually.
func unlockFile(f *os.File) error {
	return control(f, "UnlockFileEx", nil, func(fd uintptr) error {
		return windows.UnlockFileEx(windows.Handle(fd), 0, 1, 0, new(windows.Overlapped))
	})
}
