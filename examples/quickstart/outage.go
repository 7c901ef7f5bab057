package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The outage demo's timings at speed 1.
const (
	baseSession  = 4 * time.Second
	baseGrace    = 8 * time.Second
	baseBackoff  = 400 * time.Millisecond // the client's first retry wait
	closeTimeout = 5 * time.Second
)

// runOutage runs the scripted outage demo (-outage) at the given speed
// against an in-process mock server. It returns an error if the client
// does not behave as the script expects, or if ctx ends first.
func runOutage(ctx context.Context, tl *timeline, speed int, restart bool) error {
	dir, err := os.MkdirTemp("", "licensekit-outage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &demo{
		tl:      tl,
		session: baseSession / time.Duration(speed),
		grace:   baseGrace / time.Duration(speed),
		backoff: baseBackoff / time.Duration(speed),
		restart: restart,
	}
	d.srv, d.cfg, err = startMock(tl, d.session, d.grace)
	if err != nil {
		return err
	}
	defer d.srv.Close()
	d.cfg.StateDir = dir
	tl.note("state in %s (removed at exit)", dir)
	if d.restart {
		tl.note("[1] is the first process, [2] the one restarted during the second outage")
	}
	return d.script(ctx)
}

// demo is the scripted run.
type demo struct {
	tl                      *timeline
	srv                     *licensetest.Server
	cfg                     license.Config
	session, grace, backoff time.Duration
	restart                 bool
}

// newClient builds the client of process n on the shared state directory.
func (d *demo) newClient(n int) (*license.Client, error) {
	return license.New(d.cfg,
		license.WithEventHandler(d.tl.handler(n)),
		license.WithRetry(license.Retry{Attempts: 1, AttemptTimeout: time.Second, RenewBackoff: d.backoff}),
		license.WithTestHooks(license.TestHooks{Rand: func() float64 { return 0 }}),
	)
}

// closeClient closes c within closeTimeout.
func closeClient(c *license.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return c.Close(ctx)
}

// script runs the five phases and the restart.
func (d *demo) script(ctx context.Context) error {
	tl := d.tl
	next := 0 // index of the first event not yet awaited

	tl.phase("1. online: Start")
	c1, err := d.newClient(1)
	if err != nil {
		return err
	}
	defer closeClient(c1)
	if err := c1.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if _, next, err = tl.await(ctx, next, "Active", stateIs(license.Active), d.session, nil); err != nil {
		return err
	}
	d.gate(c1)
	if _, next, err = tl.await(ctx, next, "a renewal", typeIs(license.EventRenewed), d.session, nil); err != nil {
		return err
	}

	tl.phase("2. the server goes down")
	d.srv.SetDown(true)
	st := c1.Status()
	tl.line(0, "server", "down: connections refused; the session stays valid until %s", tl.rel(st.SessionExpiry))
	if _, next, err = tl.await(ctx, next, "Grace", stateIs(license.Grace), d.session+d.grace, d.show(c1)); err != nil {
		return err
	}

	tl.phase("3. grace: the licence stays usable while offline")
	st = c1.Status()
	tl.line(0, "grace", "usable until the grace deadline %s", tl.rel(st.GraceDeadline))
	d.gate(c1)
	failed, next, err := tl.await(ctx, next, "a retry in Grace", func(r record) bool {
		return r.e.Type == license.EventRenewFailed && r.e.State == license.Grace
	}, d.grace, d.show(c1))
	if err != nil {
		return err
	}
	if !failed.NextTry.Before(st.GraceDeadline) {
		return fmt.Errorf("the next retry (%s) is not before the grace deadline (%s); cannot show the recovery",
			tl.rel(failed.NextTry), tl.rel(st.GraceDeadline))
	}
	// Bring the server back half way to the client's next retry.
	if err := tl.sleep(ctx, time.Until(failed.NextTry)/2, d.show(c1)); err != nil {
		return err
	}

	tl.phase("4. the server is back")
	d.srv.SetDown(false)
	tl.line(0, "server", "up again; the client reconnects at its next retry, %s", tl.rel(failed.NextTry))
	if _, next, err = tl.await(ctx, next, "Active", stateIs(license.Active), d.grace, d.show(c1)); err != nil {
		return err
	}
	d.gate(c1)
	for range 2 { // the reconnecting renewal, then a routine one
		if _, next, err = tl.await(ctx, next, "a renewal", typeIs(license.EventRenewed), d.session, nil); err != nil {
			return err
		}
	}

	tl.phase("5. a second outage, longer than the grace period")
	d.srv.SetDown(true)
	st = c1.Status()
	tl.line(0, "server", "down for good; Active until %s, Grace until %s", tl.rel(st.SessionExpiry), tl.rel(st.GraceDeadline))
	if _, next, err = tl.await(ctx, next, "Grace", stateIs(license.Grace), d.session+d.grace, d.show(c1)); err != nil {
		return err
	}
	c := c1
	if d.restart {
		if c, next, err = d.restartOffline(ctx, c1, next); err != nil {
			return err
		}
		defer closeClient(c)
	}
	if _, _, err = tl.await(ctx, next, "Expired", stateIs(license.Expired), d.grace+time.Second, d.show(c)); err != nil {
		return err
	}
	d.gate(c)
	// Expired is not the end: the client keeps trying and would return to
	// Active if the server answered, so Done stays open; Status says why
	// the licence may not be used.
	select {
	case <-c.Done():
		return fmt.Errorf("the Done channel closed on Expired: %v", c.Err())
	default:
		tl.line(0, "done()", "Done() stays open (Expired can recover); Status().Reason = %v", c.Status().Reason)
	}

	tl.phase("end")
	if err := closeClient(c); err != nil {
		tl.line(0, "close", "%v", err)
	}
	tl.line(0, "done", "final state %s", c.Status().State)
	return nil
}

// restartOffline closes c1 while the server is down, as a stopping process
// would, and starts a new client on the same state directory. The new
// client must start in Grace with c1's grace deadline.
func (d *demo) restartOffline(ctx context.Context, c1 *license.Client, next int) (*license.Client, int, error) {
	tl := d.tl
	before := c1.Status().GraceDeadline
	tl.phase("restart: the process stops and starts again while the server is down")
	if err := closeClient(c1); err != nil {
		tl.line(0, "close", "%v", err)
	}
	c2, err := d.newClient(2)
	if err != nil {
		return nil, next, err
	}
	if err := c2.Start(ctx); err != nil {
		_ = closeClient(c2)
		return nil, next, fmt.Errorf("start after restart: %w", err)
	}
	_, next, err = tl.await(ctx, next, "Grace after the restart", func(r record) bool {
		return r.client == 2 && r.e.Type == license.EventStateChanged && r.e.State == license.Grace
	}, time.Second, nil)
	if err != nil {
		_ = closeClient(c2)
		return nil, next, err
	}
	after := c2.Status().GraceDeadline
	tl.line(0, "restart", "grace deadline before the restart: %-8s (%s)", tl.rel(before), before.Format(time.TimeOnly+".000"))
	tl.line(0, "restart", "grace deadline after the restart:  %-8s (%s)", tl.rel(after), after.Format(time.TimeOnly+".000"))
	if !after.Equal(before) {
		_ = closeClient(c2)
		return nil, next, fmt.Errorf("the restarted client's grace deadline %s differs from %s", after, before)
	}
	tl.line(0, "restart", "same grace deadline: yes, resumed from the persisted state")
	return c2, next, nil
}

// gate prints the product's feature gate for c.
func (d *demo) gate(c *license.Client) {
	pro, valid := c.HasFeature("pro"), c.Valid()
	verdict := "open: pro features run"
	if !pro {
		verdict = "CLOSED: the product locks its pro features"
	}
	d.tl.line(0, "gate", "HasFeature(%q)=%t Valid()=%t: %s", "pro", pro, valid, verdict)
}

// show returns the live status line for c.
func (d *demo) show(c *license.Client) func() string {
	return func() string {
		st := c.Status()
		gate := "gate open"
		if !c.HasFeature("pro") {
			gate = "gate closed"
		}
		switch st.State {
		case license.Active:
			return fmt.Sprintf("Active: session lapses in %.1fs; %s", time.Until(st.SessionExpiry).Seconds(), gate)
		case license.Grace:
			return fmt.Sprintf("Grace: %.1fs left until the grace deadline %s; %s",
				time.Until(st.GraceDeadline).Seconds(), d.tl.rel(st.GraceDeadline), gate)
		default:
			return fmt.Sprintf("%s; %s", st.State, gate)
		}
	}
}
