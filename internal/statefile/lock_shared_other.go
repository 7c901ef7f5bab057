//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows)

package statefile

import (
	"errors"
	"os"
	"runtime"
)

// lockShared fails: this platform has no file lock this package knows.
func lockShared(*os.File) error {
	return errors.New("file locking is not supported on " + runtime.GOOS)
}
