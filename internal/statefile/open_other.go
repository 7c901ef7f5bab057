//go:build !unix

package statefile

// openFlags are added to every open of a state or lock file. Windows has
// no FIFOs in the file system namespace and os.OpenFile does not block on
// the special files it has; symlinks are rejected by the Lstat before the
// open.
const openFlags = 0
