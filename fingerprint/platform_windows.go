package fingerprint

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// platformTasks returns the Windows sources. None uses WMI (100 ms to seconds per query), so neither
// ghw nor gopsutil's cpu.Info does.
func platformTasks(o *options) []task {
	return []task{
		{name: "cpu", fills: []Component{{Name: NameCPUID, Source: srcWinCPU, Strength: Weak}},
			run: windowsCPU},
		{name: "smbios", fills: firmwareFills(srcRSMB, srcRSMB, srcRSMB),
			run: windowsSMBIOS},
		{name: "machine_id", fills: []Component{{Name: NameMachineID, Source: srcMachineGUID, Strength: Strong}},
			run: windowsMachineID},
		{name: "mac", fills: []Component{{Name: NameMACAddresses, Source: "GetAdaptersAddresses", Strength: Medium}},
			run: windowsMACs},
		{name: "volume", fills: []Component{{Name: NameVolumeHash, Source: "GetVolumeInformationW", Strength: Medium}},
			run: windowsVolume},
		hostTask(),
		ipTask(o),
	}
}

const (
	srcWinCPU      = `HKLM\HARDWARE\DESCRIPTION\System\CentralProcessor\0`
	srcMachineGUID = `HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid`
)

// windowsCPU reads the processor identification the kernel stores in the registry at boot from
// CPUID (see parseWindowsCPU).
func windowsCPU(context.Context) taskResult {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `HARDWARE\DESCRIPTION\System\CentralProcessor\0`, registry.QUERY_VALUE)
	var ident string
	if err == nil {
		defer k.Close()
		ident, _, err = k.GetStringValue("Identifier")
	}
	if err != nil {
		return one(missing(NameCPUID, srcWinCPU, Weak, reasonFor(err), err))
	}
	vendor, _, _ := k.GetStringValue("VendorIdentifier")
	brand, _, _ := k.GetStringValue("ProcessorNameString")
	return one(parseWindowsCPU(ident, vendor, brand).component(srcWinCPU, "unrecognised processor identifier"))
}

// kernel32 is loaded lazily once; LazyDLL and LazyProc are safe for concurrent use and hold no
// configuration.
var procGetSystemFirmwareTable = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetSystemFirmwareTable")

// windowsSMBIOS reads the raw SMBIOS tables with GetSystemFirmwareTable('RSMB'), which needs neither
// administrator rights nor COM, and takes board_serial (type 2), product_uuid (type 1) and the
// firmware vendor strings from them.
func windowsSMBIOS(context.Context) taskResult {
	const rsmb = 'R'<<24 | 'S'<<16 | 'M'<<8 | 'B'
	fail := func(err error) taskResult {
		r := reasonFor(err)
		board := missing(NameBoardSerial, srcRSMB, Strong, r, err)
		prod := missing(NameProductUUID, srcRSMB, Strong, r, err)
		return firmwareResult(board, prod, nil)
	}
	if err := procGetSystemFirmwareTable.Find(); err != nil {
		return fail(fmt.Errorf("%w: %v", errors.ErrUnsupported, err))
	}
	n, _, err := procGetSystemFirmwareTable.Call(rsmb, 0, 0, 0)
	if n == 0 {
		return fail(err)
	}
	buf := make([]byte, n)
	m, _, err := procGetSystemFirmwareTable.Call(rsmb, 0, uintptr(unsafe.Pointer(&buf[0])), n)
	if m == 0 || m > n {
		return fail(err)
	}
	info, perr := parseRawSMBIOS(buf[:m])
	if perr != nil {
		return fail(perr)
	}
	return smbiosResult(info, srcRSMB)
}

// windowsMachineID reads MachineGuid from the 64-bit registry view (a 32-bit process would otherwise
// be redirected). It is created at installation and needs no privilege to read.
func windowsMachineID(context.Context) taskResult {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Cryptography`, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return one(missing(NameMachineID, srcMachineGUID, Strong, reasonFor(err), err))
	}
	defer k.Close()
	v, _, err := k.GetStringValue("MachineGuid")
	return one(fromUUID(NameMachineID, srcMachineGUID, Strong, v, err))
}

// windowsMACs lists adapters with GetAdaptersAddresses directly, rather than through gopsutil's
// net.Interfaces, because the filter needs the interface type and description that gopsutil drops.
func windowsMACs(context.Context) taskResult {
	const src = "GetAdaptersAddresses"
	const flags = windows.GAA_FLAG_SKIP_UNICAST | windows.GAA_FLAG_SKIP_ANYCAST |
		windows.GAA_FLAG_SKIP_MULTICAST | windows.GAA_FLAG_SKIP_DNS_SERVER
	size := uint32(16 << 10)
	var buf []byte
	for attempt := 0; ; attempt++ {
		buf = make([]byte, size)
		err := windows.GetAdaptersAddresses(windows.AF_UNSPEC, flags, 0, (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])), &size)
		if err == nil {
			break
		}
		if !errors.Is(err, windows.ERROR_BUFFER_OVERFLOW) || attempt >= 3 {
			return one(missing(NameMACAddresses, src, Medium, reasonFor(err), err))
		}
	}
	var nics []nic
	for a := (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])); a != nil; a = a.Next {
		l := min(int(a.PhysicalAddressLength), len(a.PhysicalAddress))
		friendly := windows.UTF16PtrToString(a.FriendlyName)
		desc := windows.UTF16PtrToString(a.Description)
		nics = append(nics, nic{
			name:    friendly,
			mac:     net.HardwareAddr(a.PhysicalAddress[:l]).String(),
			assign:  addrUnknown,
			virtual: windowsVirtualAdapter(a.IfType, friendly, desc),
		})
	}
	return one(macComponent(src, selectMACs(nics)))
}

// windowsVolume hashes the serial number of the volume holding the Windows directory (normally C:).
func windowsVolume(context.Context) taskResult {
	dir, err := windows.GetWindowsDirectory()
	if err != nil || len(dir) < 3 {
		err = cmp.Or(err, errors.New("no windows directory"))
		return one(missing(NameVolumeHash, "GetVolumeInformationW", Medium, reasonFor(err), err))
	}
	root := dir[:3] // "C:\"
	src := "GetVolumeInformationW(" + root + ")"
	p, err := windows.UTF16PtrFromString(root)
	if err != nil {
		return one(missing(NameVolumeHash, src, Medium, NotPresent, err))
	}
	var serial uint32
	if err := windows.GetVolumeInformation(p, nil, 0, &serial, nil, nil, nil, 0); err != nil {
		return one(missing(NameVolumeHash, src, Medium, reasonFor(err), err))
	}
	if serial == 0 {
		return one(missing(NameVolumeHash, src, Medium, Placeholder, errors.New("zero volume serial")))
	}
	return one(present(NameVolumeHash, volumeHash(fmt.Sprintf("serial:%08x", serial)), src, Medium))
}
