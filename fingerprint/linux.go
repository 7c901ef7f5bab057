package fingerprint

// The Linux sources. They read through a sysFS, so this file is built on every OS: tests run them on
// fixtures anywhere, and WithRoot can inspect a mounted Linux image.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/baseboard"
	"github.com/jaypipes/ghw/pkg/product"
)

// Linux source paths, relative to the root. Sources are reported with a leading "/".
const (
	srcCPUInfo    = "proc/cpuinfo"
	srcDMI        = "sys/class/dmi/id"
	srcDevTree    = "sys/firmware/devicetree/base"
	srcNet        = "sys/class/net"
	srcByUUID     = "dev/disk/by-uuid"
	srcHostname   = "proc/sys/kernel/hostname"
	srcCgroup     = "proc/self/cgroup"
	srcHypervisor = "sys/hypervisor/type"
)

func linuxTasks(fsys sysFS, o *options) []task {
	return []task{
		{name: "cpu", fills: []Component{{Name: NameCPUID, Source: "/" + srcCPUInfo, Strength: Weak}},
			run: func(context.Context) taskResult { return linuxCPU(fsys) }},
		{name: "dmi", fills: firmwareFills("/"+srcDMI+"/board_serial", "/"+srcDMI+"/product_uuid", "/"+srcDMI+"/board_serial"),
			run: func(context.Context) taskResult { return linuxDMI(fsys) }},
		{name: "machine_id", fills: []Component{{Name: NameMachineID, Source: "/etc/machine-id", Strength: Strong}},
			run: func(context.Context) taskResult { return one(linuxMachineID(fsys)) }},
		{name: "mac", fills: []Component{{Name: NameMACAddresses, Source: "/" + srcNet, Strength: Medium}},
			run: func(context.Context) taskResult { return one(linuxMACs(fsys)) }},
		{name: "volume", fills: []Component{{Name: NameVolumeHash, Source: "/" + srcByUUID, Strength: Medium}},
			run: func(context.Context) taskResult { return one(linuxVolume(fsys)) }},
		{name: "host", inline: true, run: func(context.Context) taskResult { return one(linuxHost(fsys)) }},
		{name: "container", run: func(context.Context) taskResult { return taskResult{env: linuxContainer(fsys)} }},
		ipTask(o),
	}
}

// linuxCPU reads cpu_id from the first processor block of /proc/cpuinfo, the kernel's decoding of
// CPUID (or MIDR on arm64): the CPUID instruction would need assembly, and docs/fingerprint.md says
// why not gopsutil.
func linuxCPU(fsys sysFS) taskResult {
	const head = 4096
	src := "/" + srcCPUInfo
	b, err := fsys.ReadHead(srcCPUInfo, head)
	if err != nil {
		return one(missing(NameCPUID, src, Weak, reasonFor(err), err))
	}
	info, hv, complete := parseProcCPUInfo(b)
	if !complete && len(b) == head {
		// A long flags line pushed the block past the first read; reading a little more is still
		// far cheaper than the whole file on a many-core machine.
		if b, err = fsys.ReadHead(srcCPUInfo, 64<<10); err == nil {
			info, hv, _ = parseProcCPUInfo(b)
		}
	}
	c := info.component(src, "no processor signature")
	return taskResult{comps: []Component{c}, env: envFacts{hypervisorFlag: hv}}
}

// ghwArgs returns the per-call ghw options: the root as chroot, no external tools, and a discarding
// logger. ghw.WithDisableWarnings is not used: it sets a process-wide log level that every other ghw
// call resets, so it neither reliably silences ghw nor leaves other ghw users alone.
func ghwArgs(root string) []any {
	return []any{ghw.WithChroot(root), ghw.WithDisableTools(), ghw.WithLogger(slog.New(slog.DiscardHandler))}
}

// linuxDMI reads board_serial and product_uuid and derives mb_serial from them. The two mode-0400
// files are read directly (ghw answers "permission denied" and "no such file" alike with "unknown");
// ghw serves the vendor strings and, on devicetree boards, the serial (docs/fingerprint.md).
func linuxDMI(fsys sysFS) taskResult {
	boardSrc, uuidSrc := "/"+srcDMI+"/board_serial", "/"+srcDMI+"/product_uuid"
	var board, prod Component
	var fw []string
	if _, err := fsys.Lstat(srcDMI); err == nil {
		b, err := fsys.ReadFile(srcDMI + "/board_serial")
		board = fromString(NameBoardSerial, boardSrc, Strong, string(b), err)
		u, err := fsys.ReadFile(srcDMI + "/product_uuid")
		prod = fromUUID(NameProductUUID, uuidSrc, Strong, string(u), err)
		fw = dmiStrings(fsys)
	} else if _, dtErr := fsys.Lstat(srcDevTree); dtErr == nil {
		prod = missing(NameProductUUID, uuidSrc, Strong, NotPresent, err)
		board, fw = devicetreeBoard(fsys)
	} else {
		prod = missing(NameProductUUID, uuidSrc, Strong, reasonFor(err), err)
		board = missing(NameBoardSerial, boardSrc, Strong, reasonFor(err), err)
	}
	return firmwareResult(board, prod, fw)
}

// ghwUsable reports whether ghw reads the Linux tree below a root. ghw's Linux sources are built
// only on Linux; elsewhere its product and baseboard describe the running machine (WMI, ioreg)
// whatever the root, so below a root on another OS the same files are read directly.
func ghwUsable() bool { return runtime.GOOS == "linux" }

// dmiStrings returns the system vendor and product name (world-readable DMI strings) via ghw.product.
func dmiStrings(fsys sysFS) []string {
	if !ghwUsable() {
		v, _ := fsys.ReadFile(srcDMI + "/sys_vendor")
		n, _ := fsys.ReadFile(srcDMI + "/product_name")
		return firmwareStrings(string(v), string(n))
	}
	p, err := product.New(ghwArgs(fsys.Root())...)
	if err != nil {
		return nil
	}
	return firmwareStrings(p.Vendor, p.Name)
}

// devicetreeBoard reads the board serial and the board's vendor and model from the devicetree via
// ghw.baseboard.
func devicetreeBoard(fsys sysFS) (Component, []string) {
	const src = "ghw.baseboard"
	if !ghwUsable() {
		s, err := fsys.ReadFile(srcDevTree + "/serial-number")
		m, _ := fsys.ReadFile(srcDevTree + "/model")
		return fromString(NameBoardSerial, "/"+srcDevTree+"/serial-number", Strong, string(s), err),
			firmwareStrings(string(m))
	}
	bb, err := baseboard.New(ghwArgs(fsys.Root())...)
	if err != nil {
		return missing(NameBoardSerial, src, Strong, NotPresent, err), nil
	}
	return fromString(NameBoardSerial, src, Strong, bb.SerialNumber, nil), firmwareStrings(bb.Vendor, bb.Product)
}

// firmwareStrings drops placeholders (including ghw's "unknown") from descriptive firmware strings.
func firmwareStrings(s ...string) []string {
	var out []string
	for _, v := range s {
		if v = cleanValue(v); !isPlaceholder(v) {
			out = append(out, v)
		}
	}
	return out
}

// linuxMachineID reads the systemd machine id, then the D-Bus one. Neither needs privilege. Note that
// images baked without clearing it share it between every machine started from them.
func linuxMachineID(fsys sysFS) Component {
	var first Component
	for i, p := range [...]string{"etc/machine-id", "var/lib/dbus/machine-id"} {
		b, err := fsys.ReadFile(p)
		c := fromString(NameMachineID, "/"+p, Strong, string(b), err)
		if c.Present() {
			c.Value = strings.ToLower(c.Value)
			return c
		}
		if i == 0 || (first.Missing.Reason == NotPresent && c.Missing.Reason != NotPresent) {
			first = c
		}
	}
	return first
}

// linuxMACs lists /sys/class/net, which the filter needs anyway and which reads below a root. A link
// without a "device" entry is not backed by a bus device (lo, bridges, veth, tun, ifb, ...) and is
// dropped before its address is read.
func linuxMACs(fsys sysFS) Component {
	src := "/" + srcNet
	names, err := fsys.ReadDirNames(srcNet)
	if err != nil {
		return missing(NameMACAddresses, src, Medium, reasonFor(err), err)
	}
	nics := make([]nic, 0, len(names))
	for _, n := range names {
		dir := srcNet + "/" + n
		_, devErr := fsys.Lstat(dir + "/device")
		x := nic{name: n, busKnown: true, onBus: devErr == nil, assign: addrUnknown}
		if x.onBus {
			addr, _ := fsys.ReadFile(dir + "/address") // unreadable: counted as not a 6-byte address
			x.mac = string(addr)
			if t, err := fsys.ReadFile(dir + "/addr_assign_type"); err == nil {
				x.assign = atoi(string(t))
			}
		}
		nics = append(nics, x)
	}
	return macComponent(src, selectMACs(nics))
}

func macComponent(src string, sel macSelection) Component {
	if len(sel.values) == 0 {
		return missing(NameMACAddresses, src, Medium, NotPresent, errors.New(sel.note()))
	}
	c := Component{Name: NameMACAddresses, Values: sel.values, Source: src, Strength: Medium}
	if sel.weak {
		c.Weak, c.Strength = true, Weak
	}
	return c
}

// linuxVolume identifies the root filesystem: by its UUID (stat("/") gives the device number,
// /sys/dev/block/<maj>:<min>/uevent its name, the /dev/disk/by-uuid link to that name the UUID), else
// by statfs("/") f_fsid, marked weak unless the filesystem derives it from its UUID. gopsutil's
// disk.Partitions would parse PID 1's mountinfo and gives no filesystem UUID.
func linuxVolume(fsys sysFS) Component {
	if uuid, ok := rootFSUUID(fsys); ok {
		return present(NameVolumeHash, volumeHash("uuid:"+strings.ToLower(uuid)), "/"+srcByUUID, Medium)
	}
	fsid, fstype, err := fsys.Statfs("")
	return fsidVolume(fsid, fstype, err, fmt.Errorf("%s filesystem reports a zero fsid", fstype), !uuidBackedFS(fstype))
}

func rootFSUUID(fsys sysFS) (string, bool) {
	maj, minor, err := fsys.DevOf("")
	if err != nil || maj == 0 {
		return "", false // no block device behind "/" (overlay, tmpfs, btrfs subvolume, ...)
	}
	ue, err := fsys.ReadFile(fmt.Sprintf("sys/dev/block/%d:%d/uevent", maj, minor))
	if err != nil {
		return "", false
	}
	var dev string
	for _, l := range strings.Split(string(ue), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			dev = path.Base(strings.TrimSpace(v))
		}
	}
	if dev == "" {
		return "", false
	}
	names, err := fsys.ReadDirNames(srcByUUID)
	if err != nil {
		return "", false
	}
	for _, n := range names {
		if t, err := fsys.Readlink(srcByUUID + "/" + n); err == nil && path.Base(t) == dev {
			return n, true
		}
	}
	return "", false
}

func linuxHost(fsys sysFS) Component {
	if fsys.Live() {
		return hostComponent(os.Hostname())
	}
	b, err := fsys.ReadFile(srcHostname)
	c := hostComponent(string(b), err)
	c.Source = "/" + srcHostname
	return c
}

// hostComponent builds host_name. The defaults a system has before it is named ("localhost",
// the kernel's "(none)") are placeholders.
func hostComponent(name string, err error) Component {
	const src = "os.Hostname"
	if err != nil {
		return missing(NameHostName, src, Weak, reasonFor(err), err)
	}
	name = cleanValue(name)
	switch strings.ToLower(name) {
	case "":
		return missing(NameHostName, src, Weak, NotPresent, errors.New("empty host name"))
	case "localhost", "localhost.localdomain", "(none)":
		return missing(NameHostName, src, Weak, Placeholder, errPlaceholder(name))
	}
	return present(NameHostName, name, src, Weak)
}

// linuxContainer looks for container markers and a hypervisor named by /sys/hypervisor (Xen).
func linuxContainer(fsys sysFS) envFacts {
	var e envFacts
	for _, m := range [...]string{".dockerenv", "run/.containerenv", "var/run/secrets/kubernetes.io"} {
		if _, err := fsys.Lstat(m); err == nil || errors.Is(err, fs.ErrPermission) {
			e.containerHints = append(e.containerHints, "/"+m)
		}
	}
	if b, err := fsys.ReadFile(srcCgroup); err == nil {
		e.containerHints = append(e.containerHints, cgroupHints(b)...)
	}
	if b, err := fsys.ReadFile(srcHypervisor); err == nil {
		if t := cleanValue(string(b)); t == "xen" {
			e.vendorHint = "Xen"
		} else if t != "" {
			e.vendorHint = t
		}
	}
	return e
}
