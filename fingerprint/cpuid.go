package fingerprint

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// cpuInfo is what an OS reports about its first processor. id derives cpu_id from it, so the
// definition (the package doc's cpu_id) is the same on every OS. The x86 signature is rebuilt from
// the decoded family/model/stepping the OS reports, with the processor-type bits 12-13 as 0.
type cpuInfo struct {
	x86                             bool
	vendor                          string
	family, model, stepping         int
	brand                           string
	midr                            bool
	implementer, part, variant, rev int
	armText                         string
}

// leaf1EAX rebuilds CPUID leaf 1 EAX from the displayed family, model and stepping (Intel SDM
// "Processor Version Information", AMD APM "CPUID Fn0000_0001_EAX").
func leaf1EAX(family, model, stepping int) uint32 {
	baseFam, extFam := family, 0
	if family >= 0xF {
		baseFam, extFam = 0xF, family-0xF
	}
	baseModel, extModel := model, 0
	if baseFam == 0x6 || baseFam == 0xF {
		baseModel, extModel = model&0xF, model>>4
	}
	return uint32(extFam&0xFF)<<20 | uint32(extModel&0xF)<<16 | uint32(baseFam&0xF)<<8 |
		uint32(baseModel&0xF)<<4 | uint32(stepping&0xF)
}

// collapseSpace trims s and turns every run of white space into one space.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\x00", " ")), " ")
}

// id returns the cpu_id value, and false when the information is too thin to identify a model.
func (c cpuInfo) id() (string, bool) {
	switch {
	case c.x86:
		v := collapseSpace(c.vendor)
		if v == "" && c.family == 0 {
			return "", false
		}
		return fmt.Sprintf("%s/%08x/%s", v, leaf1EAX(c.family, c.model, c.stepping), collapseSpace(c.brand)), true
	case c.midr:
		return fmt.Sprintf("arm/%x/%x/%x/%x", c.implementer, c.part, c.variant, c.rev), true
	case collapseSpace(c.armText) != "":
		return "arm/" + collapseSpace(c.armText), true
	}
	return "", false
}

func (c cpuInfo) component(src, why string) Component {
	if id, ok := c.id(); ok {
		return present(NameCPUID, id, src, Weak)
	}
	return missing(NameCPUID, src, Weak, NotPresent, errors.New(why))
}

// parseProcCPUInfo parses the first processor block of Linux /proc/cpuinfo. It also reports whether
// the x86 "hypervisor" flag (CPUID leaf 1 ECX bit 31, set by every mainstream hypervisor) is present.
// complete is true when the block's terminating blank line was seen; a caller that read only the
// head of the file reads more when it is false.
func parseProcCPUInfo(b []byte) (info cpuInfo, hypervisor, complete bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), len(b)+1)
	ints := map[string]*int{"cpu family": &info.family, "model": &info.model, "stepping": &info.stepping,
		"CPU variant": &info.variant, "CPU part": &info.part, "CPU revision": &info.rev}
	seen := false
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if seen {
				complete = true
				break
			}
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		seen = true
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if p, ok := ints[key]; ok {
			*p = atoi(val)
		}
		switch key {
		case "vendor_id":
			info.x86, info.vendor = true, val
		case "model name":
			info.brand = val
		case "flags":
			hypervisor = hypervisor || slices.Contains(strings.Fields(val), "hypervisor")
		case "CPU implementer":
			info.midr, info.implementer = true, atoi(val)
		}
	}
	if info.x86 {
		info.midr = false
	}
	return info, hypervisor, complete
}

// atoi parses a decimal or 0x-prefixed hex integer, returning 0 when it does not parse.
func atoi(s string) int {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
	if err != nil {
		return 0
	}
	return int(n)
}

// parseWindowsCPU builds cpuInfo from the registry values of
// HKLM\HARDWARE\DESCRIPTION\System\CentralProcessor\0: Identifier ("Intel64 Family 6 Model 158
// Stepping 10", "AMD64 Family 25 Model 33 Stepping 0", "ARMv8 (64-bit) Family 8 Model D4B Revision
// 0"), VendorIdentifier and ProcessorNameString.
func parseWindowsCPU(identifier, vendor, brand string) cpuInfo {
	f := strings.Fields(identifier)
	num := func(key string, base int) (int, bool) {
		for i := 0; i+1 < len(f); i++ {
			if strings.EqualFold(f[i], key) {
				n, err := strconv.ParseInt(f[i+1], base, 64)
				return int(n), err == nil
			}
		}
		return 0, false
	}
	if len(f) > 0 && strings.HasPrefix(strings.ToUpper(f[0]), "ARM") {
		return cpuInfo{armText: collapseSpace(vendor + " " + identifier + " " + brand)}
	}
	fam, ok1 := num("Family", 10)
	mod, ok2 := num("Model", 10)
	step, _ := num("Stepping", 10)
	if !ok1 || !ok2 {
		return cpuInfo{}
	}
	return cpuInfo{x86: true, vendor: vendor, family: fam, model: mod, stepping: step, brand: brand}
}

// cpuFromSysctl builds cpuInfo from the macOS machdep.cpu sysctls as gopsutil's cpu.Info reports
// them. On Apple silicon there is no vendor, family or model, only the brand ("Apple M2").
func cpuFromSysctl(arch, vendor, family, model string, stepping int, brand string) cpuInfo {
	if arch == "arm64" {
		return cpuInfo{armText: collapseSpace("apple " + brand)}
	}
	return cpuInfo{x86: true, vendor: vendor, family: atoi(family), model: atoi(model), stepping: stepping, brand: brand}
}
