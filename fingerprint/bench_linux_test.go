package fingerprint

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Run: go test -run '^$' -bench . -benchmem ./fingerprint
// The ratio BenchmarkCollectCold / BenchmarkDirectBaseline is the figure that matters (goal <= 1.5);
// BenchmarkCachedWarm should stay under 1 µs.

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

// BenchmarkDirectBaseline reads the same sources as Collect on Linux, sequentially, with plain
// stdlib calls and no per-component bookkeeping: the floor Collect is measured against.
func BenchmarkDirectBaseline(b *testing.B) {
	for b.Loop() {
		directBaseline(b)
	}
}

func directBaseline(b *testing.B) {
	var sink []string
	keep := func(s string) { sink = append(sink, s) }

	// cpu_id and the hypervisor flag: the first processor block.
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		buf := make([]byte, 4096)
		n, _ := io.ReadFull(f, buf)
		f.Close()
		block, _, _ := bytes.Cut(buf[:n], []byte("\n\n"))
		for _, l := range strings.Split(string(block), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				switch strings.TrimSpace(k) {
				case "vendor_id", "cpu family", "model", "stepping", "model name":
					keep(strings.TrimSpace(v))
				case "flags":
					keep(fmt.Sprint(strings.Contains(v, " hypervisor")))
				}
			}
		}
	}
	// DMI.
	if _, err := os.Stat("/sys/class/dmi/id"); err == nil {
		for _, f := range []string{"board_serial", "product_uuid", "sys_vendor", "product_name"} {
			v, _ := os.ReadFile("/sys/class/dmi/id/" + f)
			keep(string(v))
		}
	}
	// machine_id.
	if v, err := os.ReadFile("/etc/machine-id"); err == nil {
		keep(strings.TrimSpace(string(v)))
	}
	// MAC addresses.
	if d, err := os.Open("/sys/class/net"); err == nil {
		names, _ := d.Readdirnames(-1)
		d.Close()
		for _, n := range names {
			if _, err := os.Lstat("/sys/class/net/" + n + "/device"); err != nil {
				continue
			}
			a, _ := os.ReadFile("/sys/class/net/" + n + "/address")
			t, _ := os.ReadFile("/sys/class/net/" + n + "/addr_assign_type")
			keep(string(a) + string(t))
		}
	}
	// volume_hash: by-uuid for the root device, else statfs.
	var st unix.Stat_t
	found := false
	if unix.Stat("/", &st) == nil && unix.Major(st.Dev) != 0 {
		ue, _ := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev)))
		_, dev, _ := strings.Cut(string(ue), "DEVNAME=")
		dev, _, _ = strings.Cut(dev, "\n")
		if d, err := os.Open("/dev/disk/by-uuid"); err == nil {
			names, _ := d.Readdirnames(-1)
			d.Close()
			for _, n := range names {
				if t, err := os.Readlink("/dev/disk/by-uuid/" + n); err == nil && filepath.Base(t) == dev {
					sum := sha256.Sum256([]byte("licensekit fp1 volume\x00uuid:" + n))
					keep(fmt.Sprintf("%x", sum))
					found = true
				}
			}
		}
	}
	if !found {
		var fs unix.Statfs_t
		if unix.Statfs("/", &fs) == nil {
			sum := sha256.Sum256(fmt.Appendf([]byte("licensekit fp1 volume\x00fsid:"), "%08x%08x", uint32(fs.Fsid.Val[0]), uint32(fs.Fsid.Val[1])))
			keep(fmt.Sprintf("%x", sum))
		}
	}
	// host_name.
	h, _ := os.Hostname()
	keep(h)
	// ip_address.
	if c, err := net.Dial("udp", probeV4); err == nil {
		keep(c.LocalAddr().String())
		c.Close()
	}
	// Environment.
	for _, p := range []string{"/.dockerenv", "/run/.containerenv", "/var/run/secrets/kubernetes.io"} {
		_, err := os.Lstat(p)
		keep(fmt.Sprint(err == nil))
	}
	cg, _ := os.ReadFile("/proc/self/cgroup")
	keep(fmt.Sprint(bytes.Contains(cg, []byte("docker"))))
	hv, _ := os.ReadFile("/sys/hypervisor/type")
	keep(string(hv))
	if len(sink) == 0 {
		b.Fatal("baseline read nothing")
	}
}
