//go:build windows

package licensetest

import "golang.org/x/sys/windows"

// The errnos of a refused dial and of a reset connection, as the platform
// reports them, so that Transport's errors match real ones.
const (
	errnoRefused = windows.WSAECONNREFUSED
	errnoReset   = windows.WSAECONNRESET
)

// The system calls named in those errors.
const (
	syscallConnect = "connectex"
	syscallRead    = "wsarecv"
)
