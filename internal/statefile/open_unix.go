//go:build unix

package statefile

import "syscall"

// openFlags are added to every open of a state or lock file: never follow a
// symlink at the last path element, and never block in open (a FIFO or a
// device must not hang the caller; on a regular file O_NONBLOCK does
// nothing).
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
