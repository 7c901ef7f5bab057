//go:build linux || darwin

package fingerprint

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// devOf returns the device number of the filesystem holding path: one stat(2), much cheaper than
// parsing mountinfo.
func devOf(path string) (uint32, uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	dev := uint64(st.Dev) // Dev is int32 on darwin, uint64 on linux
	return unix.Major(dev), unix.Minor(dev), nil
}

// statfsID returns statfs(2) f_fsid as 16 hex digits and the filesystem type name.
func statfsID(path string) (string, string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", "", &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	id := fmt.Sprintf("%08x%08x", uint32(st.Fsid.Val[0]), uint32(st.Fsid.Val[1]))
	return id, fsTypeName(&st), nil
}
