package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Component names. The first six are the fields the v2 API sends with register_instance and
// begin_session; the rest are extra components that Collect reports in Fingerprint.Extra.
const (
	NameCPUID        = "cpu_id"
	NameMBSerial     = "mb_serial"
	NameMACAddresses = "mac_addresses"
	NameVolumeHash   = "volume_hash"
	NameHostName     = "host_name"
	NameIPAddress    = "ip_address"
	NameProductUUID  = "product_uuid"
	NameBoardSerial  = "board_serial"
	NameMachineID    = "machine_id"
)

// extraRank orders the known extra components in Fingerprint.Extra; unknown names sort last.
func extraRank(name string) int {
	order := [...]string{NameProductUUID, NameBoardSerial, NameMachineID}
	if i := slices.Index(order[:], name); i >= 0 {
		return i
	}
	return len(order)
}

// Strength grades how well a component identifies one machine. The zero value is Weak.
type Strength int

// Strengths, weakest first.
const (
	// Weak components are shared by many machines or change often (CPU model, host name, IP address,
	// locally administered MAC addresses).
	Weak Strength = iota
	// Medium components identify a machine until an ordinary change (a new NIC, a reinstall).
	Medium
	// Strong components identify one machine across reinstalls (product UUID, board serial, machine id).
	Strong
)

var strengthNames = [...]string{"weak", "medium", "strong"}

// String returns "weak", "medium" or "strong", or "strength(n)" for an invalid value.
func (s Strength) String() string {
	if s < Weak || s > Strong {
		return fmt.Sprintf("strength(%d)", int(s))
	}
	return strengthNames[s]
}

// MarshalText encodes s as its String form.
func (s Strength) MarshalText() ([]byte, error) {
	if s < Weak || s > Strong {
		return nil, fmt.Errorf("fingerprint: invalid strength %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes the String form of a Strength.
func (s *Strength) UnmarshalText(b []byte) error {
	i := slices.Index(strengthNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("fingerprint: invalid strength %q", b)
	}
	*s = Strength(i)
	return nil
}

// Reason says why a component is missing. The zero value is not a valid reason.
type Reason int

// Reasons a component can be missing.
const (
	// NeedsPrivilege means the source exists but the process may not read it (Linux DMI serials need
	// root).
	NeedsPrivilege Reason = iota + 1
	// NotPresent means the machine has no such source (no DMI in a microVM, no machine-id in a
	// container).
	NotPresent
	// Placeholder means the source holds a vendor placeholder such as "To be filled by O.E.M.", an
	// all-zero UUID or ghw's "unknown", which identifies nothing.
	Placeholder
	// Unsupported means this operating system offers no such source, or Collect does not implement it
	// (or, below a WithRoot root, cannot answer for the captured machine).
	Unsupported
	// TimedOut means the source did not answer within its deadline or the caller's context ended
	// first.
	TimedOut
)

// reasonTokens holds the JSON token of each valid reason, from NeedsPrivilege on; the String form
// is the token with spaces for underscores.
var reasonTokens = [...]string{"needs_privilege", "not_present", "placeholder", "unsupported", "timed_out"}

func (r Reason) valid() bool { return r >= NeedsPrivilege && r <= TimedOut }

// String returns a short lower-case phrase: "needs privilege", "not present", "placeholder",
// "unsupported" or "timed out", or "reason(n)" for an invalid value.
func (r Reason) String() string {
	if !r.valid() {
		return fmt.Sprintf("reason(%d)", int(r))
	}
	return strings.ReplaceAll(reasonTokens[r-NeedsPrivilege], "_", " ")
}

// MarshalText encodes r as a snake_case token ("needs_privilege", ...).
func (r Reason) MarshalText() ([]byte, error) {
	if !r.valid() {
		return nil, fmt.Errorf("fingerprint: invalid reason %d", int(r))
	}
	return []byte(reasonTokens[r-NeedsPrivilege]), nil
}

// UnmarshalText decodes a token written by MarshalText; the String form is accepted too.
func (r *Reason) UnmarshalText(b []byte) error {
	for i := NeedsPrivilege; i <= TimedOut; i++ {
		if string(b) == reasonTokens[i-NeedsPrivilege] || string(b) == i.String() {
			*r = i
			return nil
		}
	}
	return fmt.Errorf("fingerprint: invalid reason %q", b)
}

// MissingError explains why a component has no value. It never contains an identifier's value; for a
// Placeholder it may quote the placeholder text, which by definition identifies nothing.
type MissingError struct {
	// Component is the component's name, e.g. "board_serial".
	Component string
	// Reason says why the component is missing.
	Reason Reason
	// Err is the underlying cause, such as an *fs.PathError, or nil.
	Err error
}

// Error returns "fingerprint: <component>: <reason>[: <cause>]".
func (e *MissingError) Error() string {
	s := "fingerprint: " + e.Component + ": " + e.Reason.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *MissingError) Unwrap() error { return e.Err }

type missingJSON struct {
	Component string `json:"component,omitempty"`
	Reason    Reason `json:"reason"`
	Detail    string `json:"detail,omitempty"`
}

// MarshalJSON encodes the error as {"component","reason","detail"}, where detail is the cause's text.
func (e *MissingError) MarshalJSON() ([]byte, error) {
	m := missingJSON{Component: e.Component, Reason: e.Reason}
	if e.Err != nil {
		m.Detail = e.Err.Error()
	}
	return json.Marshal(m)
}

// UnmarshalJSON decodes what MarshalJSON wrote. The cause comes back as a plain error with the same text.
func (e *MissingError) UnmarshalJSON(b []byte) error {
	var m missingJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*e = MissingError{Component: m.Component, Reason: m.Reason}
	if m.Detail != "" {
		e.Err = errors.New(m.Detail)
	}
	return nil
}

// Component is one machine fact: its value, where it came from, and, when it is missing, why.
// The zero value is an unnamed, missing-without-reason component.
type Component struct {
	// Name is the wire name: "cpu_id", "mb_serial", "mac_addresses", "volume_hash", "host_name",
	// "ip_address", or an extra such as "product_uuid", "board_serial", "machine_id".
	Name string `json:"name"`
	// Value is the component's value; "" when missing, and for mac_addresses (see Values).
	Value string `json:"value,omitempty"`
	// Values holds the list for mac_addresses: lowercase colon hex, sorted, without duplicates.
	Values []string `json:"values,omitempty"`
	// Source names where the value came from (or would have), e.g. "/sys/class/dmi/id/board_serial",
	// "ghw.baseboard", "GetSystemFirmwareTable(RSMB)". Paths are shown as seen from the root.
	Source string `json:"source,omitempty"`
	// Strength is how well the component identifies one machine.
	Strength Strength `json:"strength"`
	// Weak is set when the value came from a fallback tier that is weaker than the component
	// normally is, e.g. MAC addresses that are locally administered on real devices.
	Weak bool `json:"weak,omitempty"`
	// Missing is nil when the component is present, and says why otherwise.
	Missing *MissingError `json:"missing,omitempty"`
}

// Present reports whether the component has a value.
func (c Component) Present() bool {
	return c.Missing == nil && (c.Value != "" || len(c.Values) > 0)
}

func (c Component) text() string {
	if len(c.Values) > 0 {
		return strings.Join(c.Values, ",")
	}
	return c.Value
}

// Environment says whether the process runs in a container or on a hypervisor. It is information
// for the caller (for example to prefer an install id), never enforcement.
type Environment struct {
	// Container is true when a container marker was found.
	Container bool `json:"container"`
	// ContainerHints lists the markers found, e.g. "/.dockerenv", "/run/.containerenv", "cgroup:docker".
	ContainerHints []string `json:"container_hints,omitempty"`
	// Hypervisor is true when the CPU reports the hypervisor bit (macOS: kern.hv_vmm_present),
	// /sys/hypervisor/type names one, or firmware names a hypervisor vendor.
	Hypervisor bool `json:"hypervisor"`
	// HypervisorVendor names the hypervisor when known ("KVM", "VMware", "Hyper-V", ...), or the
	// cloud the firmware names ("Amazon EC2", ...) when Hypervisor is set, else "".
	HypervisorVendor string `json:"hypervisor_vendor,omitempty"`
}

// Fingerprint is a set of machine facts. Collect always fills the six wire fields, each either with a
// value or with a Missing reason. A Fingerprint returned by Cached is shared: treat it as read-only.
type Fingerprint struct {
	CPUID        Component `json:"cpu_id"`
	MBSerial     Component `json:"mb_serial"`
	MACAddresses Component `json:"mac_addresses"`
	VolumeHash   Component `json:"volume_hash"`
	HostName     Component `json:"host_name"`
	IPAddress    Component `json:"ip_address"`
	// Extra holds components the v2 API does not send, in a fixed order: product_uuid, board_serial,
	// machine_id. mb_serial repeats board_serial or product_uuid.
	Extra []Component `json:"extra,omitempty"`
	// Environment reports container and hypervisor markers.
	Environment Environment `json:"environment"`
	// Hashed is true when every value is a per-product HMAC (see WithHashedIdentifiers).
	Hashed bool `json:"hashed"`
}

// Components returns all components in a fixed order: the six wire fields, then Extra.
// The slice is new; its elements share Values slices with f.
func (f *Fingerprint) Components() []Component {
	out := make([]Component, 0, 6+len(f.Extra))
	out = append(out, f.CPUID, f.MBSerial, f.MACAddresses, f.VolumeHash, f.HostName, f.IPAddress)
	return append(out, f.Extra...)
}

// Component returns the component with the given name, and whether it exists in f.
func (f *Fingerprint) Component(name string) (Component, bool) {
	if p := f.field(name); p != nil {
		return *p, true
	}
	for _, c := range f.Extra {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// wireFields are the names of the six wire fields, in Components order, with their strengths.
var wireFields = [...]struct {
	name string
	s    Strength
}{{NameCPUID, Weak}, {NameMBSerial, Strong}, {NameMACAddresses, Medium}, {NameVolumeHash, Medium},
	{NameHostName, Weak}, {NameIPAddress, Weak}}

// wire returns the six wire fields of f, in wireFields order.
func (f *Fingerprint) wire() [len(wireFields)]*Component {
	return [...]*Component{&f.CPUID, &f.MBSerial, &f.MACAddresses, &f.VolumeHash, &f.HostName, &f.IPAddress}
}

func (f *Fingerprint) field(name string) *Component {
	for i, p := range f.wire() {
		if wireFields[i].name == name {
			return p
		}
	}
	return nil
}

// StrongCount returns the number of distinct strong identifiers present. mb_serial is counted only
// when neither board_serial nor product_uuid is present, since it repeats one of them. A licence
// client falls back to a persisted install id when this is below two.
func (f *Fingerprint) StrongCount() int {
	n := 0
	underlying := false
	for _, c := range f.Extra {
		if c.Strength == Strong && c.Present() {
			n++
			if c.Name == NameBoardSerial || c.Name == NameProductUUID {
				underlying = true
			}
		}
	}
	if !underlying && f.MBSerial.Strength == Strong && f.MBSerial.Present() {
		n++
	}
	return n
}

// digestLabel starts the input of Digest, so the digest cannot be confused with another SHA-256.
const digestLabel = "licensekit fp1 digest"

// Digest returns the hex SHA-256 of a labelled canonical encoding ("fp1") of the present components,
// in Components order, excluding ip_address, which changes with the network. The encoding is
// label 0x00, "hashed" 0x00 ("0"|"1") 0x00, then name 0x00 value 0x00 per present component, where a
// list value is joined by ",". Missing components are skipped, so a reason change alone does not
// change the digest.
func (f *Fingerprint) Digest() string {
	hashed := "0"
	if f.Hashed {
		hashed = "1"
	}
	h := sha256.New()
	io.WriteString(h, digestLabel+"\x00hashed\x00"+hashed+"\x00")
	for _, c := range f.Components() {
		if c.Name != NameIPAddress && c.Present() {
			io.WriteString(h, c.Name+"\x00"+c.text()+"\x00")
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ErrNoUsableComponent is matched (errors.Is) by the summary error Collect returns when no component
// other than ip_address has a value.
var ErrNoUsableComponent = errors.New("fingerprint: no usable component")
