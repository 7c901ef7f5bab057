// Command quickstart runs one product instance's licensing from start to
// Close and prints it as a timeline. It shows a healthy run, with no outage;
// examples/offline-grace shows an outage and the grace period.
//
//	go run ./examples/quickstart
//
// With no server flags it starts an in-process mock licence server (package
// licensetest) on a loopback port, with a licence whose session lasts 4 s and
// whose grace period is 8 s, granting the features "export" and "pro". The
// client registers this machine, begins a session, renews it in the
// background every few seconds, and prints its features and feature checks.
// After -for (default 10s) or on Ctrl-C it calls Close, which ends the
// session on the server. Every event and state change is printed with its
// time relative to the start:
//
//	+0.01s   state    Idle → Active
//	+1.35s   renewed  session until +5.35s, next renewal at +2.69s
//	+10.00s  state    Active → Ended
//
// The state is kept in a temporary directory that is removed at exit.
//
// # A real server
//
// Given -server, it does the same against that server and starts no mock:
//
//	go run ./examples/quickstart -server https://licensing.example.com/api/v2 \
//		-api-key "$KEY" -public-key @server-public.pem -product my-app -license ABCD-1234
//
// Every server flag falls back to an environment variable when it is not
// given: LICENSEKIT_SERVER, LICENSEKIT_API_KEY, LICENSEKIT_PUBLIC_KEY,
// LICENSEKIT_SHARED_SECRET, LICENSEKIT_PRODUCT, LICENSEKIT_LICENSE and
// LICENSEKIT_STATE_DIR. Prefer the environment or @file for secrets: a
// command line is visible to other users of the machine. -public-key takes
// the server's public key as PEM or base64; -shared-secret takes standard
// base64 of at least 32 bytes (as the mockserver example prints it) and
// selects shared-secret mode instead. Both accept @file to read the value
// from a file. Without -state-dir the state goes to a temporary directory.
//
// -for 0 runs until interrupted.
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

	"github.com/licensekit/licensekit-go/examples/internal/serverflags"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The in-process mock's licence.
const (
	mockProduct  = "demo-product"
	mockLicense  = "DEMO-KEY"
	mockSession  = 4 * time.Second
	mockGrace    = 8 * time.Second
	mockFeatures = "export,pro"
)

// main runs the quickstart until -for has passed or SIGINT/SIGTERM arrives.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run is the whole program: it parses args, runs one client's lifecycle
// and writes the timeline to stdout. It returns when ctx is done, -for has
// passed or the licence became unusable (refused, or grace spent), after
// closing the client. The error says why the licence became unusable or
// why end_session failed.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stdout)
	runFor := fs.Duration("for", 10*time.Second, "stop after this long (0 = until interrupted)")
	var sf serverflags.Flags
	sf.Register(fs)
	if err := sf.Parse(fs, args); err != nil {
		return err
	}

	tl := newTimeline(stdout)
	var cfg license.Config
	var srv *licensetest.Server // the in-process mock, or nil
	if sf.Server == "" {
		srv = licensetest.NewServer(nil)
		defer srv.Close()
		err := srv.AddLicense(licensetest.License{ProductGUID: mockProduct, Key: mockLicense,
			SessionDuration: mockSession, GracePeriod: mockGrace, Features: mockFeatures})
		if err != nil {
			return err
		}
		cfg = license.Config{
			ServerURL:       srv.URL,
			APIKey:          srv.Info().APIKey,
			ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID:     mockProduct,
			LicenseKey:      mockLicense,
		}
		tl.note("in-process mock server at %s", srv.URL)
		tl.note("licence %s of product %s: session %s, grace %s, features %q",
			mockLicense, mockProduct, mockSession, mockGrace, mockFeatures)
	} else {
		var err error
		if cfg, err = sf.Config(); err != nil {
			return err
		}
		tl.note("licence server %s, product %s", cfg.ServerURL, cfg.ProductGUID)
	}
	cfg.UserName, cfg.UserEmail = "Quickstart User", "quickstart@example.com"
	if sf.Server == "" || sf.StateDir == "" {
		dir, err := os.MkdirTemp("", "licensekit-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.StateDir = dir
		tl.note("state in %s (removed at exit)", dir)
	}

	c, err := license.New(cfg, license.WithEventHandler(tl.event))
	if err != nil {
		return err
	}
	tl.line("start", "registering this machine and beginning a session")
	if err := c.Start(ctx); err != nil {
		_ = c.Close(context.Background())
		return fmt.Errorf("start: %w", err)
	}
	tl.waitActive(time.Second)

	st := c.Status()
	tl.line("started", "instance %s; session until %s, grace until %s",
		st.InstanceGUID, tl.rel(st.SessionExpiry), tl.rel(st.GraceDeadline))
	tl.line("features", "%q, parsed as %v", st.Features, st.FeatureSet)
	tl.line("gate", "HasFeature(%q)=%t  HasFeature(%q)=%t  HasFeature(%q)=%t  Valid()=%t",
		"export", c.HasFeature("export"), "pro", c.HasFeature("pro"),
		"enterprise", c.HasFeature("enterprise"), c.Valid())

	var timeUp <-chan time.Time
	if *runFor > 0 {
		timer := time.NewTimer(*runFor)
		defer timer.Stop()
		timeUp = timer.C
	}
	var lost error // why the licence became unusable, if it did
	select {
	case <-ctx.Done():
		tl.line("stop", "interrupted; closing the client")
	case <-timeUp:
		tl.line("stop", "-for %s has passed; closing the client", *runFor)
	case <-c.Done(): // closed only when the server refused the licence
		lost = c.Err()
		tl.line("stop", "the licence can no longer be used: %v", lost)
	case <-tl.expired: // grace spent offline; the client would keep trying
		lost = c.Status().Reason
		tl.line("stop", "the licence can no longer be used: %v", lost)
	}

	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closeErr := c.Close(closeCtx)
	if srv != nil {
		tl.line("server", "%d live sessions after Close", srv.SeatsInUse(mockProduct, mockLicense))
	}
	tl.line("done", "%d renewals; final state %s", tl.renewals(), c.Status().State)
	return errors.Join(lost, closeErr)
}

// timeline prints a client's events, and the program's own notes, one line
// each with the time since the start. It is safe for concurrent use: the
// event handler and the main goroutine both print.
type timeline struct {
	start time.Time

	mu      sync.Mutex
	w       io.Writer
	renewed int
	active  chan struct{} // closed at the first change to Active
	expired chan struct{} // closed at the first change to Expired
}

// newTimeline starts a timeline at the current time.
func newTimeline(w io.Writer) *timeline {
	return &timeline{start: time.Now(), w: w, active: make(chan struct{}), expired: make(chan struct{})}
}

// rel renders t relative to the start: "+4.05s" under a minute, else a
// duration to the second, such as "+24h10m0s".
func (tl *timeline) rel(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return relative(t.Sub(tl.start))
}

// relative renders an offset from the start for people.
func relative(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	if d < time.Minute {
		return fmt.Sprintf("%s%.2fs", sign, d.Seconds())
	}
	return sign + d.Round(time.Second).String()
}

// note prints an untimed header line.
func (tl *timeline) note(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	fmt.Fprintf(tl.w, "         "+format+"\n", args...)
}

// line prints a line timed now.
func (tl *timeline) line(kind, format string, args ...any) {
	tl.at(time.Now(), kind, format, args...)
}

// at prints a line timed at t.
func (tl *timeline) at(t time.Time, kind, format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	fmt.Fprintf(tl.w, "%-8s %-8s %s\n", tl.rel(t), kind, fmt.Sprintf(format, args...))
}

// event is the client's license.EventHandler.
func (tl *timeline) event(e license.Event) {
	switch e.Type {
	case license.EventStateChanged:
		msg := e.Previous.String() + " → " + e.State.String()
		if e.Reason != nil && e.State != license.Ended {
			msg += " (" + e.Reason.Error() + ")"
		}
		tl.at(e.Time, "state", "%s", msg)
		switch e.State {
		case license.Active:
			tl.signal(tl.active)
		case license.Expired:
			tl.signal(tl.expired)
		}
	case license.EventRenewed:
		tl.mu.Lock()
		tl.renewed++
		tl.mu.Unlock()
		tl.at(e.Time, "renewed", "session until %s, next renewal at %s", tl.rel(e.SessionExpiry), tl.rel(e.NextTry))
	case license.EventRenewFailed:
		tl.at(e.Time, "failed", "renewal attempt %d: %v; next try at %s, grace left %s",
			e.Attempt, e.Reason, tl.rel(e.NextTry), e.GraceLeft.Round(10*time.Millisecond))
	case license.EventControlOptionsChanged:
		tl.at(e.Time, "options", "session %s, grace %s", e.SessionDuration, e.GracePeriod)
	case license.EventOrphanEnded:
		if e.Reason != nil {
			tl.at(e.Time, "orphan", "could not end the session a previous run left: %v", e.Reason)
		} else {
			tl.at(e.Time, "orphan", "ended the session a previous run left open")
		}
	case license.EventEnded:
		if e.Reason != nil {
			tl.at(e.Time, "closed", "end_session failed: %v (the next start ends it)", e.Reason)
		} else {
			tl.at(e.Time, "closed", "client closed; %s", e.Detail)
		}
	default:
		msg := e.Detail
		if e.Reason != nil {
			msg += " (" + e.Reason.Error() + ")"
		}
		tl.at(e.Time, strings.ToLower(e.Type.String()), "%s", msg)
	}
}

// signal closes ch once.
func (tl *timeline) signal(ch chan struct{}) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// waitActive waits up to d for the event handler to print the change to
// Active, so that the lines after Start come after it.
func (tl *timeline) waitActive(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-tl.active:
	case <-timer.C:
	}
}

// renewals returns how many renewals the timeline saw.
func (tl *timeline) renewals() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.renewed
}
