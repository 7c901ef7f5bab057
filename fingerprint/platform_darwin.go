package fingerprint

import (
	"cmp"
	"context"
	"errors"
	"os/exec"
	"runtime"
	"slices"

	pscpu "github.com/shirou/gopsutil/v3/cpu"
	psnet "github.com/shirou/gopsutil/v3/net"
	"golang.org/x/sys/unix"
)

func platformTasks(o *options) []task {
	return []task{
		{name: "cpu", fills: []Component{{Name: NameCPUID, Source: "gopsutil cpu.Info", Strength: Weak}},
			run: darwinCPU},
		{name: "ioreg", fills: firmwareFills(srcIoreg, srcIoreg, srcIoreg),
			run: darwinPlatform},
		{name: "machine_id", run: func(context.Context) taskResult {
			return one(unsupported(NameMachineID,
				"macOS has no machine id apart from the platform UUID (product_uuid)", Strong))
		}},
		{name: "mac", fills: []Component{{Name: NameMACAddresses, Source: "gopsutil net.Interfaces", Strength: Medium}},
			run: darwinMACs},
		{name: "volume", fills: []Component{{Name: NameVolumeHash, Source: "statfs(/).f_fsid", Strength: Medium}},
			run: darwinVolume},
		hostTask(),
		ipTask(o),
	}
}

const srcIoreg = "ioreg IOPlatformExpertDevice"

// darwinCPU uses gopsutil's cpu.Info, which on macOS reads machdep.cpu sysctls (no exec, no cgo).
// The hypervisor signal comes from the CPU's VMM feature flag and kern.hv_vmm_present.
func darwinCPU(ctx context.Context) taskResult {
	const src = "gopsutil cpu.Info"
	var res taskResult
	if v, err := unix.SysctlUint32("kern.hv_vmm_present"); err == nil && v == 1 {
		res.env.hypervisorFlag = true
	}
	infos, err := pscpu.InfoWithContext(ctx)
	if err != nil || len(infos) == 0 {
		err = cmp.Or(err, errors.New("no processor reported"))
		res.comps = []Component{missing(NameCPUID, src, Weak, NotPresent, err)}
		return res
	}
	i := infos[0]
	if slices.Contains(i.Flags, "vmm") {
		res.env.hypervisorFlag = true
	}
	info := cpuFromSysctl(runtime.GOARCH, i.VendorID, i.Family, i.Model, int(i.Stepping), i.ModelName)
	res.comps = []Component{info.component(src, "no processor signature")}
	return res
}

// darwinPlatform reads the platform serial number and UUID with one ioreg run (no privilege; without
// cgo there is no IOKit, and ghw's product source also runs system_profiler, taking seconds). When
// ioreg fails, the platform UUID still comes from the kern.uuid sysctl.
func darwinPlatform(ctx context.Context) taskResult {
	out, err := exec.CommandContext(ctx, "/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice").Output()
	if err != nil {
		r := NotPresent
		if ctx.Err() != nil {
			err, r = ctx.Err(), TimedOut
		}
		board := missing(NameBoardSerial, srcIoreg, Strong, r, err)
		u, uerr := unix.Sysctl("kern.uuid")
		prod := fromUUID(NameProductUUID, "sysctl kern.uuid", Strong, u, uerr)
		return firmwareResult(board, prod, nil)
	}
	return ioregResult(parseIoreg(out))
}

// darwinMACs lists interfaces with gopsutil's net.Interfaces (getifaddrs, no exec) and keeps en*
// links; macOS offers no bus check without IOKit.
func darwinMACs(ctx context.Context) taskResult {
	const src = "gopsutil net.Interfaces"
	ifs, err := psnet.InterfacesWithContext(ctx)
	if err != nil {
		return one(missing(NameMACAddresses, src, Medium, reasonFor(err), err))
	}
	return one(macComponent(src, selectMACs(darwinNICs(ifs))))
}

// darwinVolume identifies the root volume by statfs("/") f_fsid. On APFS the fsid is built from the
// volume's device number rather than its UUID, so the value is marked weak.
func darwinVolume(context.Context) taskResult {
	fsid, fstype, err := statfsID("/")
	return one(fsidVolume(fsid, fstype, err, errors.New("zero fsid"), true))
}
