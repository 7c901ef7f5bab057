//go:build windows

package licensetest

import "golang.org/x/sys/windows"

// The errnos of a refused dial and of a reset connection, and the system
// calls named in those errors, as the platform reports them, so that
// Transport's errors match real ones.
const (
	errnoRefused   = windows.WSAECONNREFUSED
	errnoReset     = windows.WSAECONNRESET
	syscallConnect = "connectex"
	syscallRead    = "wsarecv"
)
