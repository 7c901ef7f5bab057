//go:build !windows

package licensetest

import "syscall"

// The errnos of a refused dial and of a reset connection, and the system
// calls named in those errors, as the platform reports them, so that
// Transport's errors match real ones.
const (
	errnoRefused   = syscall.ECONNREFUSED
	errnoReset     = syscall.ECONNRESET
	syscallConnect = "connect"
	syscallRead    = "read"
)
