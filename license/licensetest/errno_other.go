//go:build !windows

package licensetest

import "syscall"

// The errnos of a refused dial and of a reset connection, as the platform
// reports them, so that Transport's errors match real ones.
const (
	errnoRefused = syscall.ECONNREFUSED
	errnoReset   = syscall.ECONNRESET
)

// The system calls named in those errors.
const (
	syscallConnect = "connect"
	syscallRead    = "read"
)
