package fingerprint

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
)

// Linux addr_assign_type values (include/uapi/linux/netdevice.h).
const (
	addrUnknown = -1 // the OS did not say
	addrPerm    = 0  // NET_ADDR_PERM: the burned-in address
	addrRandom  = 1  // NET_ADDR_RANDOM: generated at random (ifb, dummy, many virtual drivers)
	addrStolen  = 2  // NET_ADDR_STOLEN: copied from another device (bonding)
	addrSet     = 3  // NET_ADDR_SET: set by user space (cloned or randomised MACs)
)

// nic is one network link as an OS reports it, before filtering.
type nic struct {
	name string
	mac  string // as reported; any case, ':' or '-' separated
	// busKnown is true when the OS can tell whether a bus device backs the link (Linux sysfs
	// /sys/class/net/<if>/device); onBus is the answer.
	busKnown, onBus bool
	assign          int  // addr_assign_type, or addrUnknown
	virtual         bool // the OS describes the link as virtual or loopback
}

type macSelection struct {
	values  []string       // lowercase colon hex, sorted, unique
	weak    bool           // only locally administered addresses of real devices were left
	dropped map[string]int // why links were dropped, for the missing reason's detail
}

// selectMACs keeps the MAC addresses of physical NICs. It drops links the OS flags as virtual, links
// without a bus device (when the OS can tell: this check comes before the name list because it
// catches a veth renamed "enp...", which no name list can), links with a virtual interface name,
// invalid, zero and multicast addresses, and addresses the kernel reports as random or set by user
// space. Of the rest, universally administered addresses win; when only locally administered ones
// remain (clouds and microVMs assign those to real virtio devices) they are kept and weak is set.
func selectMACs(nics []nic) macSelection {
	sel := macSelection{dropped: map[string]int{}}
	var uaa, laa []string
	for _, n := range nics {
		hw, err := net.ParseMAC(strings.TrimSpace(n.mac))
		drop := ""
		switch {
		case n.virtual:
			drop = "virtual link"
		case n.busKnown && !n.onBus:
			drop = "no bus device"
		case virtualName(n.name):
			drop = "virtual interface name"
		case err != nil || len(hw) != 6:
			drop = "not a 6-byte address"
		case bytes.Count(hw, []byte{0}) == len(hw):
			drop = "zero address"
		case hw[0]&1 == 1:
			drop = "multicast address"
		case n.assign == addrRandom || n.assign == addrSet:
			drop = "random or user-set address"
		}
		if drop != "" {
			sel.dropped[drop]++
			continue
		}
		if hw[0]&2 == 2 {
			laa = append(laa, hw.String())
		} else {
			uaa = append(uaa, hw.String())
		}
	}
	switch {
	case len(uaa) > 0:
		sel.values = sortUnique(uaa)
		if len(laa) > 0 {
			sel.dropped["locally administered address"] += len(laa)
		}
	case len(laa) > 0:
		sel.values, sel.weak = sortUnique(laa), true
	}
	return sel
}

// note describes why no address was kept, e.g. "no physical NIC (2 no bus device, 1 zero address)".
func (s macSelection) note() string {
	if len(s.dropped) == 0 {
		return "no network interface"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.dropped)) {
		parts = append(parts, fmt.Sprintf("%d %s", s.dropped[k], k))
	}
	return "no physical NIC (" + strings.Join(parts, ", ") + ")"
}

func sortUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// virtualName reports whether an interface name belongs to a virtual or tunnel driver: container and
// VM bridges, veth pairs, VPNs, macOS helper links. It is a hint after the bus check, not a
// replacement for it.
func virtualName(name string) bool {
	l := strings.ToLower(name)
	if l == "lo" || strings.HasPrefix(l, "lo") && allDigits(l[2:]) {
		return true
	}
	for _, p := range [...]string{
		"docker", "veth", "br-", "virbr", "vnet", "vmnet", "vboxnet", "tun", "tap", "wg", "zt",
		"tailscale", "utun", "awdl", "llw", "bridge", "ifb", "cni", "flannel", "cali", "lxc", "lxd",
		"podman", "vethernet", "dummy", "kube", "cilium", "weave", "vxlan", "genev", "gre", "erspan",
		"ipip", "sit", "ip6tnl", "ip6gre", "nlmon", "macvtap", "macvlan", "ipvlan", "ovs", "anpi",
		"gif", "stf", "p2p", "virtual",
	} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	// macOS "ap1" (Wi-Fi access point helper).
	return strings.HasPrefix(l, "ap") && len(l) > 2 && allDigits(l[2:])
}

func allDigits(s string) bool { return strings.Trim(s, "0123456789") == "" }

// Windows interface types (ipifcons.h) that carry physical MAC addresses.
const (
	ifTypeEthernet  = 6
	ifTypeIEEE80211 = 71
)

// windowsVirtualAdapter reports whether a Windows adapter is virtual, judged by its interface type
// (only Ethernet and Wi-Fi are kept) and its friendly name and description. Guest NICs of hypervisors
// ("Microsoft Hyper-V Network Adapter", "vmxnet3 Ethernet Adapter") are kept: inside a VM they are
// the machine's NICs. Host-side switch ports ("Hyper-V Virtual Ethernet Adapter", "VMware Virtual
// Ethernet Adapter for VMnet8") are dropped.
func windowsVirtualAdapter(ifType uint32, friendly, desc string) bool {
	if ifType != ifTypeEthernet && ifType != ifTypeIEEE80211 {
		return true
	}
	s := strings.ToLower(friendly + " | " + desc)
	keys := []string{
		"virtual", "vethernet", "host-only", "virtualbox", "tap-", "tap adapter", "tunnel", "wireguard",
		"tailscale", "zerotier", "loopback", "bluetooth", "wi-fi direct", "vpn", "npcap", "wan miniport",
		"teredo", "isatap", "6to4", "pseudo", "docker", "kernel debug", "anyconnect", "fortinet",
		"openvpn", "ras async",
	}
	return slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(s, k) })
}
