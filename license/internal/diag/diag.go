// Package diag is what a licence client offers the diagnosis tool (package
// license/doctor) and nothing else: a harmless probe of the server, a look
// at the saved state, a licence check and the machine's fingerprint as the
// client sees it. None of it takes a seat or changes the saved state.
//
// A client hands these out only through license.Client.Diagnostics, whose
// argument (a Key) only the SDK's packages under license/ can make, so they
// are no part of the API a product uses and can change without notice.
package diag

import (
	"context"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
)

// RollbackSlack is how far the wall clock may fall behind the latest time
// this machine has seen (the saved high-water mark) before the client
// counts the clock as rolled back and refuses offline allowance
// (license.ErrClockRollback). A server clock further off than this from
// the local one makes deadlines disagree by as much.
const RollbackSlack time.Duration = 5 * time.Minute

// Key unlocks license.Client.Diagnostics. Its zero value unlocks nothing;
// only NewKey makes one that does.
type Key struct{ ok bool }

// NewKey returns a Key that unlocks license.Client.Diagnostics.
func NewKey() Key { return Key{ok: true} }

// Valid reports whether k came from NewKey.
func (k Key) Valid() bool { return k.ok }

// Client is a licence client's diagnosis surface. Probe and CheckLicense
// wait for a call of the client in progress; ctx bounds the wait and the
// exchange.
type Client interface {
	// Fingerprint returns this machine's fingerprint from the client's
	// source (license.WithFingerprintSource, or the default collector with
	// license.WithFingerprintOptions). It may block while the hardware is
	// read, bounded by ctx. The result is shared: treat it as read-only.
	Fingerprint(ctx context.Context) (*fingerprint.Fingerprint, error)

	// Probe sends one extend_session for a random token that names no
	// session, with the client's retry settings, and reports how the server
	// answered: the expected answer is a refusal ("unknown token"). It does
	// not load the saved state and works before Start.
	Probe(ctx context.Context) ProbeResult

	// InspectState looks at the saved state without changing it: it
	// creates nothing, takes no lock it keeps, moves no corrupt file aside
	// and never waits for a lock held by a running client. fp (see
	// Fingerprint) derives the sealing key and is compared with the
	// registered hardware. The error is for a directory that cannot be
	// looked at (fs.ErrNotExist, statefile.ErrNotDir); problems of one slot
	// are in its SavedState.Err.
	InspectState(ctx context.Context, fp *fingerprint.Fingerprint) (*StateInspection, error)

	// CheckLicense asks the server whether it knows the licence, creating
	// nothing: it sends register_instance only when the saved state shows
	// that the server already registered this machine with the same
	// hardware (fp, see Fingerprint), so that the spec makes the server
	// return the existing instance; otherwise it sends nothing and says why
	// in NotChecked. It takes no state slot.
	CheckLicense(ctx context.Context, fp *fingerprint.Fingerprint) LicenseCheck
}

// ProbeResult is how the server answered Probe.
type ProbeResult struct {
	// RTT is the time from sending the request to having the reply.
	RTT time.Duration
	// ServerTime is the time the reply carried, zero when it carried none.
	ServerTime time.Time
	// Skew is ServerTime minus the local wall clock at the middle of the
	// exchange. It is meaningful only when ServerTime is not zero.
	Skew time.Duration
	// Err is the outcome, classified like every reply of the client: a
	// *license.APIError for a refusal (the expected answer), an error
	// matching license.ErrUnreachable, or nil if the server accepted the
	// token.
	Err error
}

// LicenseCheck is what CheckLicense found.
type LicenseCheck struct {
	// Checked is true when register_instance was sent; NotChecked then is
	// empty. Otherwise NotChecked says, in a few words, why it was not.
	Checked    bool
	NotChecked string
	// SavedInstance is the instance the saved state names; InstanceGUID
	// is the one the server returned. They differ when the server no
	// longer matches this machine to its saved instance.
	SavedInstance, InstanceGUID string
	// SessionDuration and GracePeriod are the server's control options.
	SessionDuration, GracePeriod time.Duration
	// Err is register_instance's outcome, classified like every reply of
	// the client: nil when the server knows the licence, a
	// *license.APIError when it refused it, or an error matching
	// license.ErrUnreachable.
	Err error
}

// SavedState is one state slot as InspectState found it. Times are wall
// times as saved; zero means not recorded.
type SavedState struct {
	// Slot is the slot index; zero for a custom StateStore.
	Slot int
	// Held is true when a running client held the slot's lock at the
	// moment of the inspection.
	Held bool
	// Saved is true when the slot holds saved state, whether or not it
	// opens.
	Saved bool
	// Err says why the slot's state could not be read or does not open; it
	// matches license.ErrStateCorrupt when the state is damaged, was
	// edited, or was sealed for other hardware or another product or
	// licence.
	Err error
	// InstanceGUID is the registered instance.
	InstanceGUID string
	// SessionLive is true when a session was begun and not ended (a
	// running client, or a crash: the next Start ends it).
	SessionLive bool
	// Sent is when the last successful begin or extend was sent;
	// SessionExpiry and GraceDeadline follow from it and the control
	// options SessionDuration and GracePeriod.
	Sent, SessionExpiry, GraceDeadline time.Time
	SessionDuration, GracePeriod       time.Duration
	// LastContact is when the server last answered; HighWater is the
	// latest wall time this machine had seen when the state was saved.
	LastContact, HighWater time.Time
	// InstallID is true when an install id stands in for weak hardware
	// (fewer than two strong components). The id itself is not exposed.
	InstallID bool
	// Unanchored is true when the state was saved while its anti-rollback
	// record could not be used: it grants no offline time until the server
	// answers again.
	Unanchored bool
	// HardwareChanged is true when this machine's hardware identity differs
	// from the one registered; Changed then names the wire components that
	// differ, or is nil when the state holds no per-component record.
	HardwareChanged bool
	Changed         []string
}

// StateInspection is what InspectState found.
type StateInspection struct {
	// Dir is Config.StateDir; empty for a custom store or memory-only state.
	Dir string
	// Store is true when a custom StateStore (license.WithStateStore)
	// holds the state.
	Store bool
	// Slots lists every slot the client may use, in order.
	Slots []SavedState
	// RecordErr says why the anti-rollback records' location exists but
	// cannot be used (a file where the directory belongs, no permission, a
	// record that does not open): the saved state then grants no offline
	// time (license.ErrRollbackRecordUnusable). Nil when it works, has not
	// been made yet, or there is none.
	RecordErr error
}
