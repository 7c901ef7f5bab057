package fingerprint

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// sysFS is the filesystem the Linux sources are read through. Names are slash-separated and relative
// to the root ("sys/class/dmi/id/board_serial"). Production code uses osFS; tests wrap it to simulate
// an unprivileged user, device numbers and symlinks without needing root or special files.
type sysFS interface {
	// Root returns the directory names are relative to, for libraries that take a chroot (ghw).
	Root() string
	// Live reports whether Root is "/" (the running system rather than a fixture or image).
	Live() bool
	ReadFile(name string) ([]byte, error)
	// ReadHead reads at most max bytes from the start of name.
	ReadHead(name string, max int) ([]byte, error)
	// ReadDirNames returns the entry names of a directory, in no particular order.
	ReadDirNames(name string) ([]string, error)
	Readlink(name string) (string, error)
	// Lstat reports on name without following a final symlink.
	Lstat(name string) (fs.FileInfo, error)
	// DevOf returns the major and minor number of the device holding the filesystem of name.
	DevOf(name string) (major, minor uint32, err error)
	// Statfs returns the filesystem id of name as hex and the filesystem type's name.
	Statfs(name string) (fsid, fstype string, err error)
}

type osFS struct{ root string }

func newOSFS(root string) osFS { return osFS{root: filepath.Clean(cmp.Or(root, "/"))} }

func (o osFS) path(name string) string {
	if o.root == "/" {
		return "/" + name
	}
	return o.root + "/" + name
}

func (o osFS) Root() string { return o.root }
func (o osFS) Live() bool   { return o.root == "/" }

func (o osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(o.path(name)) }

func (o osFS) ReadHead(name string, max int) ([]byte, error) {
	f, err := os.Open(o.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, max)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

func (o osFS) ReadDirNames(name string) ([]string, error) {
	f, err := os.Open(o.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (o osFS) Readlink(name string) (string, error) { return os.Readlink(o.path(name)) }

func (o osFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(o.path(name)) }

// DevOf and Statfs ask the running kernel about the filesystem holding a path; below a root other
// than "/" they report errRootHostFact (see WithRoot).
func (o osFS) DevOf(name string) (uint32, uint32, error) {
	if !o.Live() {
		return 0, 0, &fs.PathError{Op: "stat", Path: o.path(name), Err: errRootHostFact}
	}
	return devOf(o.path(name))
}

func (o osFS) Statfs(name string) (string, string, error) {
	if !o.Live() {
		return "", "", &fs.PathError{Op: "statfs", Path: o.path(name), Err: errRootHostFact}
	}
	return statfsID(o.path(name))
}

// errRootHostFact is why DevOf and Statfs fail below a root.
var errRootHostFact = fmt.Errorf("%w below a root: the device and fsid would be the host's", errors.ErrUnsupported)

// fsidVolume builds volume_hash from the statfs("/") f_fsid of a filesystem of type fstype, or says
// why it is missing (zero is the cause for a zero fsid).
func fsidVolume(fsid, fstype string, err, zero error, weak bool) Component {
	const src = "statfs(/).f_fsid"
	if err != nil {
		return missing(NameVolumeHash, src, Medium, reasonFor(err), err)
	}
	if isPlaceholder(fsid) {
		return missing(NameVolumeHash, src, Medium, Placeholder, zero)
	}
	c := present(NameVolumeHash, volumeHash("fsid:"+fsid), src+" ("+fstype+")", Medium)
	c.Weak = weak
	return c
}

// uuidBackedFS reports whether a filesystem type derives statfs f_fsid from its on-disk UUID, which
// makes the fsid as stable as the filesystem itself.
func uuidBackedFS(fstype string) bool {
	switch fstype {
	case "ext4", "xfs", "btrfs", "f2fs", "apfs":
		return true
	}
	return false
}
