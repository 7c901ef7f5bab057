package fingerprint

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/fingerprint")

const fixtureDir = "../testdata/fingerprint"

// fixtureMeta is testdata/fingerprint/<name>/fixture.json: what a directory tree in git cannot hold.
type fixtureMeta struct {
	Root    string            `json:"root"`     // the tree, relative to the fixture directory
	Links   map[string]string `json:"links"`    // symlinks: path -> target
	RootDev string            `json:"root_dev"` // "major:minor" of the root filesystem
	Statfs  *struct {
		FSID string `json:"fsid"`
		Type string `json:"type"`
	} `json:"statfs"`
	// Deny lists files that fail with EACCES, as the kernel's mode-0400 DMI files do for a normal user.
	Deny []string `json:"deny"`
}

// fixtureFS serves a fixture tree. Error paths are rewritten to the path seen from the root, so
// golden files do not depend on the checkout location.
type fixtureFS struct {
	base osFS
	meta fixtureMeta
	deny map[string]bool
}

func loadFixture(t testing.TB, name string) *fixtureFS {
	t.Helper()
	dir := filepath.Join(fixtureDir, name)
	b, err := os.ReadFile(filepath.Join(dir, "fixture.json"))
	require.NoError(t, err)
	var m fixtureMeta
	require.NoError(t, json.Unmarshal(b, &m))
	root, err := filepath.Abs(filepath.Join(dir, m.Root))
	require.NoError(t, err)
	f := &fixtureFS{base: newOSFS(root), meta: m, deny: map[string]bool{}}
	for _, d := range m.Deny {
		f.deny[d] = true
	}
	return f
}

func rel(err error, name string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: "/" + name, Err: pe.Err}
	}
	return err
}

func (f *fixtureFS) Root() string { return f.base.Root() }
func (f *fixtureFS) Live() bool   { return false }

func (f *fixtureFS) ReadFile(name string) ([]byte, error) {
	if f.deny[name] {
		return nil, &fs.PathError{Op: "open", Path: "/" + name, Err: fs.ErrPermission}
	}
	b, err := f.base.ReadFile(name)
	return b, rel(err, name)
}

func (f *fixtureFS) ReadHead(name string, max int) ([]byte, error) {
	if f.deny[name] {
		return nil, &fs.PathError{Op: "open", Path: "/" + name, Err: fs.ErrPermission}
	}
	b, err := f.base.ReadHead(name, max)
	return b, rel(err, name)
}

func (f *fixtureFS) ReadDirNames(name string) ([]string, error) {
	names, err := f.base.ReadDirNames(name)
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for l := range f.meta.Links {
		if path.Dir(l) == name && !seen[path.Base(l)] {
			names = append(names, path.Base(l))
			seen[path.Base(l)] = true
		}
	}
	if len(names) > 0 {
		return names, nil
	}
	return nil, rel(err, name)
}

func (f *fixtureFS) Readlink(name string) (string, error) {
	if t, ok := f.meta.Links[name]; ok {
		return t, nil
	}
	s, err := f.base.Readlink(name)
	return s, rel(err, name)
}

type linkInfo struct{ name string }

func (l linkInfo) Name() string       { return l.name }
func (l linkInfo) Size() int64        { return 0 }
func (l linkInfo) Mode() fs.FileMode  { return fs.ModeSymlink | 0o777 }
func (l linkInfo) ModTime() time.Time { return time.Time{} }
func (l linkInfo) IsDir() bool        { return false }
func (l linkInfo) Sys() any           { return nil }

func (f *fixtureFS) Lstat(name string) (fs.FileInfo, error) {
	if _, ok := f.meta.Links[name]; ok {
		return linkInfo{path.Base(name)}, nil
	}
	fi, err := f.base.Lstat(name)
	return fi, rel(err, name)
}

func (f *fixtureFS) DevOf(name string) (uint32, uint32, error) {
	maj, minor, ok := strings.Cut(f.meta.RootDev, ":")
	if !ok {
		return 0, 0, &fs.PathError{Op: "stat", Path: "/" + name, Err: errors.ErrUnsupported}
	}
	return uint32(atoi(maj)), uint32(atoi(minor)), nil
}

func (f *fixtureFS) Statfs(name string) (string, string, error) {
	if f.meta.Statfs == nil {
		return "", "", &fs.PathError{Op: "statfs", Path: "/" + name, Err: errors.ErrUnsupported}
	}
	return f.meta.Statfs.FSID, f.meta.Statfs.Type, nil
}

// collectFixture collects a fingerprint from a fixture without touching the network.
func collectFixture(t testing.TB, name string, opts ...Option) *Fingerprint {
	t.Helper()
	fp, err := Collect(context.Background(), append([]Option{withFS(loadFixture(t, name)), withoutNetwork()}, opts...)...)
	require.NoError(t, err)
	return fp
}

var fixtures = []string{"baremetal", "unprivileged", "vm", "container", "placeholder", "arm", "arm-noserial"}

// TestFixtureGolden compares the full fingerprint of every fixture with its want.json.
func TestFixtureGolden(t *testing.T) {
	t.Parallel()
	skipWithoutGHW(t)
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fp := collectFixture(t, name)
			got, err := json.MarshalIndent(fp, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := filepath.Join(fixtureDir, name, "want.json")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./fingerprint -run TestFixtureGolden -update")
			assert.JSONEq(t, string(want), string(got))
		})
	}
}

func reasonOf(c Component) Reason {
	if c.Missing == nil {
		return 0
	}
	return c.Missing.Reason
}

func extra(t *testing.T, fp *Fingerprint, name string) Component {
	t.Helper()
	c, ok := fp.Component(name)
	require.True(t, ok, "component %s", name)
	return c
}

func TestFixtureBareMetal(t *testing.T) {
	t.Parallel()
	fp := collectFixture(t, "baremetal")

	assert.Equal(t, "GenuineIntel/000906ea/Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", fp.CPUID.Value)
	assert.Equal(t, "/proc/cpuinfo", fp.CPUID.Source)

	board := extra(t, fp, NameBoardSerial)
	assert.Equal(t, "/7XYZ123/CN1296372A00AB/", board.Value, "trimmed, case kept")
	prod := extra(t, fp, NameProductUUID)
	assert.Equal(t, "4c4c4544-0058-5910-8033-b7c04f595a31", prod.Value, "lowercase UUID")
	assert.Equal(t, board.Value, fp.MBSerial.Value, "mb_serial is the board serial")
	assert.Equal(t, "/sys/class/dmi/id/board_serial", fp.MBSerial.Source)
	assert.Equal(t, "b08dfa6083e7567a1921a715000001fb", extra(t, fp, NameMachineID).Value)

	// Kept: eno1 (uppercase in sysfs), eno2 (same address, stolen by a bond: deduplicated), wlp2s0,
	// a USB NIC. Dropped: eno3 random, eno4 multicast, eno5 zero, tap0 by name although it has a
	// device, docker0/veth/lo/tailscale0 and enpfake0 (a renamed veth with a universal MAC) by the
	// bus check.
	assert.Equal(t, []string{"00:e0:4c:68:00:01", "8c:ec:4b:12:34:56", "a4:34:d9:00:11:22"}, fp.MACAddresses.Values)
	assert.False(t, fp.MACAddresses.Weak)
	assert.Equal(t, Medium, fp.MACAddresses.Strength)

	assert.Equal(t, volumeHash("uuid:0fd2a6c3-5b1e-4c7a-9d2f-3e4b5a6c7d8e"), fp.VolumeHash.Value)
	assert.Equal(t, "/dev/disk/by-uuid", fp.VolumeHash.Source)
	assert.Equal(t, "workstation-01", fp.HostName.Value)
	assert.Equal(t, Unsupported, reasonOf(fp.IPAddress), "network disabled in fixture runs")

	assert.Equal(t, Environment{}, fp.Environment)
	assert.Equal(t, 3, fp.StrongCount())
}

// TestFixtureUnprivileged: the same machine seen by a normal user. The root-only DMI files are
// reported as needing privilege and no other component changes its value.
func TestFixtureUnprivileged(t *testing.T) {
	t.Parallel()
	root := collectFixture(t, "baremetal")
	user := collectFixture(t, "unprivileged")

	for _, n := range []string{NameBoardSerial, NameProductUUID, NameMBSerial} {
		c := extra(t, user, n)
		require.NotNil(t, c.Missing, n)
		assert.Equal(t, NeedsPrivilege, c.Missing.Reason, n)
		assert.ErrorIs(t, c.Missing, fs.ErrPermission, n)
		assert.Empty(t, c.Value, n)
	}
	for _, rc := range root.Components() {
		switch rc.Name {
		case NameBoardSerial, NameProductUUID, NameMBSerial:
			continue
		}
		uc := extra(t, user, rc.Name)
		assert.Equal(t, rc, uc, "privilege changed %s", rc.Name)
	}
	assert.Equal(t, 1, user.StrongCount(), "only machine_id")
	score, changed := Match(root, user)
	assert.Equal(t, 1.0, score, "components missing on one side are not compared")
	assert.Empty(t, changed)
}

func TestFixtureVM(t *testing.T) {
	t.Parallel()
	fp := collectFixture(t, "vm")

	assert.Equal(t, "AuthenticAMD/00a00f11/AMD EPYC 7763 64-Core Processor", fp.CPUID.Value)
	board := extra(t, fp, NameBoardSerial)
	assert.Equal(t, Placeholder, reasonOf(board), "empty board serial")
	assert.Equal(t, "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", fp.MBSerial.Value, "falls back to the system UUID")
	assert.Equal(t, "/sys/class/dmi/id/product_uuid", fp.MBSerial.Source, "source of the fallback is recorded")
	assert.Equal(t, []string{"52:54:00:12:34:56"}, fp.MACAddresses.Values)
	// No /dev/disk/by-uuid: statfs fsid of an ext4 root (derived from its UUID, not weak).
	assert.Equal(t, volumeHash("fsid:dc9eda80d843da85"), fp.VolumeHash.Value)
	assert.Equal(t, "statfs(/).f_fsid (ext4)", fp.VolumeHash.Source)
	assert.False(t, fp.VolumeHash.Weak)
	assert.Equal(t, Environment{Hypervisor: true, HypervisorVendor: "QEMU"}, fp.Environment)
	assert.Equal(t, 2, fp.StrongCount(), "product_uuid and machine_id")
}

func TestFixtureContainer(t *testing.T) {
	t.Parallel()
	fp := collectFixture(t, "container")

	for _, n := range []string{NameBoardSerial, NameProductUUID, NameMBSerial, NameMachineID} {
		assert.Equal(t, NotPresent, reasonOf(extra(t, fp, n)), n)
	}
	assert.ErrorIs(t, extra(t, fp, NameMachineID).Missing, fs.ErrNotExist)
	// eth0 is a veth peer: no bus device, random address.
	assert.Equal(t, NotPresent, reasonOf(fp.MACAddresses))
	assert.Contains(t, fp.MACAddresses.Missing.Error(), "no bus device")
	assert.True(t, fp.VolumeHash.Present())
	assert.True(t, fp.VolumeHash.Weak, "overlay fsid is not backed by a filesystem UUID")
	assert.Equal(t, "3f2a9c1b7d4e", fp.HostName.Value)
	assert.Equal(t, Environment{Container: true, ContainerHints: []string{"/.dockerenv", "cgroup:docker"},
		Hypervisor: true}, fp.Environment)
	assert.Equal(t, 0, fp.StrongCount(), "a licence client falls back to its install id")
}

func TestFixturePlaceholder(t *testing.T) {
	t.Parallel()
	fp := collectFixture(t, "placeholder")

	assert.Equal(t, NotPresent, reasonOf(fp.CPUID), "no /proc/cpuinfo")
	for _, n := range []string{NameBoardSerial, NameProductUUID, NameMBSerial, NameMachineID, NameVolumeHash, NameHostName} {
		assert.Equal(t, Placeholder, reasonOf(extra(t, fp, n)), n)
	}
	assert.Contains(t, extra(t, fp, NameBoardSerial).Missing.Error(), "To be filled by O.E.M.")
	// Only locally administered addresses of real devices remain: kept, sorted, lowercase, weak.
	assert.Equal(t, []string{"02:fc:00:00:00:01", "06:aa:bb:cc:dd:ee"}, fp.MACAddresses.Values)
	assert.True(t, fp.MACAddresses.Weak)
	assert.Equal(t, Weak, fp.MACAddresses.Strength)
	assert.Equal(t, Environment{}, fp.Environment, "OEM placeholders name no hypervisor")
}

// skipWithoutGHW skips checks of ghw's behaviour (sources "ghw.*", its "unknown"), which below a root
// only applies on Linux.
func skipWithoutGHW(t *testing.T) {
	t.Helper()
	if !ghwUsable() {
		t.Skip("ghw reads a Linux root only on linux")
	}
}

func TestFixtureARM(t *testing.T) {
	t.Parallel()
	fp := collectFixture(t, "arm")

	assert.Equal(t, "arm/41/d08/0/3", fp.CPUID.Value)
	board := extra(t, fp, NameBoardSerial)
	assert.Equal(t, "10000000abcdef01", board.Value, "devicetree serial-number without its NUL")
	assert.Equal(t, board.Value, fp.MBSerial.Value)
	assert.Equal(t, NotPresent, reasonOf(extra(t, fp, NameProductUUID)))
	assert.Equal(t, volumeHash("uuid:3857a514-b0f4-49ce-8430-34762068bb6f"), fp.VolumeHash.Value)
	assert.Equal(t, []string{"dc:a6:32:01:02:03", "dc:a6:32:01:02:04"}, fp.MACAddresses.Values)

	// Without a serial-number property ghw says "unknown": a placeholder.
	skipWithoutGHW(t)
	fp = collectFixture(t, "arm-noserial")
	board = extra(t, fp, NameBoardSerial)
	assert.Equal(t, Placeholder, reasonOf(board))
	assert.Equal(t, NotPresent, reasonOf(extra(t, fp, NameMachineID)))
	assert.Equal(t, NotPresent, reasonOf(fp.MACAddresses), "no /sys/class/net")
	assert.Equal(t, Unsupported, reasonOf(fp.VolumeHash), "no statfs in this fixture")
}
