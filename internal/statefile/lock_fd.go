//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows

package statefile

import (
	"errors"
	"os"
)

// control runs call on f's descriptor. It returns errBusy when call fails
// with busy (nil: never), and wraps any other failure as a syscall error.
func control(f *os.File, syscall string, busy error, call func(fd uintptr) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = call(fd) }); err != nil {
		return err
	}
	if busy != nil && errors.Is(lerr, busy) {
		return errBusy
	}
	if lerr != nil {
		return &os.SyscallError{Syscall: syscall, Err: lerr}
	}
	return nil
}
