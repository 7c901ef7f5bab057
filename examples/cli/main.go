// Command cli is a command-line tool that checks its licence on every run,
// in shared mode, prints whether a feature is enabled and how it knew, and
// exits. It shows what shared sessions are for: a tool that runs hundreds
// of times a day holds one seat, and runs that find a live session make no
// network call at all.
//
//	go run ./examples/mockserver -license 'product=demo-product,key=DEMO-KEY,session=10m,features=pro' &
//	export LICENSEKIT_SERVER=http://127.0.0.1:8080 LICENSEKIT_API_KEY=... LICENSEKIT_PUBLIC_KEY=...
//	export LICENSEKIT_PRODUCT=demo-product LICENSEKIT_LICENSE=DEMO-KEY
//	go build -o cli ./examples/cli && for i in $(seq 20); do ./cli; done
//
// Each run prints, for example:
//
//	licence: Active
//	feature pro: enabled
//	how: resumed (the live shared session a previous run left; no network call)
//	state: /home/ada/.config/licensekit-cli/demo-product/lk-4c1f...-shared
//
// "how" is one of:
//
//   - fresh begin: no live shared session existed, so this run began one
//     (register_instance if the machine is new, then begin_session);
//   - resumed: no other run was going on; this one found the live session a
//     previous run left and became its renewer, with no network call;
//   - follower: another run renews the session; this one read the shared
//     state, with no network call;
//   - offline: the server is unreachable and the shared session still
//     grants offline time (grace).
//
// It takes the same server flags and LICENSEKIT_* environment variables as
// the other examples (see quickstart), and needs a real server: runs of a
// tool can only share a session held by a server that outlives them, so
// there is no in-process mock. The state directory must outlive a run too:
// -state-dir or LICENSEKIT_STATE_DIR, or by default a directory for the
// product under the user's configuration directory (os.UserConfigDir). At
// exit the session is left to lapse, so that the next run resumes it;
// -end-on-exit ends it instead when no other run is going on.
//
// -feature names the feature to check (default "pro"). The exit status is 0
// when the licence may be used, 3 when it may not, 1 on an error and 2 on a
// bad command line.
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
)

// Exit statuses.
const (
	exitValid   = 0
	exitError   = 1
	exitUsage   = 2
	exitInvalid = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	feature := fs.String("feature", "pro", "the feature to check")
	endOnExit := fs.Bool("end-on-exit", false, "end the session at exit when no other run is going on (default: leave it to lapse, so that the next run resumes it)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on the licence check")
	var sf serverflags.Flags
	sf.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitValid
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cli: unexpected arguments: %q\n", fs.Args())
		return exitUsage
	}
	sf.FromEnv()
	if sf.Server == "" {
		fmt.Fprintln(stderr, "cli: a licence server is required: -server or LICENSEKIT_SERVER (try examples/mockserver)")
		return exitUsage
	}
	cfg, err := sf.Config()
	if err != nil {
		fmt.Fprintln(stderr, "cli:", err)
		return exitUsage
	}
	if cfg.StateDir == "" {
		if cfg.StateDir, err = serverflags.DefaultStateDir("licensekit-cli", cfg.ProductGUID); err != nil {
			fmt.Fprintln(stderr, "cli:", err)
			return exitError
		}
	}
	cfg.UserName, cfg.UserEmail = "CLI User", "cli@example.com"

	c, err := license.New(cfg, license.WithSharedSession(license.SharedSession{EndOnLastClose: *endOnExit}))
	if err != nil {
		fmt.Fprintln(stderr, "cli:", err)
		return exitUsage
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(closeCtx); err != nil {
			fmt.Fprintln(stderr, "cli: close:", err)
		}
	}()
	startCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := c.Start(startCtx); err != nil {
		fmt.Fprintln(stderr, "cli: licence check failed:", err)
		return exitError
	}

	st := c.Status()
	fmt.Fprintf(stdout, "licence: %s\n", st.State)
	enabled := "disabled"
	if c.HasFeature(*feature) {
		enabled = "enabled"
	}
	fmt.Fprintf(stdout, "feature %s: %s\n", *feature, enabled)
	fmt.Fprintf(stdout, "how: %s\n", how(c.Shared().Start))
	fmt.Fprintf(stdout, "state: %s\n", c.Shared().Path)
	if st.ConfigFault != nil {
		// The server answered but did not authenticate this client: a
		// configuration fault for the vendor, while the customer keeps the
		// grace the saved session grants.
		fmt.Fprintln(stderr, "cli: configuration fault:", st.ConfigFault)
	}
	if !st.Valid() {
		return exitInvalid
	}
	return exitValid
}

// how says in words how Start knew.
func how(s license.SharedStart) string {
	switch s {
	case license.StartBegan:
		return "fresh begin (no live shared session; this run began one)"
	case license.StartResumed:
		return "resumed (the live shared session a previous run left; no network call)"
	case license.StartFollowed:
		return "follower (another run renews the shared session; no network call)"
	case license.StartOffline:
		return "offline (server unreachable; the shared session's grace period applies)"
	}
	return "unknown"
}
