package fingerprint

import (
	"testing"

	psnet "github.com/shirou/gopsutil/v3/net"
	"github.com/stretchr/testify/assert"
)

func TestSelectMACs(t *testing.T) {
	t.Parallel()
	dev := func(name, mac string, assign int) nic {
		return nic{name: name, mac: mac, busKnown: true, onBus: true, assign: assign}
	}
	tests := []struct {
		name    string
		nics    []nic
		want    []string
		weak    bool
		dropped string
	}{
		{"physical, uppercase and dash form normalised",
			[]nic{dev("eth0", "3C-7C-3F-1A-2B-3C", addrPerm), dev("eth1", "00:1b:21:0a:0b:0c", addrPerm)},
			[]string{"00:1b:21:0a:0b:0c", "3c:7c:3f:1a:2b:3c"}, false, ""},
		{"duplicates removed", []nic{dev("eth0", "00:1b:21:0a:0b:0c", addrPerm), dev("bond-slave", "00:1B:21:0A:0B:0C", addrStolen)},
			[]string{"00:1b:21:0a:0b:0c"}, false, ""},
		{"zero, multicast and invalid dropped",
			[]nic{dev("a", "00:00:00:00:00:00", addrPerm), dev("b", "01:00:5e:00:00:01", addrPerm), dev("c", "zz", addrPerm),
				dev("ib0", "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:0b:0c", addrPerm)},
			nil, false, "1 multicast address, 2 not a 6-byte address, 1 zero address"},
		{"bus check beats a physical-looking name",
			[]nic{{name: "enpfake0", mac: "00:16:3e:aa:bb:cc", busKnown: true, onBus: false, assign: addrPerm}},
			nil, false, "1 no bus device"},
		{"name list after the bus check", []nic{dev("docker0", "00:16:3e:aa:bb:cc", addrPerm), dev("wg0", "00:16:3e:aa:bb:cd", addrPerm)},
			nil, false, "2 virtual interface name"},
		{"random and user-set addresses dropped",
			[]nic{dev("eth0", "00:16:3e:aa:bb:cc", addrRandom), dev("wlan0", "00:16:3e:aa:bb:cd", addrSet)},
			nil, false, "2 random or user-set address"},
		{"LAA dropped when a universal address exists",
			[]nic{dev("eth0", "02:fc:00:00:00:01", addrPerm), dev("eth1", "00:16:3e:aa:bb:cc", addrPerm)},
			[]string{"00:16:3e:aa:bb:cc"}, false, ""},
		{"LAA-only real devices kept as weak",
			[]nic{dev("eth0", "02:fc:00:00:00:01", addrPerm), {name: "ifb0", mac: "06:27:cc:9e:5a:ea", busKnown: true, assign: addrRandom}},
			[]string{"02:fc:00:00:00:01"}, true, ""},
		{"OS-flagged virtual", []nic{{name: "Ethernet 3", mac: "00:15:5d:01:02:03", virtual: true, assign: addrUnknown}},
			nil, false, "1 virtual link"},
		{"no bus information (macOS, Windows) trusts the other checks",
			[]nic{{name: "en0", mac: "a4:83:e7:01:02:03", assign: addrUnknown}}, []string{"a4:83:e7:01:02:03"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sel := selectMACs(tt.nics)
			assert.Equal(t, tt.want, sel.values)
			assert.Equal(t, tt.weak, sel.weak)
			if tt.dropped != "" {
				assert.Equal(t, "no physical NIC ("+tt.dropped+")", sel.note())
			}
		})
	}
	assert.Equal(t, "no network interface", selectMACs(nil).note())
	c := macComponent("/sys/class/net", selectMACs(nil))
	assert.Equal(t, NotPresent, reasonOf(c))
}

func TestVirtualName(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"lo", "lo0", "docker0", "veth9a8b", "br-1a2b", "virbr0", "vnet3", "vmnet8", "vboxnet0",
		"tun0", "tap1", "wg0", "zt3jnw", "tailscale0", "utun2", "awdl0", "llw0", "bridge100", "ifb0", "cni0",
		"flannel.1", "cali12ab", "lxcbr0", "podman0", "vEthernet (WSL)", "dummy0", "ap1", "anpi0"} {
		assert.True(t, virtualName(n), "virtualName(%q) = false; want true", n)
	}
	for _, n := range []string{"eth0", "eno1", "enp3s0", "wlan0", "wlp2s0", "en0", "ens3", "enx00e04c680001", "Ethernet", "Wi-Fi", "apple0", "local0"} {
		assert.False(t, virtualName(n), "virtualName(%q) = true; want false", n)
	}
}

func TestWindowsVirtualAdapter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ifType         uint32
		friendly, desc string
		virtual        bool
	}{
		{6, "Ethernet", "Intel(R) Ethernet Connection (7) I219-V", false},
		{71, "Wi-Fi", "Intel(R) Wi-Fi 6 AX201 160MHz", false},
		{6, "Ethernet", "Microsoft Hyper-V Network Adapter", false}, // a Hyper-V guest's own NIC
		{6, "Ethernet0", "vmxnet3 Ethernet Adapter", false},
		{6, "vEthernet (Default Switch)", "Hyper-V Virtual Ethernet Adapter", true},
		{6, "VMware Network Adapter VMnet8", "VMware Virtual Ethernet Adapter for VMnet8", true},
		{6, "Ethernet 2", "VirtualBox Host-Only Ethernet Adapter", true},
		{6, "Local Area Connection", "TAP-Windows Adapter V9", true},
		{53, "OpenVPN", "Some adapter", true},
		{6, "Bluetooth Network Connection", "Bluetooth Device (Personal Area Network)", true},
		{71, "Local Area Connection* 1", "Microsoft Wi-Fi Direct Virtual Adapter", true},
		{24, "Loopback Pseudo-Interface 1", "Software Loopback Interface 1", true},
		{6, "Tailscale", "Tailscale Tunnel", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.virtual, windowsVirtualAdapter(tt.ifType, tt.friendly, tt.desc), "%s / %s", tt.friendly, tt.desc)
	}
}

func TestDarwinNICs(t *testing.T) {
	t.Parallel()
	ifs := []psnet.InterfaceStat{
		{Name: "lo0", Flags: []string{"up", "loopback"}},
		{Name: "en0", HardwareAddr: "a4:83:e7:01:02:03", Flags: []string{"up", "broadcast", "multicast"}},
		{Name: "en1", HardwareAddr: "82:5d:b2:00:11:22", Flags: []string{"up", "broadcast"}}, // Thunderbolt bridge member, LAA
		{Name: "bridge0", HardwareAddr: "82:5d:b2:00:11:00", Flags: []string{"up", "broadcast"}},
		{Name: "awdl0", HardwareAddr: "3e:22:fb:00:00:01", Flags: []string{"up", "broadcast"}},
		{Name: "utun0", Flags: []string{"up", "pointtopoint"}},
		{Name: "en5", HardwareAddr: "ac:de:48:00:11:22", Flags: []string{"up", "pointtopoint"}},
	}
	sel := selectMACs(darwinNICs(ifs))
	assert.Equal(t, []string{"a4:83:e7:01:02:03"}, sel.values)
	assert.False(t, sel.weak)
}
