// Command quickstart runs one product instance's licensing from start to
// Close and prints it as a timeline: a healthy run by default, or, with
// -outage, a scripted outage that shows the grace period.
//
//	go run ./examples/quickstart           # a healthy run
//	go run ./examples/quickstart -outage   # an outage, in about 25 s
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
//
// # An outage (-outage)
//
// With -outage it shows, in about 25 seconds, how a licence client
// behaves when its licence server goes away: the session stays valid until it
// lapses, the grace period the server granted keeps the product running,
// the client reconnects by itself when the server returns, and a long outage
// ends in Expired, which closes the product's feature gate.
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
	outage := fs.Bool("outage", false, "run the scripted outage demo against the in-process mock instead")
	speed := fs.Int("speed", 1, "with -outage: divide every timing by this factor: 1, 2 or 4")
	restart := fs.Bool("restart", true, "with -outage: restart the process during the second outage")
	var sf serverflags.Flags
	sf.Register(fs)
	if err := sf.Parse(fs, args); err != nil {
		return err
	}
	if *speed != 1 && *speed != 2 && *speed != 4 {
		return fmt.Errorf("-speed %d: want 1, 2 or 4 (durations must stay whole seconds)", *speed)
	}
	tl := newTimeline(stdout)
	if *outage {
		if sf.Server != "" {
			return errors.New("-outage runs against the in-process mock only; drop -server")
		}
		return runOutage(ctx, tl, *speed, *restart)
	}

	var cfg license.Config
	var srv *licensetest.Server // the in-process mock, or nil
	if sf.Server == "" {
		var err error
		if srv, cfg, err = startMock(tl, baseSession, baseGrace); err != nil {
			return err
		}
		defer srv.Close()
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

	c, err := license.New(cfg, license.WithEventHandler(tl.handler(0)))
	if err != nil {
		return err
	}
	tl.line(0, "start", "registering this machine and beginning a session")
	if err := c.Start(ctx); err != nil {
		_ = c.Close(context.Background())
		return fmt.Errorf("start: %w", err)
	}
	// Wait for the change to Active to be printed, so that the lines after
	// Start come after it.
	_, _, _ = tl.await(ctx, 0, "Active", stateIs(license.Active), time.Second, nil)

	st := c.Status()
	tl.line(0, "started", "instance %s; session until %s, grace until %s",
		st.InstanceGUID, tl.rel(st.SessionExpiry), tl.rel(st.GraceDeadline))
	tl.line(0, "features", "%q, parsed as %v", st.Features, st.FeatureSet)
	tl.line(0, "gate", "HasFeature(%q)=%t  HasFeature(%q)=%t  HasFeature(%q)=%t  Valid()=%t",
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
		tl.line(0, "stop", "interrupted; closing the client")
	case <-timeUp:
		tl.line(0, "stop", "-for %s has passed; closing the client", *runFor)
	case <-c.Done(): // closed only when the server refused the licence
		lost = c.Err()
		tl.line(0, "stop", "the licence can no longer be used: %v", lost)
	case <-tl.expired: // grace spent offline; the client would keep trying
		lost = c.Status().Reason
		tl.line(0, "stop", "the licence can no longer be used: %v", lost)
	}

	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closeErr := c.Close(closeCtx)
	if srv != nil {
		tl.line(0, "server", "%d live sessions after Close", srv.SeatsInUse(mockProduct, mockLicense))
	}
	tl.line(0, "done", "%d renewals; final state %s", tl.count(typeIs(license.EventRenewed)), c.Status().State)
	return errors.Join(lost, closeErr)
}

// startMock starts the in-process mock server with the demo licence and
// prints where it is.
func startMock(tl *timeline, session, grace time.Duration) (*licensetest.Server, license.Config, error) {
	srv, cfg, err := serverflags.StartMock(licensetest.License{ProductGUID: mockProduct, Key: mockLicense,
		SessionDuration: session, GracePeriod: grace, Features: mockFeatures})
	if err != nil {
		return nil, cfg, err
	}
	tl.note("in-process mock server at %s", srv.URL)
	tl.note("licence %s of product %s: session %s, grace %s, features %q",
		mockLicense, mockProduct, session, grace, mockFeatures)
	return srv, cfg, nil
}
