package license

import (
	"slices"
	"strconv"
	"time"
)

// State is where a client stands. Renewing is a flag on Status, not a state.
type State uint8

// The states. The zero value is Idle.
const (
	// Idle: no session yet (before Start, or after a failed Start).
	Idle State = iota
	// Active: the session is valid.
	Active
	// Grace: the session lapsed while the server was unreachable; the
	// licence stays usable until the grace deadline.
	Grace
	// Expired: the grace period ran out (or was refused after a clock
	// rollback). The client keeps trying and returns to Active when the
	// server answers.
	Expired
	// Refused: the server said no. No grace applies; the client stops.
	// Refused is final: Close leaves it as it is.
	Refused
	// Ended: Close ended the client (from any state but Refused).
	Ended
)

var stateNames = [...]string{"Idle", "Active", "Grace", "Expired", "Refused", "Ended"}

// String returns the state's name, such as "Active".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText renders the state's name, so that JSON logs and encodings
// show "Active" rather than a number.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Usable reports whether the licence may be used in this state: Active or
// Grace.
func (s State) Usable() bool { return s == Active || s == Grace }

// Status is an immutable snapshot of a client. Its slices are shared and
// must not be modified.
type Status struct {
	// State is the current state, computed from the deadlines when Status
	// was called.
	State State
	// Reason says why the client is in State: nil when Active and healthy,
	// otherwise an error matching one of the sentinels (ErrUnreachable,
	// ErrGraceExpired, ErrClockRollback, ErrRevoked, ...).
	Reason error
	// Renewing is set while a renewal request is in flight.
	Renewing bool

	// Features is the server's raw features string.
	Features string
	// FeatureSet is Features parsed into sorted, unique names.
	FeatureSet []string

	// SessionExpiry is when the current session lapses: the send time of the
	// last successful begin or extend plus session_duration.
	SessionExpiry time.Time
	// GraceDeadline is SessionExpiry plus validation_grace_period.
	GraceDeadline time.Time
	// SessionDuration and GracePeriod are the server's control options.
	SessionDuration time.Duration
	GracePeriod     time.Duration
	// LastContact is when the server last answered successfully.
	LastContact time.Time
	// LastError is the latest failed call's error, nil after a success.
	LastError error
	// ConfigFault is set while the server answers but does not
	// authenticate this client (ErrCredentialsRejected names the likely
	// causes). It is not a licence verdict: State still follows the offline
	// grace. The next reply that opens clears it.
	ConfigFault error

	// InstanceGUID and FirstRegisteredAt come from register_instance.
	InstanceGUID      string
	FirstRegisteredAt time.Time
	// ServerSkew is the server's clock minus this machine's, estimated at
	// the last contact.
	ServerSkew time.Duration
	// Deprecated reports that a reply from the licence server carried a
	// Deprecation or Sunset header: update the product. Only the fact is
	// kept, never the header's unauthenticated text.
	Deprecated bool
}

// Valid reports whether the licence may be used now: Active or Grace.
func (s Status) Valid() bool { return s.State.Usable() }

// HasFeature reports whether the session grants feature name.
func (s Status) HasFeature(name string) bool {
	_, found := slices.BinarySearch(s.FeatureSet, name)
	return found
}
