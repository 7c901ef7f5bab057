package fingerprint

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOSFS exercises the production filesystem on a temporary tree: symlinks, heads, and the root
// device and fsid of the live root.
func TestOSFS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "dev/disk/by-uuid"), 0o755))
	require.NoError(t, os.Symlink("../../sda2", filepath.Join(dir, "dev/disk/by-uuid/abcd")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("0123456789"), 0o644))
	o := newOSFS(dir)
	assert.False(t, o.Live())
	assert.True(t, newOSFS("").Live())

	target, err := o.Readlink("dev/disk/by-uuid/abcd")
	require.NoError(t, err)
	assert.Equal(t, "../../sda2", target)
	fi, err := o.Lstat("dev/disk/by-uuid/abcd")
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&fs.ModeSymlink, "Lstat does not follow")
	names, err := o.ReadDirNames("dev/disk/by-uuid")
	require.NoError(t, err)
	assert.Equal(t, []string{"abcd"}, names)

	head, err := o.ReadHead("f", 4)
	require.NoError(t, err)
	assert.Equal(t, "0123", string(head))
	head, err = o.ReadHead("f", 64)
	require.NoError(t, err)
	assert.Equal(t, "0123456789", string(head), "short file")
	_, err = o.ReadHead("missing", 4)
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// Below a root, the device and fsid would be those of the host filesystem holding the tree.
	_, _, err = o.DevOf("")
	assert.ErrorIs(t, err, errors.ErrUnsupported, "DevOf below a root")
	_, _, err = o.Statfs("")
	assert.ErrorIs(t, err, errors.ErrUnsupported, "Statfs below a root")

	live := newOSFS("")
	_, _, err = live.DevOf("")
	require.NoError(t, err)
	fsid, fstype, err := live.Statfs("")
	require.NoError(t, err)
	assert.Len(t, fsid, 16)
	assert.NotEmpty(t, fstype)
	_, _, err = live.Statfs("licensekit-no-such-directory")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	assert.Equal(t, "ext4", linuxFSType(0xEF53))
	assert.Equal(t, "overlay", linuxFSType(0x794C7630))
	assert.Equal(t, "0x1234", linuxFSType(0x1234))
}
