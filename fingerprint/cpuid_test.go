package fingerprint

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLeaf1EAX(t *testing.T) {
	t.Parallel()
	tests := []struct {
		family, model, stepping int
		want                    uint32
	}{
		{6, 158, 10, 0x000906EA}, // Core i7-8700 (WMI ProcessorId BFEBFBFF000906EA)
		{6, 85, 7, 0x00050657},   // Xeon Cascade Lake
		{25, 1, 1, 0x00A00F11},   // EPYC 7763 (Zen 3)
		{26, 2, 1, 0x00B00F21},   // EPYC Turin (Zen 5)
		{23, 49, 0, 0x00830F10},  // EPYC Rome (Zen 2)
		{15, 2, 9, 0x00000F29},   // Pentium 4
		{4, 8, 0, 0x00000480},    // 486 DX4: no extended fields
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, leaf1EAX(tt.family, tt.model, tt.stepping), "leaf1EAX(%d, %d, %d)", tt.family, tt.model, tt.stepping)
	}
}

// TestCPUIDSameOnEveryOS: one processor described by each OS yields one cpu_id.
func TestCPUIDSameOnEveryOS(t *testing.T) {
	t.Parallel()
	linux, hv, complete := parseProcCPUInfo([]byte("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 158\n" +
		"model name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\nstepping\t: 10\nflags\t\t: fpu vme\n\n"))
	assert.False(t, hv)
	assert.True(t, complete)
	windows := parseWindowsCPU("Intel64 Family 6 Model 158 Stepping 10", "GenuineIntel", "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz    ")
	darwin := cpuFromSysctl("amd64", "GenuineIntel", "6", "158", 10, "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz")
	want := "GenuineIntel/000906ea/Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz"
	for name, info := range map[string]cpuInfo{"linux": linux, "windows": windows, "darwin": darwin} {
		id, ok := info.id()
		assert.True(t, ok, name)
		assert.Equal(t, want, id, name)
	}
}

func TestParseProcCPUInfo(t *testing.T) {
	t.Parallel()
	full := "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7763 64-Core Processor\n" +
		"stepping\t: 1\nflags\t\t: fpu hypervisor lahf_lm\n\nprocessor\t: 1\nvendor_id\t: Other\n\n"
	info, hv, complete := parseProcCPUInfo([]byte(full))
	assert.True(t, hv, "hypervisor flag")
	assert.True(t, complete)
	id, _ := info.id()
	assert.Equal(t, "AuthenticAMD/00a00f11/AMD EPYC 7763 64-Core Processor", id, "first processor only")

	// Cut before the blank line: not complete, so the caller reads more.
	_, _, complete = parseProcCPUInfo([]byte(full[:60]))
	assert.False(t, complete)

	arm := "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
	info, hv, _ = parseProcCPUInfo([]byte(arm))
	assert.False(t, hv)
	id, ok := info.id()
	assert.True(t, ok)
	assert.Equal(t, "arm/41/d0c/3/1", id, "Neoverse N1")

	_, ok = (cpuInfo{}).id()
	assert.False(t, ok)
	info, _, _ = parseProcCPUInfo([]byte("garbage without colons\n\x00\xff"))
	_, ok = info.id()
	assert.False(t, ok)
}

func TestParseWindowsCPU(t *testing.T) {
	t.Parallel()
	id, ok := parseWindowsCPU("AMD64 Family 25 Model 33 Stepping 0", "AuthenticAMD", "AMD Ryzen 9 5950X 16-Core Processor").id()
	assert.True(t, ok)
	assert.Equal(t, "AuthenticAMD/00a20f10/AMD Ryzen 9 5950X 16-Core Processor", id)
	id, ok = parseWindowsCPU("ARMv8 (64-bit) Family 8 Model D4B Revision   0", "Qualcomm Technologies Inc", "Snapdragon (TM) 8cx Gen 3 @ 3.0 GHz").id()
	assert.True(t, ok)
	assert.True(t, strings.HasPrefix(id, "arm/Qualcomm Technologies Inc ARMv8 (64-bit) Family 8 Model D4B Revision 0"), id)
	_, ok = parseWindowsCPU("", "", "").id()
	assert.False(t, ok)
	_, ok = parseWindowsCPU("x86 Family six", "GenuineIntel", "").id()
	assert.False(t, ok)
}

func TestCPUFromSysctlAppleSilicon(t *testing.T) {
	t.Parallel()
	id, ok := cpuFromSysctl("arm64", "", "0", "0", 0, "Apple M2 Pro").id()
	assert.True(t, ok)
	assert.Equal(t, "arm/apple Apple M2 Pro", id)
}
