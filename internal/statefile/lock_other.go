//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows)

package statefile

import (
	"errors"
	"os"
	"runtime"
)

// lockFile fails: this platform has no file lock this package knows.
func lockFile(*os.File) error {
	return errors.New("file locking is not supported on " + runtime.GOOS)
}

func lockShared(f *os.File) error { return lockFile(f) }

// unlockFile is never reached, since lockFile always fails.
func unlockFile(*os.File) error { return nil }
