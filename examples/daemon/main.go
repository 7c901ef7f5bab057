// Command daemon is the pattern for a long-running service that holds a
// licence: it starts the licence client, gates every unit of work on the
// licence's status, logs as JSON through log/slog, and on SIGINT or SIGTERM
// closes the client within a deadline, which ends the session on the server.
//
//	go run ./examples/daemon              # 5 s against an in-process mock
//	go run ./examples/daemon -for 0       # until SIGINT or SIGTERM
//	go run ./examples/daemon -for 8s -mock-outage 1s
//
// Every log line is one JSON object on stdout. The client's own logs (state
// changes as "licence state changed" at Info or Warn, failed renewals at
// Warn, requests at Debug with -v) carry "component":"license"; the service
// logs the client's other events as "licence event" (each state change and
// failed renewal appears once, from the client's own log, in order) and each
// unit of work as "work unit done" or, when the licence may not be used,
// "skipping work".
//
// With no server flags it runs against an in-process mock server (package
// licensetest) whose licence has a 2 s session and a 3 s grace period.
// -mock-outage takes that server down after the given time, so that the
// licence goes through Grace to Expired and the work gate closes. Given
// -server it uses that server instead; the server flags and their
// environment variables are those of the quickstart example
// (LICENSEKIT_SERVER, LICENSEKIT_API_KEY, LICENSEKIT_PUBLIC_KEY,
// LICENSEKIT_SHARED_SECRET, LICENSEKIT_PRODUCT, LICENSEKIT_LICENSE,
// LICENSEKIT_STATE_DIR).
//
// The service keeps running while the licence is Expired, skipping work,
// because the client keeps trying and returns to Active when the server
// answers. It stops with an error when the server refuses the licence.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	mockProduct = "demo-product"
	mockLicense = "DEMO-KEY"
	mockSession = 2 * time.Second
	mockGrace   = 3 * time.Second
)

// Shutdown bounds.
const (
	startTimeout = 30 * time.Second
	closeTimeout = 10 * time.Second
)

// errRunFor is the cause of a shutdown because -for has passed.
var errRunFor = errors.New("-for has passed")

// main runs the service; run handles the signals.
func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "daemon:", err)
		os.Exit(1)
	}
}

// run is the service: it parses args, logs JSON lines to stdout, and
// returns after SIGINT, SIGTERM, the end of ctx or -for, once the licence
// client is closed. It returns an error if the licence cannot be started or
// is refused.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	fs.SetOutput(stdout)
	runFor := fs.Duration("for", 5*time.Second, "exit after this long (0 = until SIGINT or SIGTERM)")
	every := fs.Duration("work", 500*time.Millisecond, "interval between units of work")
	outage := fs.Duration("mock-outage", 0, "take the in-process mock server down after this long (0 = never)")
	verbose := fs.Bool("v", false, "log at debug level, including each request of the client")
	var sf serverflags.Flags
	sf.Register(fs)
	if err := sf.Parse(fs, args); err != nil {
		return err
	}
	if *every <= 0 {
		return errors.New("-work must be positive")
	}

	// SIGINT and SIGTERM cancel ctx; context.Cause names the signal.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, *runFor, errRunFor)
		defer cancel()
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))

	var cfg license.Config
	var srv *licensetest.Server // the in-process mock, or nil
	if sf.Server == "" {
		var err error
		srv, cfg, err = serverflags.StartMock(licensetest.License{ProductGUID: mockProduct, Key: mockLicense,
			SessionDuration: mockSession, GracePeriod: mockGrace, Features: "pro"})
		if err != nil {
			return err
		}
		defer srv.Close()
		log.Info("using the in-process mock server", "url", srv.URL, "session", mockSession.String(),
			"grace", mockGrace.String())
	} else {
		var err error
		if cfg, err = sf.Config(); err != nil {
			return err
		}
	}
	if cfg.StateDir == "" {
		dir, err := os.MkdirTemp("", "licensekit-daemon-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.StateDir = dir
	}
	log.Info("starting", "config", cfg) // Config redacts its secrets

	c, err := license.New(cfg,
		license.WithLogger(log.With("component", "license")),
		license.WithEventHandler(func(e license.Event) { logEvent(log, e) }))
	if err != nil {
		return err
	}
	startCtx, cancelStart := context.WithTimeout(ctx, startTimeout)
	err = c.Start(startCtx)
	cancelStart()
	if err != nil {
		_ = c.Close(context.Background())
		log.Error("licence start failed", "error", err)
		return fmt.Errorf("start: %w", err)
	}

	runErr := work(ctx, log, c, *every, srv, *outage)

	log.Info("shutting down", "cause", context.Cause(ctx), "close_timeout", closeTimeout.String())
	closeCtx, cancelClose := context.WithTimeout(context.Background(), closeTimeout)
	defer cancelClose()
	if err := c.Close(closeCtx); err != nil {
		log.Warn("end_session failed; the next start ends the session", "error", err)
	}
	log.Info("stopped", "state", c.Status().State.String())
	return runErr
}

// work runs units of work every interval until ctx is done, each gated on
// the licence's status. It returns an error only when the server refused
// the licence. With a mock server srv and a positive outage, it takes srv
// down after outage.
func work(ctx context.Context, log *slog.Logger, c *license.Client, every time.Duration,
	srv *licensetest.Server, outage time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var down <-chan time.Time
	if srv != nil && outage > 0 {
		t := time.NewTimer(outage)
		defer t.Stop()
		down = t.C
	}
	unit, done, skipped := 0, 0, 0
	defer func() { log.Info("work loop ended", "units_done", done, "units_skipped", skipped) }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-down:
			srv.SetDown(true)
			log.Warn("mock server taken down (-mock-outage)")
			continue
		case <-tick.C:
		}
		unit++
		st := c.Status() // lock-free: cheap enough for every request a service handles
		if st.State == license.Refused {
			log.Error("licence refused by the server; stopping", "reason", st.Reason)
			return fmt.Errorf("licence refused: %w", st.Reason)
		}
		if !st.Valid() {
			skipped++
			log.Warn("skipping work", "unit", unit, "state", st.State.String(), "reason", st.Reason)
			continue
		}
		done++
		log.Info("work unit done", "unit", unit, "state", st.State.String(), "pro", st.HasFeature("pro"))
	}
}

// logEvent logs one client event as a JSON line. State changes and failed
// renewals are left out: the client logs those itself, synchronously,
// through WithLogger, and logging them here too would print each twice,
// the second copy late (events are delivered from their own goroutine).
func logEvent(log *slog.Logger, e license.Event) {
	if e.Type == license.EventStateChanged || e.Type == license.EventRenewFailed {
		return
	}
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("event", e.Type.String()), slog.String("state", e.State.String())}
	switch e.Type {
	case license.EventRenewed:
		attrs = append(attrs, slog.Time("session_expiry", e.SessionExpiry), slog.Time("next_try", e.NextTry))
	case license.EventStateDiscarded, license.EventDeprecated:
		level = slog.LevelWarn
	}
	if e.Reason != nil {
		attrs = append(attrs, slog.String("reason", e.Reason.Error()))
	}
	if e.Detail != "" {
		attrs = append(attrs, slog.String("detail", e.Detail))
	}
	log.LogAttrs(context.Background(), level, "licence event", attrs...)
}
