package fingerprint

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/product"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestCollectRealMachine runs Collect on this machine and checks what can be known independently.
func TestCollectRealMachine(t *testing.T) {
	t.Parallel()
	fp, err := Collect(t.Context())
	require.NoError(t, err)

	host, err := os.Hostname()
	require.NoError(t, err)
	if fp.HostName.Present() {
		assert.Equal(t, host, fp.HostName.Value)
	} else {
		assert.Equal(t, Placeholder, fp.HostName.Missing.Reason, "only a default name may be missing")
	}

	macs := fp.MACAddresses.Values
	assert.True(t, slices.IsSorted(macs), "sorted: %v", macs)
	assert.Equal(t, len(slices.Compact(slices.Clone(macs))), len(macs), "unique: %v", macs)
	for _, m := range macs {
		assert.Equal(t, strings.ToLower(m), m, "lowercase")
		hw, err := net.ParseMAC(m)
		require.NoError(t, err)
		assert.Len(t, hw, 6)
		assert.Equal(t, hw.String(), m, "colon hex")
	}
	ifs, err := net.Interfaces()
	require.NoError(t, err)
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "ifb") || strings.HasPrefix(i.Name, "veth") || strings.HasPrefix(i.Name, "docker") ||
			i.Flags&net.FlagLoopback != 0 {
			assert.NotContains(t, macs, i.HardwareAddr.String(), "MAC of virtual interface %s", i.Name)
		}
	}

	for _, c := range fp.Components() {
		if c.Missing != nil {
			assert.NotZero(t, c.Missing.Reason, "%s has a reason", c.Name)
			assert.Equal(t, c.Name, c.Missing.Component)
			assert.Empty(t, c.Value, c.Name)
		} else {
			assert.True(t, c.Present(), "%s has a value", c.Name)
		}
		assert.NotEmpty(t, c.Source, "%s has a source", c.Name)
	}
	if fp.IPAddress.Present() {
		ip := net.ParseIP(fp.IPAddress.Value)
		require.NotNil(t, ip)
		assert.False(t, ip.IsLoopback())
	}
}

// captureFD2 runs f with file descriptor 2 redirected to a pipe and returns what was written to it.
// ghw's logger holds the process's original stderr, so swapping os.Stderr would not see its output.
func captureFD2(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	saved, err := unix.Dup(2)
	require.NoError(t, err)
	require.NoError(t, unix.Dup3(int(w.Fd()), 2, 0))
	f()
	require.NoError(t, unix.Dup3(saved, 2, 0))
	require.NoError(t, unix.Close(saved))
	require.NoError(t, w.Close())
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	return string(out)
}

// TestCollectQuiet: collection writes nothing to stderr. ghw prints "WARNING" lines for every
// unreadable file unless silenced; the vm fixture makes ghw run even on a machine without DMI.
func TestCollectQuiet(t *testing.T) {
	// Control: unsilenced ghw on the same fixture does write to fd 2, so the capture works.
	control := captureFD2(t, func() { _, _ = product.New(ghw.WithChroot(fixtureDir + "/vm/root")) })
	require.Contains(t, control, "WARN")

	var errs []error
	out := captureFD2(t, func() {
		_, err := Collect(context.Background())
		errs = append(errs, err)
		_, err = Collect(context.Background(), WithRoot(fixtureDir+"/vm/root"), withoutNetwork())
		errs = append(errs, err)
		_, err = Collect(context.Background(), WithRoot(fixtureDir+"/arm-noserial/root"), withoutNetwork())
		errs = append(errs, err)
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Empty(t, out)
}

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
