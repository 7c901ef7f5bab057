package licensetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/licensekit/licensekit-go/internal/wire"
)

// The four v2 endpoint names, for fault injection and observation.
const (
	Register = wire.Register // "register_instance"
	Begin    = wire.Begin    // "begin_session"
	Extend   = wire.Extend   // "extend_session"
	End      = wire.End      // "end_session"
)

// BasePath is the path below which the server answers the v2 API; the
// server's URL ends with it.
const BasePath = "/api/v2"

// DefaultSessionDuration is the session duration of a License whose
// SessionDuration is zero.
const DefaultSessionDuration = 10 * time.Minute

// SessionStatus is the "status" value of every successful begin_session and
// extend_session reply. The spec gives the field no meaning; the mock always
// sends 1.
const SessionStatus = 1

// LicenseState is the state of a licence. The zero value is Active.
type LicenseState int

// The licence states. A revoked or expired licence is refused by every
// endpoint but end_session with HTTP 403 and an error text containing
// "revoked" or "expired".
const (
	Active LicenseState = iota
	Revoked
	Expired
)

// String returns "active", "revoked" or "expired".
func (s LicenseState) String() string {
	return enumName("LicenseState", int(s), "active", "revoked", "expired")
}

// enumName is the String of an enumeration: names[v], or TYPE(v) when v
// has no name.
func enumName(typ string, v int, names ...string) string {
	if v >= 0 && v < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

// License is a product licence the server knows. It is plain data; the
// server copies it. Durations travel as whole seconds, so they must be whole
// seconds here.
type License struct {
	// ProductGUID and Key identify the licence (the requests' product_guid
	// and license_key). Both are required.
	ProductGUID string
	Key         string
	// Seats is the number of concurrent live sessions allowed; zero means
	// unlimited. A begin_session beyond it is refused with 409 "seat limit".
	Seats int
	// SessionDuration is the session_duration control option and the
	// duration of a session whose request names none; zero means
	// DefaultSessionDuration.
	SessionDuration time.Duration
	// GracePeriod is the validation_grace_period control option; zero means
	// no grace.
	GracePeriod time.Duration
	// MaxDuration caps a duration requested by begin_session or
	// extend_session; zero means SessionDuration.
	MaxDuration time.Duration
	// Features is sent verbatim as the begin_session reply's features.
	Features string
	State    LicenseState
}

// ErrUnknownLicense is returned by the licence methods for a product and key
// pair that was never added.
var ErrUnknownLicense = errors.New("licensetest: unknown license")

// errInvalidLicense matches every validation error of AddLicense and
// SetControlOptions.
var errInvalidLicense = errors.New("licensetest: invalid license")

func (l *License) normalise() error {
	var errs []error
	check := func(bad bool, msg string) {
		if bad {
			errs = append(errs, fmt.Errorf("%w: %s", errInvalidLicense, msg))
		}
	}
	check(l.ProductGUID == "", "product GUID is empty")
	check(l.Key == "", "key is empty")
	check(l.Seats < 0, "seats is negative")
	check(l.State < Active || l.State > Expired, "unknown state")
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"session duration", l.SessionDuration}, {"grace period", l.GracePeriod}, {"max duration", l.MaxDuration}} {
		check(d.v < 0, d.name+" is negative")
		check(d.v > 0 && d.v%time.Second != 0, d.name+" is not a whole number of seconds")
	}
	if l.SessionDuration == 0 {
		l.SessionDuration = DefaultSessionDuration
	}
	return errors.Join(errs...)
}

// Machine is the hardware an instance registered with, as sent in the
// register_instance request.
type Machine struct {
	IPAddress    string
	CPUID        string
	MBSerial     string
	MACAddresses []string
	VolumeHash   string
	HostName     string
}

// Instance is a registered product instance and its user, as returned by
// Server.Instances. It is a copy.
type Instance struct {
	GUID              string
	ProductGUID       string
	LicenseKey        string
	Machine           Machine
	Name              string
	Email             string
	UserHash          map[string]string
	FirstRegisteredAt time.Time
}

func (i Instance) clone() Instance {
	i.Machine.MACAddresses = slices.Clone(i.Machine.MACAddresses)
	i.UserHash = maps.Clone(i.UserHash)
	return i
}

// Session is a live session, as returned by Server.Sessions. It is a copy.
// The Token is included because this is a test server; the server never logs
// it.
type Session struct {
	Token string
	// SessionKey is the session_key begin_session issued.
	SessionKey   string
	InstanceGUID string
	ProductGUID  string
	LicenseKey   string
	// Started is when begin_session issued the session.
	Started time.Time
	// Expires is when the session lapses unless extended: the time of the
	// last begin or extend plus Duration.
	Expires time.Time
	// Duration is the effective duration of the last begin or extend.
	Duration time.Duration
	// Extensions counts successful extend_session calls.
	Extensions int
}

// Match says how register_instance recognises a machine it has seen. The
// zero value is Exact. Whatever the mode, the name and email must also be
// the same, and only instances of the same licence are considered.
type Match int

// Exact matches when every hardware field but ip_address is the same
// (mac_addresses as a set).
const Exact Match = 0

// matchComponents is the number of components KOfN compares.
const matchComponents = 5

// KOfN matches when at least k of the five components cpu_id, mb_serial,
// mac_addresses (any address in common), volume_hash and host_name are
// present and equal. k is clamped to 1..5. When several instances match, the
// one with most equal components wins, then the oldest.
func KOfN(k int) Match {
	return Match(min(max(k, 1), matchComponents))
}

// String returns "exact" or "k-of-5" for KOfN(k).
func (m Match) String() string {
	if m <= Exact {
		return "exact"
	}
	return fmt.Sprintf("%d-of-%d", int(m), matchComponents)
}
