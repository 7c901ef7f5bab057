//go:build windows

package licensetest

import "golang.org/x/sys/windows"

// The errnos and system call names Windows reports (see errno_other.go).
const (
	errnoRefused   = windows.WSAECONNREFUSED
	errnoReset     = windows.WSAECONNRESET
	syscallConnect = "connectex"
	syscallRead    = "wsarecv"
)
