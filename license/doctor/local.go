package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/internal/diag"
)

// checkState examines the state directory and every slot in it.
func (d *doctor) checkState(ctx context.Context) Check {
	c := Check{ID: CheckState}
	dir := d.cfg.StateDir
	if dir != "" {
		c.Evidence = append(c.Evidence, Fact{"dir", dir})
		st, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return c.judged(Warn, "the state directory does not exist yet; the first start creates it",
				"nothing, unless this machine has run the product before: then its state was lost, and with it the offline grace")
		case err != nil:
			return c.judged(Fail, "the state directory cannot be examined: "+errText(err), "give the product's user access to "+dir)
		case !st.IsDir():
			return c.judged(Fail, "the state directory path is a file, not a directory: the product runs on memory-only state (no offline restart)",
				"move the file away or point StateDir at a directory")
		}
		if err := probeWritable(dir); err != nil {
			c.Evidence = append(c.Evidence, Fact{"error", errText(err)})
			return c.judged(Fail, "the state directory is not writable: the product runs on memory-only state (no offline restart)",
				"give the product's user write access to "+dir)
		}
		c.Evidence = append(c.Evidence, Fact{"writable", "yes"})
	}
	switch {
	case d.client == nil:
		return c.judged(Skipped, "the configuration is rejected: the saved state cannot be opened without it", "")
	case d.fp == nil:
		return c.judged(Skipped, "no fingerprint: the saved state's key cannot be derived", "")
	}
	insp, err := d.diag.InspectState(ctx, d.fp)
	switch {
	case errors.Is(err, statefile.ErrNotDir):
		return c.judged(Fail, "the state directory path is not a directory", "")
	case err != nil:
		return c.judged(Fail, "the state directory cannot be examined: "+errText(err), "")
	}
	d.state = insp
	if insp.Dir == "" && !insp.Store {
		return c.judged(Warn, "no state directory: state lives in memory only, so a restart without the server gets no offline grace",
			"set Config.StateDir to a directory the product can write, such as os.UserConfigDir()/<vendor>/<product>")
	}
	if insp.Store {
		c.Evidence = append(c.Evidence, Fact{"store", "custom StateStore"})
	}
	return d.judgeSlots(c, insp.Slots)
}

func (d *doctor) judgeSlots(c Check, slots []diag.SavedState) Check {
	now := d.o.clock()
	held, saved := 0, 0
	var corrupt []string
	var best *diag.SavedState
	for i := range slots {
		s := &slots[i]
		// Slots by index: a slot's file name is derived from the product
		// and licence key, so it stays out of the report.
		name := fmt.Sprintf("slot %d", s.Slot)
		if d.state != nil && d.state.Store {
			name = "the state store"
		}
		desc := "free"
		switch {
		case s.Held && s.Saved:
			desc = "held by a running product"
		case s.Held:
			desc = "held by a running product, nothing saved yet"
		case s.Saved:
			desc = "saved state, not in use"
		}
		if s.Held {
			held++
		}
		if s.Saved {
			saved++
			if s.Err != nil {
				desc += "; does not open: " + errText(s.Err)
				corrupt = append(corrupt, name)
			} else if best == nil || s.LastContact.After(best.LastContact) {
				best = s
			}
		}
		c.Evidence = append(c.Evidence, Fact{name, desc})
	}
	c.Evidence = append(c.Evidence, Fact{"slots_in_use", fmt.Sprintf("%d of %d", held, len(slots))})
	if best != nil {
		c.Evidence = append(c.Evidence, stateFacts(best, now)...)
	}
	switch {
	case len(corrupt) > 0:
		return c.judged(Fail, fmt.Sprintf("the saved state in %s does not open: damaged, edited, or sealed for other hardware or another licence", strings.Join(corrupt, ", ")),
			"the next start moves it aside and registers again; offline grace is lost until the server is reached. If the hardware changed, see the fingerprint check")
	case d.state != nil && d.state.RecordErr != nil:
		c.Evidence = append(c.Evidence, Fact{"rollback_record", "unusable: " + errText(d.state.RecordErr)})
		return c.judged(Fail, "the anti-rollback record's location exists but cannot be used ("+errText(d.state.RecordErr)+
			"): the saved state grants no offline grace; an online start works",
			"remove what blocks it (a file where its directory belongs, missing permissions) or point license.WithRollbackRecordDir at a usable directory; offline grace returns after the next contact with the server")
	case best != nil && best.Unanchored:
		return c.judged(Warn, "the saved state was written while the anti-rollback record could not be used: no offline grace until the product reaches the server",
			"let the product reach the server once")
	case len(slots) > 0 && held == len(slots):
		return c.judged(Fail, fmt.Sprintf("all %d state slots are held by running products: another start fails with ErrStateLocked", len(slots)),
			"stop a running copy of the product, or allow more copies with license.WithStateSlots")
	case best != nil && !best.HighWater.IsZero() && now.Before(best.HighWater.Add(-diag.RollbackSlack)):
		return c.judged(Fail, fmt.Sprintf("the clock is %s behind the latest time this machine had seen: it was set back, and offline grace is refused until the server is reached",
			best.HighWater.Sub(now).Round(time.Second)),
			"set the clock right (turn on automatic time), then let the product reach the server")
	case best != nil && best.SessionLive && !best.GraceDeadline.IsZero() && now.After(best.GraceDeadline) && held == 0:
		return c.judged(Warn, "the saved session and its offline grace have run out: the product needs the server at its next start",
			"make sure the product can reach the server (see the network checks)")
	case saved == 0:
		return c.judged(OK, "the state directory is usable; no state saved yet (the product has not run here)", "")
	}
	return c.judged(OK, fmt.Sprintf("the state directory is usable and the saved state opens (%d of %d slots in use)", held, len(slots)), "")
}

// stateFacts describes the most recent saved state.
func stateFacts(s *diag.SavedState, now time.Time) []Fact {
	f := []Fact{{"instance", cmp.Or(s.InstanceGUID, "none")}}
	at := func(name string, t time.Time) {
		if t.IsZero() {
			f = append(f, Fact{name, "none"})
			return
		}
		f = append(f, Fact{name, t.UTC().Format(time.RFC3339) + " (" + relative(t, now) + ")"})
	}
	at("last_contact", s.LastContact)
	switch {
	case s.SessionLive && !s.SessionExpiry.IsZero() && now.Before(s.SessionExpiry):
		f = append(f, Fact{"session", "open on the server (begun, not ended)"})
	case s.SessionLive:
		f = append(f, Fact{"session", "lapsed without end_session; the server has freed it"})
	default:
		f = append(f, Fact{"session", "none open"})
	}
	f = append(f, Fact{"offline_start", offlineStart(s, now)})
	at("session_expiry", s.SessionExpiry)
	at("grace_deadline", s.GraceDeadline)
	at("high_water", s.HighWater)
	if s.InstallID {
		f = append(f, Fact{"install_id", "in use (weak hardware identity)"})
	}
	return f
}

// offlineStart says what a Start without the server does now, by the rule
// the client applies: the saved deadlines, never fresh ones.
func offlineStart(s *diag.SavedState, now time.Time) string {
	switch {
	case s.Sent.IsZero() || s.SessionDuration <= 0:
		return "needs the server (no saved session)"
	case !s.HighWater.IsZero() && now.Before(s.HighWater.Add(-diag.RollbackSlack)), now.Before(s.Sent):
		return "needs the server (the clock was set back)"
	case now.Before(s.SessionExpiry):
		return "Active until " + s.SessionExpiry.UTC().Format(time.RFC3339) + ", then Grace until " + s.GraceDeadline.UTC().Format(time.RFC3339)
	case now.Before(s.GraceDeadline):
		return "Grace until " + s.GraceDeadline.UTC().Format(time.RFC3339)
	}
	return "needs the server (grace spent)"
}

// relative renders t against now as "3m0s ago" or "in 2h0m0s".
func relative(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d == 0 {
		return "now"
	}
	if d < 0 {
		return (-d).String() + " ago"
	}
	return "in " + d.String()
}

func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".licensekit-doctor-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkFingerprint reports every component and how well this machine can
// be told apart.
func (d *doctor) checkFingerprint() Check {
	c := Check{ID: CheckFingerprint}
	if d.fp == nil {
		finding := "the fingerprint cannot be collected"
		if d.fpErr != nil {
			finding += ": " + errText(d.fpErr)
		}
		return c.judged(Fail, finding, "run the product with access to the machine's hardware facts (see docs/fingerprint)")
	}
	for _, comp := range d.fp.Components() {
		c.Evidence = append(c.Evidence, Fact{comp.Name, d.componentText(comp)})
	}
	env := d.fp.Environment
	if env.Container {
		c.Evidence = append(c.Evidence, Fact{"container", strings.Join(env.ContainerHints, ", ")})
	}
	if env.Hypervisor {
		c.Evidence = append(c.Evidence, Fact{"hypervisor", cmp.Or(env.HypervisorVendor, "vendor unknown")})
	}
	strong := d.fp.StrongCount()
	c.Evidence = append(c.Evidence, Fact{"strong_identifiers", fmt.Sprint(strong)})
	var changed []string
	regChanged := false
	if d.state != nil {
		for _, s := range d.state.Slots {
			if s.Err == nil && s.HardwareChanged {
				regChanged = true
				changed = append(changed, s.Changed...)
			}
		}
	}
	changed = uniq(changed)
	if regChanged {
		c.Evidence = append(c.Evidence, Fact{"changed_since_registration", joinOr(changed, "unknown components")})
	}
	if b := d.o.baseline; b != nil {
		c.Evidence = append(c.Evidence, Fact{"changed_since_baseline",
			joinOr(d.changedSince(b), "nothing") + " (baseline bundle of " + b.Created.UTC().Format(time.RFC3339) + ")"})
	}
	advice := ""
	switch {
	case env.Container:
		advice = "This runs in a container: keep the state directory on a persistent volume, or every new container is a new machine and takes a new seat"
	case env.Hypervisor:
		advice = "This is a virtual machine: cloned VMs share identifiers, so give each clone its own machine id (and state directory)"
	}
	switch {
	case regChanged:
		return c.judged(Warn, "the hardware identity changed since this machine registered ("+joinOr(changed, "which components is not recorded")+"): the next start registers it again, which may take a new seat",
			strings.TrimSpace("expected after a hardware change; otherwise see the changed components. "+advice))
	case strong < 2:
		return c.judged(Warn, fmt.Sprintf("fewer than two strong identifiers (%d): the SDK identifies this machine by an install id kept in the state directory", strong),
			strings.TrimSpace("keep the state directory: losing it makes this a new machine. "+advice))
	}
	return c.judged(OK, fmt.Sprintf("%d strong identifiers; this machine is told apart reliably", strong), advice)
}

func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, ", ")
}

func uniq(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// componentText describes a component without its value: strength, source
// and either the value's salted digest or why it is missing.
func (d *doctor) componentText(c fingerprint.Component) string {
	parts := []string{c.Strength.String()}
	if c.Weak {
		parts[0] += " (weak fallback)"
	}
	if c.Source != "" {
		parts = append(parts, "from "+c.Source)
	}
	switch {
	case c.Missing != nil:
		parts = append(parts, "missing: "+c.Missing.Reason.String())
	case c.Present():
		parts = append(parts, "id "+d.idDigests(c))
	default:
		parts = append(parts, "empty")
	}
	return strings.Join(parts, "; ")
}

// checkRoundTrip registers, begins and ends a session when Full is set.
func (d *doctor) checkRoundTrip(ctx context.Context) Check {
	switch {
	case !d.o.full:
		return skipped(CheckRoundTrip, "not asked for: Full registers, begins and ends a real session (a seat for a moment)")
	case d.client == nil:
		return skipped(CheckRoundTrip, "the configuration is rejected; fix it first")
	}
	if why := d.serverNotReached(); why != "" {
		return skipped(CheckRoundTrip, why)
	}
	c := Check{ID: CheckRoundTrip}
	rctx, cancel := context.WithTimeout(ctx, 3*d.o.timeout)
	defer cancel()
	start := time.Now()
	reg, err := d.client.Register(rctx)
	if err != nil {
		return roundTripFailure("register_instance", err)
	}
	c.Evidence = append(c.Evidence, Fact{"instance", reg.InstanceGUID},
		Fact{"session_duration", reg.SessionDuration.String()}, Fact{"grace_period", reg.GracePeriod.String()})
	if err := d.client.BeginSession(rctx); err != nil {
		return roundTripFailure("begin_session", err)
	}
	st := d.client.Status()
	c.Evidence = append(c.Evidence, Fact{"features", cmp.Or(st.Features, "none")})
	if err := d.client.EndSession(rctx); err != nil {
		return c.judged(Fail, "the session began but end_session failed: "+errText(err),
			"the seat frees itself when the session lapses ("+st.SessionDuration.String()+"); check the http check")
	}
	c.Evidence = append(c.Evidence, Fact{"took", roundDur(time.Since(start))})
	return c.judged(OK, "registered, began and ended a session: the server opens this client's envelope and grants a seat", "")
}

func roundTripFailure(step string, err error) Check {
	c := Check{ID: CheckRoundTrip, Verdict: Fail}
	switch {
	case errors.Is(err, license.ErrRevoked):
		c.Finding, c.Fix = step+": the licence is revoked", "contact the vendor about the licence"
	case errors.Is(err, license.ErrExpired):
		c.Finding, c.Fix = step+": the licence has expired", "renew the licence with the vendor"
	case errors.Is(err, license.ErrSeatLimit):
		c.Finding, c.Fix = step+": every seat of the licence is in use", "close the product on another machine, or wait for its session to lapse"
	case errors.Is(err, license.ErrStateLocked):
		c.Finding, c.Fix = step+": every state slot is held by a running product", "run the full check while the product is stopped"
	case errors.Is(err, license.ErrRefused):
		c.Finding, c.Fix = step+": the server refused: "+errText(err), "check the product GUID and licence key with the vendor"
	default:
		c.Finding, c.Fix = step+": "+errText(err), "see the network checks"
	}
	return c
}
