package fingerprint

import (
	"cmp"
	"slices"
	"strings"
)

// envFacts are the environment clues one source task found.
type envFacts struct {
	containerHints []string
	hypervisorFlag bool     // CPU hypervisor bit or an OS flag (macOS kern.hv_vmm_present)
	vendorHint     string   // a hypervisor named directly, e.g. by /sys/hypervisor/type
	firmware       []string // firmware vendor and product strings (DMI, SMBIOS, ioreg)
}

func (e *envFacts) merge(o envFacts) {
	e.containerHints = append(e.containerHints, o.containerHints...)
	e.hypervisorFlag = e.hypervisorFlag || o.hypervisorFlag
	e.vendorHint = cmp.Or(e.vendorHint, o.vendorHint)
	e.firmware = append(e.firmware, o.firmware...)
}

func (e envFacts) environment() Environment {
	var env Environment
	if len(e.containerHints) > 0 {
		env.Container = true
		env.ContainerHints = sortUnique(slices.Clone(e.containerHints))
	}
	vendor, definite := hypervisorVendor(e.firmware...)
	if e.vendorHint != "" {
		vendor, definite = e.vendorHint, true
	}
	env.Hypervisor = e.hypervisorFlag || definite
	if env.Hypervisor {
		env.HypervisorVendor = vendor
	}
	return env
}

// hypervisorVendor names the hypervisor that firmware vendor and product strings point to. definite
// is true for names that only virtual firmware uses ("QEMU", "VMware, Inc.", "innotek GmbH"); cloud
// vendors ("Amazon EC2") are returned with definite=false because their bare-metal instances carry
// the same strings.
func hypervisorVendor(strs ...string) (vendor string, definite bool) {
	all := strings.ToLower(strings.Join(strs, " | "))
	if all == "" {
		return "", false
	}
	for _, v := range [...]struct{ key, name string }{
		{"qemu", "QEMU"}, {"kvm", "KVM"}, {"vmware", "VMware"}, {"virtualbox", "VirtualBox"},
		{"innotek", "VirtualBox"}, {"xen", "Xen"}, {"parallels", "Parallels"}, {"bhyve", "bhyve"},
		{"cloud hypervisor", "Cloud Hypervisor"}, {"firecracker", "Firecracker"}, {"ovirt", "oVirt"},
		{"apple virtualization", "Apple Virtualization"}, {"hyper-v", "Hyper-V"},
	} {
		if strings.Contains(all, v.key) {
			return v.name, true
		}
	}
	if strings.Contains(all, "microsoft corporation") && strings.Contains(all, "virtual machine") {
		return "Hyper-V", true
	}
	for _, v := range [...]struct{ key, name string }{
		{"amazon ec2", "Amazon EC2"}, {"google compute engine", "Google Compute Engine"},
		{"openstack", "OpenStack"}, {"digitalocean", "DigitalOcean"}, {"alibaba cloud", "Alibaba Cloud"},
	} {
		if strings.Contains(all, v.key) {
			return v.name, false
		}
	}
	return "", false
}

// cgroupHints returns "cgroup:<marker>" for each container runtime named in /proc/self/cgroup paths.
func cgroupHints(cgroup []byte) []string {
	var hints []string
	for _, line := range strings.Split(string(cgroup), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		p := strings.ToLower(parts[2])
		for _, m := range [...]string{"docker", "kubepods", "containerd", "libpod", "podman", "lxc", "crio", "garden"} {
			if strings.Contains(p, m) {
				hints = append(hints, "cgroup:"+m)
			}
		}
	}
	return sortUnique(hints)
}
