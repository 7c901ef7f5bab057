package fingerprint

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func fsTypeName(st *unix.Statfs_t) string { return linuxFSType(int64(st.Type)) }

// linuxFSType names a Linux statfs f_type magic number.
func linuxFSType(magic int64) string {
	switch uint32(magic) {
	case 0xEF53:
		return "ext4" // ext2, ext3 and ext4 share the magic
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0xF2F52010:
		return "f2fs"
	case 0x2FC12FC1:
		return "zfs"
	case 0x794C7630:
		return "overlay"
	case 0x01021994:
		return "tmpfs"
	case 0x6969:
		return "nfs"
	case 0x65735546:
		return "fuse"
	case 0x858458F6:
		return "ramfs"
	case 0x73717368:
		return "squashfs"
	}
	return fmt.Sprintf("%#x", uint32(magic))
}
