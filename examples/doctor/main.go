// Command doctor diagnoses a licence client on this machine, as a vendor's
// "myproduct license doctor" command would, and can write a support bundle
// for the vendor.
//
//	go run ./examples/doctor
//
// With no server flags it starts an in-process mock licence server (package
// licensetest), runs the product once against it (so that there is saved
// state to examine), stops it, and diagnoses the same configuration: a
// complete report in which every check runs.
//
// Output is one line per check with a verdict column (ok, warn, fail,
// skipped), and the suggested fix under each check that is not ok:
//
//	CHECK        VERDICT  FINDING
//	config       ok       license.New accepts the configuration
//	dns          ok       127.0.0.1 is an IP address; no lookup needed
//	...
//
// Flags:
//
//	-json         print the report as JSON instead
//	-v            list each check's evidence too
//	-bundle FILE  also write a support bundle (JSON, no secrets) to FILE
//	-compare FILE compare the report with an earlier bundle FILE
//	              (the fingerprint check names what changed)
//	-full         also register, begin and end a real session (takes a seat
//	              for a moment)
//	-timeout D    bound each network check (default 10s)
//
// and the server flags every example shares (-server, -api-key, -public-key,
// -shared-secret, -product, -license, -state-dir, each with a LICENSEKIT_*
// environment fallback; see examples/quickstart).
//
// The exit code is 0 when no check failed, 1 when a check failed, and 2 for
// bad flags or a bundle that cannot be written.
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
	"github.com/licensekit/licensekit-go/license/doctor"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The in-process mock's licence.
const (
	mockProduct = "demo-product"
	mockLicense = "DEMO-KEY"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errFailed reports that a check failed.
var errFailed = errors.New("a check failed")

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := diagnose(ctx, args, stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintln(stderr, "doctor:", err)
	return 2
}

func diagnose(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stdout)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	verbose := fs.Bool("v", false, "list each check's evidence")
	bundle := fs.String("bundle", "", "write a support bundle to this file")
	compare := fs.String("compare", "", "an earlier bundle to compare with (the fingerprint check names what changed)")
	full := fs.Bool("full", false, "also register, begin and end a real session")
	timeout := fs.Duration("timeout", 10*time.Second, "bound for each network check")
	var sf serverflags.Flags
	sf.Register(fs)
	if err := sf.Parse(fs, args); err != nil {
		return err
	}

	opts := []doctor.Option{doctor.WithTimeout(*timeout)}
	if *full {
		opts = append(opts, doctor.Full())
	}
	if *compare != "" {
		f, err := os.Open(*compare)
		if err != nil {
			return fmt.Errorf("-compare: %w", err)
		}
		b, err := doctor.ReadBundle(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("-compare: %w", err)
		}
		opts = append(opts, doctor.WithBaseline(b))
	}

	var cfg license.Config
	if sf.Server == "" {
		var cleanup func()
		var err error
		cfg, cleanup, err = mockRun(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		if !*asJSON {
			fmt.Fprintf(stdout, "diagnosing a run against the in-process mock server (state in %s)\n", cfg.StateDir)
		}
	} else {
		var err error
		if cfg, err = sf.Config(); err != nil {
			return err
		}
	}

	rep, err := doctor.Run(ctx, cfg, opts...)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else if err := rep.WriteText(stdout, *verbose); err != nil {
		return err
	}
	if *bundle != "" {
		if err := writeBundle(*bundle, rep); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(stdout, "support bundle written to %s (no secrets; identifiers salted and hashed)\n", *bundle)
		}
	}
	if rep.Failed() {
		return errFailed
	}
	return nil
}

// mockRun starts the in-process mock, runs the product once against it so
// that a state directory with saved state exists, and returns the
// configuration to diagnose. cleanup stops the mock and removes the state.
func mockRun(ctx context.Context) (license.Config, func(), error) {
	dir, err := os.MkdirTemp("", "licensekit-doctor-")
	if err != nil {
		return license.Config{}, nil, err
	}
	srv, cfg, err := serverflags.StartMock(licensetest.License{ProductGUID: mockProduct, Key: mockLicense,
		SessionDuration: time.Hour, GracePeriod: 24 * time.Hour, Features: "export,pro"})
	if err != nil {
		os.RemoveAll(dir)
		return license.Config{}, nil, err
	}
	cleanup := func() { srv.Close(); os.RemoveAll(dir) }
	cfg.StateDir = dir
	c, err := license.New(cfg)
	if err == nil {
		if err = c.Start(ctx); err == nil {
			err = c.Close(ctx)
		} else {
			_ = c.Close(ctx)
		}
	}
	if err != nil {
		cleanup()
		return license.Config{}, nil, fmt.Errorf("the mock product run failed: %w", err)
	}
	return cfg, cleanup, nil
}

func writeJSON(w io.Writer, rep *doctor.Report) error {
	enc := jsonEncoder(w)
	return enc.Encode(rep)
}

func writeBundle(name string, rep *doctor.Report) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("-bundle: %w", err)
	}
	if err := rep.WriteBundle(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
