// Command offline-grace shows, in about 25 seconds, how a licence client
// behaves when its licence server goes away: the session stays valid until it
// lapses, the grace period the server granted keeps the product running,
// the client reconnects by itself when the server returns, and a long outage
// ends in Expired, which closes the product's feature gate.
//
//	go run ./examples/offline-grace
//
// It is scripted against an in-process mock server (package licensetest)
// whose licence has a 4 s session and an 8 s grace period:
//
//  1. The client starts: Active.
//  2. The server goes down. Renewals fail, but the state stays Active until
//     the session lapses.
//  3. Grace, with a live countdown to the grace deadline.
//  4. The server comes back; at its next retry the client is Active again.
//  5. A second outage outlasts the grace period: Expired, and
//     HasFeature("pro") and Valid() turn false.
//
// During the second outage, once the client is in Grace, the program
// simulates a process restart (on by default; -restart=false keeps one
// client throughout): it closes the client and starts a new one on the same
// state directory while the server is still down. Start succeeds offline, in
// Grace, with the same grace deadline as before, read from the persisted
// state; the two deadlines are printed side by side. A restart never buys
// more offline time.
//
// The output is a timeline with times relative to the start. On a terminal
// the countdown redraws one line; when the output is not a terminal (a pipe,
// a file), it prints a plain status line every second instead. Lines from
// the first and the restarted process are marked [1] and [2].
//
// -speed 2 or -speed 4 divides every timing (4: a 1 s session and a 2 s
// grace period), for tests. The client is tuned for the demo: one HTTP
// attempt per renewal, a short first retry wait, and retry jitter pinned to
// its low end so that every run prints the same timeline. A product keeps
// the defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The mock's licence and the demo's timings at speed 1.
const (
	product      = "demo-product"
	licenseKey   = "DEMO-KEY"
	features     = "export,pro"
	baseSession  = 4 * time.Second
	baseGrace    = 8 * time.Second
	baseBackoff  = 400 * time.Millisecond // the client's first retry wait
	closeTimeout = 5 * time.Second
)

// main runs the demo; SIGINT or SIGTERM interrupts it.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "offline-grace:", err)
		os.Exit(1)
	}
}

// run parses args and runs the scripted demo, writing the timeline to
// stdout. It returns an error if the client does not behave as the script
// expects, or if ctx ends first.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("offline-grace", flag.ContinueOnError)
	fs.SetOutput(stdout)
	speed := fs.Int("speed", 1, "divide every timing by this factor: 1, 2 or 4")
	restart := fs.Bool("restart", true, "restart the process during the second outage")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *speed != 1 && *speed != 2 && *speed != 4 {
		return fmt.Errorf("-speed %d: want 1, 2 or 4 (durations must stay whole seconds)", *speed)
	}

	dir, err := os.MkdirTemp("", "licensekit-offline-grace-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	d := &demo{
		tl:      newTimeline(stdout),
		srv:     srv,
		dir:     dir,
		session: baseSession / time.Duration(*speed),
		grace:   baseGrace / time.Duration(*speed),
		backoff: baseBackoff / time.Duration(*speed),
		restart: *restart,
	}
	err = srv.AddLicense(licensetest.License{ProductGUID: product, Key: licenseKey,
		SessionDuration: d.session, GracePeriod: d.grace, Features: features})
	if err != nil {
		return err
	}
	d.tl.note("in-process mock server at %s", srv.URL)
	d.tl.note("licence %s: session %s, grace %s, features %q; state in %s", licenseKey, d.session, d.grace, features, dir)
	if d.restart {
		d.tl.note("[1] is the first process, [2] the one restarted during the second outage")
	}
	return d.script(ctx)
}

// demo is the scripted run.
type demo struct {
	tl                      *timeline
	srv                     *licensetest.Server
	dir                     string
	session, grace, backoff time.Duration
	restart                 bool
}

// newClient builds the client of process n on the shared state directory.
func (d *demo) newClient(n int) (*license.Client, error) {
	return license.New(license.Config{
		ServerURL:       d.srv.URL,
		APIKey:          d.srv.Info().APIKey,
		ServerPublicKey: d.srv.Info().PublicKey.EncodeBase64(),
		ProductGUID:     product,
		LicenseKey:      licenseKey,
		StateDir:        d.dir,
	},
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

// stateIs matches a change to state s.
func stateIs(s license.State) func(record) bool {
	return func(r record) bool { return r.e.Type == license.EventStateChanged && r.e.State == s }
}

// typeIs matches events of type t.
func typeIs(t license.EventType) func(record) bool {
	return func(r record) bool { return r.e.Type == t }
}

// record is one event and the process (1 or 2) whose client sent it.
type record struct {
	client int
	e      license.Event
}

// timeline prints timed lines and a live status line, and keeps the events
// so that the script can wait for them. It is safe for concurrent use.
type timeline struct {
	start time.Time
	tty   bool // redraw the status line in place

	mu      sync.Mutex
	w       io.Writer
	recs    []record
	changed chan struct{} // closed and replaced at each event
	shown   int           // width of the status line on screen (tty only)
}

// newTimeline starts a timeline now. It redraws the status line only when
// w is a terminal.
func newTimeline(w io.Writer) *timeline {
	return &timeline{start: time.Now(), tty: isTerminal(w), w: w, changed: make(chan struct{})}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// rel renders t relative to the start, such as "+12.33s".
func (tl *timeline) rel(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%+.2fs", t.Sub(tl.start).Seconds())
}

// note prints an untimed header line.
func (tl *timeline) note(format string, args ...any) {
	tl.write(fmt.Sprintf("             "+format, args...))
}

// phase prints a phase heading.
func (tl *timeline) phase(title string) {
	tl.write(fmt.Sprintf("%-8s ---- %s", tl.rel(time.Now()), title))
}

// line prints a line timed now; client is 1 or 2 for a client's line, 0
// for the script's.
func (tl *timeline) line(client int, kind, format string, args ...any) {
	tl.at(time.Now(), client, kind, format, args...)
}

// at prints a line timed at t.
func (tl *timeline) at(t time.Time, client int, kind, format string, args ...any) {
	tag := "   "
	if client > 0 {
		tag = fmt.Sprintf("[%d]", client)
	}
	tl.write(fmt.Sprintf("%-8s %s %-8s %s", tl.rel(t), tag, kind, fmt.Sprintf(format, args...)))
}

// write prints one full line, first erasing the status line on a terminal.
func (tl *timeline) write(s string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.shown > 0 {
		fmt.Fprintf(tl.w, "\r%s\r", strings.Repeat(" ", tl.shown))
		tl.shown = 0
	}
	fmt.Fprintln(tl.w, s)
}

// status shows the live status: redrawn in place on a terminal, a plain
// line otherwise.
func (tl *timeline) status(s string) {
	if !tl.tty {
		tl.line(0, "status", "%s", s)
		return
	}
	s = fmt.Sprintf("%-8s     status   %s", tl.rel(time.Now()), s)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := utf8.RuneCountInString(s)
	fmt.Fprintf(tl.w, "\r%s%s", s, strings.Repeat(" ", max(0, tl.shown-n)))
	tl.shown = max(n, tl.shown)
}

// handler returns the event handler of process n's client.
func (tl *timeline) handler(n int) license.EventHandler {
	return func(e license.Event) {
		tl.event(n, e)
		tl.mu.Lock()
		tl.recs = append(tl.recs, record{client: n, e: e})
		close(tl.changed)
		tl.changed = make(chan struct{})
		tl.mu.Unlock()
	}
}

// event prints e.
func (tl *timeline) event(n int, e license.Event) {
	switch e.Type {
	case license.EventStateChanged:
		msg := e.Previous.String() + " → " + e.State.String()
		if e.Reason != nil && e.State != license.Ended {
			msg += " (" + why(e.Reason) + ")"
		}
		tl.at(e.Time, n, "state", "%s", msg)
	case license.EventRenewed:
		tl.at(e.Time, n, "renewed", "session until %s, next renewal at %s", tl.rel(e.SessionExpiry), tl.rel(e.NextTry))
	case license.EventRenewFailed:
		tl.at(e.Time, n, "failed", "renewal attempt %d in %s: %s; next try at %s, offline allowance left %s",
			e.Attempt, e.State, why(e.Reason), tl.rel(e.NextTry), e.GraceLeft.Round(10*time.Millisecond))
	case license.EventEnded:
		if e.Reason != nil {
			tl.at(e.Time, n, "closed", "end_session failed: %v", e.Reason)
		} else {
			tl.at(e.Time, n, "closed", "client closed")
		}
	default:
		msg := e.Detail
		if e.Reason != nil {
			msg += " (" + e.Reason.Error() + ")"
		}
		tl.at(e.Time, n, strings.ToLower(e.Type.String()), "%s", msg)
	}
}

// why names the category of a state change's or failure's reason.
func why(err error) string {
	switch {
	case errors.Is(err, license.ErrUnreachable):
		return "server unreachable"
	case errors.Is(err, license.ErrGraceExpired):
		return "grace period spent"
	default:
		return err.Error()
	}
}

// errTimeout reports that an awaited event did not come in time.
var errTimeout = errors.New("timed out")

// await waits for the first event at index from or later that matches
// pred, showing the live status from show (if not nil) meanwhile. It
// returns the event and the index after it. what names the event in errors.
func (tl *timeline) await(ctx context.Context, from int, what string, pred func(record) bool, timeout time.Duration, show func() string) (license.Event, int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	every := time.Second
	if tl.tty {
		every = 100 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		tl.mu.Lock()
		for ; pred != nil && from < len(tl.recs); from++ {
			if r := tl.recs[from]; pred(r) {
				tl.mu.Unlock()
				return r.e, from + 1, nil
			}
		}
		changed := tl.changed
		tl.mu.Unlock()
		select {
		case <-changed:
		case <-tick.C:
			if show != nil {
				tl.status(show())
			}
		case <-deadline.C:
			return license.Event{}, from, fmt.Errorf("waiting for %s: %w after %s", what, errTimeout, timeout)
		case <-ctx.Done():
			return license.Event{}, from, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// sleep waits for d, showing the live status from show meanwhile.
func (tl *timeline) sleep(ctx context.Context, d time.Duration, show func() string) error {
	_, _, err := tl.await(ctx, 0, "", nil, d, show)
	if errors.Is(err, errTimeout) {
		return nil
	}
	return err
}
