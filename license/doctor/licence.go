package doctor

import (
	"context"
	"errors"

	"github.com/licensekit/licensekit-go/license"
)

// serverNotReached says why the checks that need the licence server
// cannot run, or "" when the http check reached it.
func (d *doctor) serverNotReached() string {
	if pc, ok := d.checks[CheckProxy]; ok && pc.Verdict == Fail {
		return notCheckedProxy
	}
	if h, ok := d.checks[CheckHTTP]; ok && h.Verdict != OK && h.Verdict != Warn {
		return "not checked: the server cannot be reached as it should (see the http check)"
	}
	return ""
}

// checkLicense is the licence client's licence check (diag.Client's
// CheckLicense, which takes no seat). On a machine the server does not
// know nothing is sent and the licence is reported as not checked: the
// default run never claims a licence it did not check.
func (d *doctor) checkLicense(ctx context.Context) Check {
	switch {
	case d.client == nil:
		return skipped(CheckLicense, "the configuration is rejected; fix it first")
	case d.o.full:
		return skipped(CheckLicense, "the roundtrip check checks the licence")
	case d.fp == nil:
		return skipped(CheckLicense, "licence not checked: no fingerprint, so this machine's registration is unknown")
	}
	if why := d.serverNotReached(); why != "" {
		return skipped(CheckLicense, why)
	}
	cctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	res := d.diag.CheckLicense(cctx, d.fp)
	cancel()
	if !res.Checked {
		return skipped(CheckLicense, "licence not checked: "+res.NotChecked+"; the full check (Full, -full) checks it and takes a seat for a moment")
	}
	c := Check{ID: CheckLicense, Evidence: []Fact{
		{"request", "register_instance for this machine's saved instance (no seat; the server returns the existing instance)"},
		{"instance", res.SavedInstance},
	}}
	var api *license.APIError
	switch {
	case res.Err == nil && res.InstanceGUID != res.SavedInstance:
		c.Evidence = append(c.Evidence, Fact{"server_instance", res.InstanceGUID})
		return c.judged(Warn, "the server knows the licence but no longer matches this machine to its saved instance: the next start uses the instance the server returns",
			"nothing, unless this repeats: then the server's machine matching or this machine's identity changes between runs (see the fingerprint check)")
	case res.Err == nil:
		c.Evidence = append(c.Evidence, Fact{"session_duration", res.SessionDuration.String()}, Fact{"grace_period", res.GracePeriod.String()})
		return c.judged(OK, "the server knows the licence and this machine's instance (checked with register_instance; no seat taken)", "")
	case errors.As(res.Err, &api):
		c.Evidence = append(c.Evidence, Fact{"server_message", api.Message})
		rt := roundTripFailure("register_instance", res.Err)
		return c.judged(Fail, rt.Finding, rt.Fix)
	}
	return c.judged(Fail, "the licence could not be checked: "+errText(res.Err), "see the network checks")
}
