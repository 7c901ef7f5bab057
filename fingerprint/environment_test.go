package fingerprint

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHypervisorVendor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		strs     []string
		vendor   string
		definite bool
	}{
		{[]string{"QEMU", "Standard PC (Q35 + ICH9, 2009)"}, "QEMU", true},
		{[]string{"VMware, Inc.", "VMware Virtual Platform"}, "VMware", true},
		{[]string{"innotek GmbH", "VirtualBox"}, "VirtualBox", true},
		{[]string{"Microsoft Corporation", "Virtual Machine"}, "Hyper-V", true},
		{[]string{"Microsoft Corporation", "Surface Laptop 5"}, "", false},
		{[]string{"Xen", "HVM domU"}, "Xen", true},
		{[]string{"Amazon EC2", "m5.large"}, "Amazon EC2", false},
		{[]string{"Google", "Google Compute Engine"}, "Google Compute Engine", false},
		{[]string{"Dell Inc.", "Precision 3630 Tower"}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		v, d := hypervisorVendor(tt.strs...)
		assert.Equal(t, tt.vendor, v, "%v", tt.strs)
		assert.Equal(t, tt.definite, d, "%v", tt.strs)
	}
	// A cloud vendor is named only when the CPU also says it runs on a hypervisor (bare-metal
	// instances carry the same strings).
	assert.Equal(t, Environment{}, envFacts{firmware: []string{"Amazon EC2"}}.environment())
	assert.Equal(t, Environment{Hypervisor: true, HypervisorVendor: "Amazon EC2"},
		envFacts{hypervisorFlag: true, firmware: []string{"Amazon EC2"}}.environment())
	assert.Equal(t, Environment{Hypervisor: true, HypervisorVendor: "Xen"}, envFacts{vendorHint: "Xen"}.environment())
}

func TestCgroupHints(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"cgroup:docker"}, cgroupHints([]byte("12:memory:/docker/3f2a\n0::/docker/3f2a\n")))
	assert.Equal(t, []string{"cgroup:kubepods"}, cgroupHints([]byte("0::/kubepods.slice/kubepods-burstable.slice/x\n")))
	assert.Equal(t, []string{"cgroup:libpod"}, cgroupHints([]byte("0::/machine.slice/libpod-abc.scope\n")))
	assert.Empty(t, cgroupHints([]byte("0::/user.slice/user-1000.slice/session-2.scope\n")))
	assert.Empty(t, cgroupHints([]byte("garbage")))
}

// TestContainerMarkers checks the podman and Kubernetes markers and /sys/hypervisor on a real tree.
func TestContainerMarkers(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, p := range []string{"run/.containerenv", "var/run/secrets/kubernetes.io/serviceaccount/token", "sys/hypervisor/type"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "run/.containerenv"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "sys/hypervisor/type"), []byte("xen\n"), 0o644))
	e := linuxContainer(newOSFS(root)).environment()
	assert.Equal(t, Environment{Container: true, ContainerHints: []string{"/run/.containerenv", "/var/run/secrets/kubernetes.io"},
		Hypervisor: true, HypervisorVendor: "Xen"}, e)

	assert.Equal(t, Environment{}, linuxContainer(newOSFS(t.TempDir())).environment())
}
