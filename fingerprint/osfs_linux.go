package fingerprint

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func fsTypeName(st *unix.Statfs_t) string { return linuxFSType(int64(st.Type)) }

func linuxFSType(magic int64) string {
	names := map[uint32]string{
		0xEF53:     "ext4", // ext2, ext3 and ext4 share the magic
		0x58465342: "xfs",
		0x9123683E: "btrfs",
		0xF2F52010: "f2fs",
		0x2FC12FC1: "zfs",
		0x794C7630: "overlay",
		0x01021994: "tmpfs",
		0x6969:     "nfs",
		0x65735546: "fuse",
		0x858458F6: "ramfs",
		0x73717368: "squashfs",
	}
	if name, ok := names[uint32(magic)]; ok {
		return name
	}
	return fmt.Sprintf("%#x", uint32(magic))
}
