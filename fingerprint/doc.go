// Package fingerprint collects the machine facts a licence server uses to recognise a machine: the
// six fields the v2 API sends with register_instance and begin_session (cpu_id, mb_serial,
// mac_addresses, volume_hash, host_name, ip_address), a few extra components, and a container and
// hypervisor signal. It works on Linux, macOS and Windows without cgo, and imports nothing else from
// this module, so a product can use it on its own.
//
// A product using package license does not call it: the client collects (and caches) the
// fingerprint itself, and license.WithFingerprintOptions passes options such as
// WithHashedIdentifiers through. Call it directly for a support tool (examples/fingerprint), to
// show a customer what identifies their machine, or in a server to compare two machines.
//
// # Overview
//
//	fp, err := fingerprint.Collect(ctx)            // partial results are normal
//	if err != nil { ... }                          // only when nothing usable was found
//	for _, c := range fp.Components() {
//		if c.Missing != nil { log.Print(c.Missing) } // typed reason, never a silent ""
//	}
//	cache := fingerprint.NewCached(10 * time.Minute) // warm reads are an atomic load
//	score, changed := fingerprint.Match(registered, fp) // same machine if score >= MatchThreshold
//
// Each Component carries its value, the Source it came from, its Strength and, when missing, a
// *MissingError with a Reason: NeedsPrivilege, NotPresent, Placeholder, Unsupported or TimedOut.
// Collect returns the Fingerprint with an error matching ErrNoUsableComponent only when no component
// other than ip_address has a value. The package's Examples run against machines captured in
// testdata/fingerprint (WithRoot), so their output is exact. docs/fingerprint.md lists where each
// component comes from on Linux (files below the root WithRoot names, "/" by default), Windows (no
// WMI) and macOS (no cgo), and which library calls are avoided and why.
//
// # Fields
//
//   - cpu_id (weak): a processor model signature with one definition on every OS. On x86 it is
//     vendor "/" CPUID leaf-1 EAX as 8 hex digits "/" brand string, e.g.
//     "GenuineIntel/000906ea/Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz" (EAX is the low half of
//     Windows' WMI ProcessorId). The APIC id and feature bits are left out. No modern x86 CPU has a
//     serial number, so every machine with the same CPU model shares this value. On arm64 Linux it
//     is "arm/" implementer "/" part "/" variant "/" revision (MIDR fields, hex); on arm64 Windows
//     and macOS it is "arm/" plus the OS's description, so it differs between OSes there.
//   - mb_serial (strong): the baseboard serial, falling back to the system (product) UUID when the
//     board serial is missing or a placeholder. Source records which one was used.
//   - mac_addresses (medium): MAC addresses of physical NICs, lowercase colon hex, sorted, without
//     duplicates. Dropped: loopback, zero, multicast and invalid addresses, addresses the kernel
//     marks random or user-set (addr_assign_type 1 and 3), links without a bus device (Linux
//     /sys/class/net/<if>/device; checked before the name list, so a veth renamed "enp..." is still
//     dropped), and virtual interface names (docker, veth, br-, virbr, vnet, vmnet, vboxnet, tun,
//     tap, wg, zt, tailscale, utun, awdl, ifb, cni, flannel, cali, lxc, podman, vEthernet, ...).
//     Locally administered addresses are dropped when a universal one exists; when only locally
//     administered addresses of real devices remain (clouds, microVMs) they are kept and the
//     component is marked Weak. USB NICs count as physical.
//   - volume_hash (medium): hex SHA-256 of "licensekit fp1 volume", a 0x00 byte and the system
//     volume's identifier: "uuid:<filesystem UUID>" for the root filesystem on Linux (found through
//     /dev/disk/by-uuid), "fsid:<statfs f_fsid>" where there is no by-uuid link (containers, minimal
//     VMs; Weak unless the filesystem derives its fsid from its UUID, as ext4, xfs and btrfs do) and
//     on macOS (Weak: APFS derives it from the device number), "serial:<8 hex digits>" for the
//     volume holding the Windows directory. The label keeps the hash from being confused with other
//     SHA-256 values.
//   - host_name (weak): os.Hostname. "localhost" and the kernel's "(none)" are placeholders.
//   - ip_address (weak, weight 0): the local address the OS would use to reach the licence server
//     (WithServerAddress), found with a UDP connect, which selects a route without sending a packet.
//     Without a route, the first non-loopback unicast address (IPv4 and global first).
//   - Extra, strong: product_uuid (SMBIOS system UUID), board_serial (SMBIOS baseboard serial or an
//     ARM devicetree serial-number) and machine_id (systemd /etc/machine-id or D-Bus; Windows
//     MachineGuid; Unsupported on macOS, where the platform UUID is product_uuid).
//
// Values are trimmed of spaces and NULs; UUIDs are lowercase 8-4-4-4-12. Vendor placeholders
// ("To be filled by O.E.M.", "Default string", "System Serial Number", "0123456789", repeated
// characters, all-zero or all-F UUIDs, 03000200-0400-0500-0006-000700080009, ghw's "unknown",
// systemd's "uninitialized") are reported as Placeholder, never sent as values.
//
// # Privileges
//
// Nothing needs privilege except, on Linux, board_serial and product_uuid: the kernel makes those
// DMI files readable by root only. An unprivileged process reports them (and mb_serial) as
// NeedsPrivilege. Privilege never changes a component's value: every source is its own component,
// so a fingerprint taken as root and one taken as a user agree on every component both have, and
// Match compares only those.
//
// # Privacy
//
// By default values are raw, because the v2 server may expect raw values; the request envelope keeps
// them confidential in transit. WithHashedIdentifiers(productKey) replaces each value with hex
// HMAC-SHA256(productKey, "fp1" 0x00 name 0x00 value), each MAC address on its own. Values stay
// stable for matching, raw serials never leave the machine, and two products with different keys
// cannot correlate a user. The trade-off: the server and its support staff can no longer read serial
// numbers, host names or addresses, and fingerprints of the two modes never match, so choose a mode
// before registering. The hashes are still pseudonymous personal data (GDPR): whoever holds the key
// can test guesses, and MAC addresses in particular come from a small space, so treat the product
// key as confidential and the stored hashes as personal data. A server should re-key them with its
// own secret before storing.
//
// # Containers and virtual machines
//
// Environment reports container markers and whether the process runs on a hypervisor (the CPU's
// hypervisor bit, /sys/hypervisor, or firmware naming a hypervisor such as QEMU, VMware, Hyper-V;
// cloud vendors such as "Amazon EC2" are named only with the hypervisor bit, since their bare-metal
// instances carry the same strings). It is information, not enforcement. In containers DMI is
// usually absent or the host's, the machine-id is baked into the image or missing, MACs are random
// and the host name is the container id; VM clones share everything their template had. So a
// licence client should fall back to a persisted install id when StrongCount is below two.
//
// # Matching
//
// Match(a, b) is a weighted k-of-n comparison of the components present on both sides:
// product_uuid, board_serial, machine_id 3; mb_serial 3 when not already counted; volume_hash 2;
// mac_addresses 2 (1 if weak), counted equal when the sets share an address; cpu_id 1; host_name
// 0.5; ip_address 0. MatchThreshold (0.6) is a reasonable acceptance level. Digest gives one hex
// SHA-256 over the present components except ip_address, for persisting.
//
// # Performance
//
// Sources run concurrently under one deadline, the shorter of WithComponentTimeout (default 1 s) and
// WithTimeout (default 2 s); a missed deadline yields TimedOut, never a hang. A cold
// Collect costs about as much as reading the same files in sequence (a few hundred microseconds);
// Cached keeps the result for a TTL, and a warm read is an atomic load and a clock read (tens of
// nanoseconds, no allocation).
//
// # Testing
//
// WithRoot points the Linux sources at a directory tree, on any OS, and gives the same fingerprint
// from the same tree on every OS (volume_hash is then Unsupported: the tree's device and fsid would be
// the host's). The package's tests use the fixtures in testdata/fingerprint (bare metal, VM,
// container, unprivileged user, placeholder values, ARM devicetree) and simulate mode-0400 files,
// device numbers and symlinks without root.
package fingerprint
