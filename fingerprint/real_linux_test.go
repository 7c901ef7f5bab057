package fingerprint

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// Run: go test -run '^$' -bench . -benchmem ./fingerprint
// The figures that matter are BenchmarkCollectCold / BenchmarkDirectConcurrent (goal <= 1.2) and
// BenchmarkCollectCold / BenchmarkDirectSequential; BenchmarkCachedWarm should stay under 1 µs.

// BenchmarkCollectCold is a full, uncached Collect of this machine.
func BenchmarkCollectCold(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := Collect(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedWarm reads a fresh cached fingerprint with a TTL (one atomic load, one clock read).
func BenchmarkCachedWarm(b *testing.B) {
	ctx := context.Background()
	c := NewCached(time.Hour)
	if _, err := c.Collect(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Collect(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDirectSequential is the baseline without concurrency: it reads exactly the sources
// Collect reads on this machine (directSources), one after the other, with plain stdlib calls and
// no per-component bookkeeping.
func BenchmarkDirectSequential(b *testing.B) {
	for b.Loop() {
		if len(directSequential()) == 0 {
			b.Fatal("baseline read nothing")
		}
	}
}

func directSequential() []string {
	var sink []string
	for _, src := range directSources {
		sink = append(sink, src()...)
	}
	return sink
}

// BenchmarkDirectConcurrent is the baseline with Collect's concurrency: the same reads, host name
// on the calling goroutine and every other source on a goroutine of its own, joined by a channel,
// as Collect does. It sets no deadline: Collect's per-source deadline is part of what the ratio
// measures.
func BenchmarkDirectConcurrent(b *testing.B) {
	for b.Loop() {
		if len(directConcurrent()) == 0 {
			b.Fatal("baseline read nothing")
		}
	}
}

func directConcurrent() []string {
	ch := make(chan []string, len(directSources))
	for _, src := range directSources[1:] {
		go func() { ch <- src() }()
	}
	sink := directSources[0]()
	for range directSources[1:] {
		sink = append(sink, <-ch...)
	}
	return sink
}

// directSources are the reads of linuxTasks on the live system, one function per task, the inline
// host name first. Each returns the raw values it found. Keep them in step with linux.go: a source
// Collect adds or drops is added here or dropped too.
var directSources = []func() []string{
	directHost, directCPU, directDMI, directMachineID, directMACs, directVolume, directContainer, directIP,
}

// directHost is the host task: os.Hostname.
func directHost() []string {
	h, _ := os.Hostname()
	return []string{h}
}

// directCPU is the cpu task: the first processor block of /proc/cpuinfo (4 KiB, 64 KiB when a long
// flags line pushes the block past the first read).
func directCPU() []string {
	var out []string
	for _, size := range []int{4096, 64 << 10} {
		f, err := os.Open("/proc/cpuinfo")
		if err != nil {
			return nil
		}
		buf := make([]byte, size)
		n, _ := io.ReadFull(f, buf)
		f.Close()
		block, _, complete := bytes.Cut(buf[:n], []byte("\n\n"))
		out = out[:0]
		for _, l := range strings.Split(string(block), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				switch strings.TrimSpace(k) {
				case "vendor_id", "cpu family", "model", "stepping", "model name", "CPU implementer", "CPU part":
					out = append(out, strings.TrimSpace(v))
				case "flags":
					out = append(out, fmt.Sprint(strings.Contains(v, " hypervisor")))
				}
			}
		}
		if complete || n < size {
			break
		}
	}
	return out
}

// directDMI is the dmi task. With /sys/class/dmi/id: board_serial and product_uuid, then the files
// ghw's product.New reads (its DMI and devicetree checks, and seven product files). Without it but
// with a devicetree: the files ghw's baseboard.New reads there. Without either: two failed lstats.
func directDMI() []string {
	const dmi, dt = "/sys/class/dmi/id/", "/sys/firmware/devicetree/base/"
	var out []string
	read := func(p string) {
		v, _ := os.ReadFile(p)
		out = append(out, strings.TrimSpace(string(v)))
	}
	if _, err := os.Lstat(dmi); err == nil {
		read(dmi + "board_serial")
		read(dmi + "product_uuid")
		if _, err := os.Stat(dmi); err != nil {
			_, _ = os.Stat(dt)
		}
		for _, f := range []string{"product_family", "product_name", "sys_vendor", "product_serial", "product_uuid", "product_sku", "product_version"} {
			read(dmi + f)
		}
	} else if _, err := os.Lstat(dt); err == nil {
		_, _ = os.Stat(dmi)
		_, _ = os.Stat(dt)
		for _, f := range []string{"serial-number", "compatible", "model"} {
			read(dt + f)
		}
	}
	return append(out, "dmi")
}

// directMachineID is the machine_id task: /etc/machine-id, then the D-Bus copy when that is missing
// or empty.
func directMachineID() []string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if v, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(v)) > 0 {
			return []string{strings.ToLower(strings.TrimSpace(string(v)))}
		}
	}
	return nil
}

// directMACs is the mac task: /sys/class/net, and for each link backed by a bus device its address
// and addr_assign_type.
func directMACs() []string {
	d, err := os.Open("/sys/class/net")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	var out []string
	for _, n := range names {
		if _, err := os.Lstat("/sys/class/net/" + n + "/device"); err != nil {
			continue
		}
		a, _ := os.ReadFile("/sys/class/net/" + n + "/address")
		t, _ := os.ReadFile("/sys/class/net/" + n + "/addr_assign_type")
		out = append(out, string(a)+string(t))
	}
	return out
}

// directVolume is the volume task: the root device's UUID through /dev/disk/by-uuid, else
// statfs("/") f_fsid, hashed.
func directVolume() []string {
	var st unix.Stat_t
	if unix.Stat("/", &st) == nil && unix.Major(st.Dev) != 0 {
		ue, _ := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev)))
		_, dev, _ := strings.Cut(string(ue), "DEVNAME=")
		dev, _, _ = strings.Cut(dev, "\n")
		if d, err := os.Open("/dev/disk/by-uuid"); dev != "" && err == nil {
			names, _ := d.Readdirnames(-1)
			d.Close()
			for _, n := range names {
				if t, err := os.Readlink("/dev/disk/by-uuid/" + n); err == nil && filepath.Base(t) == dev {
					sum := sha256.Sum256([]byte("licensekit fp1 volume\x00uuid:" + n))
					return []string{fmt.Sprintf("%x", sum)}
				}
			}
		}
	}
	var fs unix.Statfs_t
	if unix.Statfs("/", &fs) != nil {
		return nil
	}
	sum := sha256.Sum256(fmt.Appendf([]byte("licensekit fp1 volume\x00fsid:"), "%08x%08x", uint32(fs.Fsid.Val[0]), uint32(fs.Fsid.Val[1])))
	return []string{fmt.Sprintf("%x", sum)}
}

// directContainer is the container task: three marker paths, /proc/self/cgroup and
// /sys/hypervisor/type.
func directContainer() []string {
	var out []string
	for _, p := range []string{"/.dockerenv", "/run/.containerenv", "/var/run/secrets/kubernetes.io"} {
		_, err := os.Lstat(p)
		out = append(out, fmt.Sprint(err == nil))
	}
	cg, _ := os.ReadFile("/proc/self/cgroup")
	out = append(out, fmt.Sprint(bytes.Contains(cg, []byte("docker"))))
	hv, _ := os.ReadFile("/sys/hypervisor/type")
	return append(out, string(hv))
}

// directIP is the ip task: the source address of a UDP "connect" to the IPv4 probe address, then
// the IPv6 one, then the interface addresses.
func directIP() []string {
	for _, t := range []string{probeV4, probeV6} {
		if c, err := net.Dial("udp", t); err == nil {
			a := c.LocalAddr().String()
			c.Close()
			return []string{a}
		}
	}
	addrs, _ := net.InterfaceAddrs()
	if len(addrs) > 0 {
		return []string{addrs[0].String()}
	}
	return nil
}

// BenchmarkCollectVsDirect alternates Collect, the concurrent baseline and the sequential baseline
// in every iteration and reports the ratios of the median times as "x_concurrent" and
// "x_sequential", so that a change of load on a shared machine hits all three alike.
func BenchmarkCollectVsDirect(b *testing.B) {
	ctx := context.Background()
	var ours, conc, seq []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := Collect(ctx); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		directConcurrent()
		t2 := time.Now()
		directSequential()
		t3 := time.Now()
		ours, conc, seq = append(ours, t1.Sub(t0)), append(conc, t2.Sub(t1)), append(seq, t3.Sub(t2))
	}
	m := float64(medianDuration(ours))
	b.ReportMetric(m/float64(medianDuration(conc)), "x_concurrent")
	b.ReportMetric(m/float64(medianDuration(seq)), "x_sequential")
}

func medianDuration(d []time.Duration) time.Duration {
	slices.Sort(d)
	return max(d[len(d)/2], 1)
}
