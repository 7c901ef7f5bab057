// Command offline-activation shows offline activation
// (docs/offline-activation.md): a licence for a machine that never reaches
// the licence server, by files a person carries.
//
// With no subcommand (or "demo") it runs the whole ceremony against an
// in-process mock server in one run, printing what a person would see, the
// size of each file and the time of each step:
//
//	go run ./examples/offline-activation
//	go run ./examples/offline-activation demo -qr   # also show each request as a QR code
//
// The subcommands are the two halves, for real use:
//
// On the offline machine (configured like the other examples: -product,
// -license, -api-key, -public-key, -state-dir or the LICENSEKIT_*
// variables; -server is not needed, the machine never reaches it):
//
//	offline-activation request -out req.txt [-qr]   write the request file this machine needs next
//	offline-activation activate -in reply.txt       apply the reply file
//	offline-activation status                       show the licence, offline
//	offline-activation deactivate -out end.txt      end the licence here; write the file that frees the seat
//
// On any online machine:
//
//	offline-activation exchange -in req.txt -out reply.txt -server URL -api-key KEY
//
// A new machine carries two files: "activate" on the first reply says so,
// and "request" then writes the second (begin_session). "request" on an
// activated machine writes a refresh (extend_session). "-" as a file name is
// standard input or output. The state directory must outlive a run:
// -state-dir, LICENSEKIT_STATE_DIR, or by default a directory for the
// product under the user's configuration directory.
//
// -qr prints a request file as a QR code in the terminal (github.com/skip2/
// go-qrcode, recovery level L, two rows of modules per line with half-block
// characters, light modules drawn in the terminal's text colour, so dark on
// light on a dark terminal), when the file fits one code; otherwise it says
// that it does not.
//
// Exit status: 0 on success, 1 on an error, 2 on a bad command line.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/licensekit/licensekit-go/examples/internal/serverflags"
	"github.com/licensekit/licensekit-go/license"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// offlineURL is the server URL of an offline machine's client: never
// reached (the client runs over airGap).
const offlineURL = "https://licensing.invalid/api/v2"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a bad command line; the message was printed.
var errUsage = errors.New("usage")

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "demo"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	io := ios{in: stdin, out: stdout, err: stderr}
	var err error
	switch cmd {
	case "demo":
		err = runDemo(ctx, args, io)
	case "request", "activate", "status", "deactivate":
		err = runOffline(ctx, cmd, args, io)
	case "exchange":
		err = runExchange(ctx, args, io)
	case "help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "offline-activation: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	}
	fmt.Fprintln(stderr, "offline-activation:", err)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  offline-activation [demo] [-qr]                 the whole ceremony against an in-process mock
  offline-activation request -out FILE [-qr]      (offline machine) write the request file
  offline-activation activate -in FILE            (offline machine) apply the reply file
  offline-activation status                       (offline machine) show the licence
  offline-activation deactivate -out FILE         (offline machine) end the licence, write the end file
  offline-activation exchange -in FILE -out FILE -server URL -api-key KEY   (online machine)
Run a command with -h for its flags.
`)
}

// ios are the program's standard streams.
type ios struct {
	in       io.Reader
	out, err io.Writer
}

// newFlags returns a flag set whose parse errors print to the error stream.
func newFlags(name string, io ios) *flag.FlagSet {
	fs := flag.NewFlagSet("offline-activation "+name, flag.ContinueOnError)
	fs.SetOutput(io.err)
	return fs
}

// parse parses args; a bad command line is errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %q\n", fs.Args())
		return errUsage
	}
	return nil
}

// airGap is the network of an offline machine: every request fails at once.
type airGap struct{}

func (airGap) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("offline machine: no network")
}

// offlineOptions are the client options of an offline machine: no network,
// one attempt per call, so that Start offline answers at once.
func offlineOptions(extra ...license.Option) []license.Option {
	return append([]license.Option{
		license.WithRoundTripper(airGap{}),
		license.WithRetry(license.Retry{Attempts: 1}),
	}, extra...)
}

// runOffline runs a subcommand of the offline machine.
func runOffline(ctx context.Context, cmd string, args []string, io ios) error {
	fs := newFlags(cmd, io)
	var sf serverflags.Flags
	sf.Register(fs)
	var in, out string
	var qr bool
	switch cmd {
	case "request":
		fs.StringVar(&out, "out", "", "write the request file here (- for standard output)")
		fs.BoolVar(&qr, "qr", false, "also print the request file as a QR code, if it fits one")
	case "deactivate":
		fs.StringVar(&out, "out", "", "write the deactivation request file here (- for standard output)")
	case "activate":
		fs.StringVar(&in, "in", "", "the reply file (- for standard input)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	sf.FromEnv()
	if (cmd == "request" || cmd == "deactivate") && out == "" || cmd == "activate" && in == "" {
		fmt.Fprintf(io.err, "offline-activation %s: -in or -out is required\n", cmd)
		return errUsage
	}
	cfg, err := sf.Config()
	if err != nil {
		return err
	}
	if cfg.ServerURL == "" {
		cfg.ServerURL = offlineURL
	}
	if cfg.StateDir == "" {
		if cfg.StateDir, err = serverflags.DefaultStateDir("licensekit-offline-activation", cfg.ProductGUID); err != nil {
			return err
		}
	}
	c, err := license.New(cfg, offlineOptions()...)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx)) //nolint:errcheck // offline, Close cannot end the session; the state keeps it

	switch cmd {
	case "request":
		var b bytes.Buffer
		if err := c.OfflineRequest(ctx, &b); err != nil {
			return err
		}
		if err := writeOut(out, io.out, b.Bytes()); err != nil {
			return err
		}
		describeRequest(io.out, out, b.Bytes())
		if qr {
			printQR(io.out, b.Bytes())
		}
		fmt.Fprintln(io.out, "next: carry it to an online machine: offline-activation exchange -in FILE -out reply.txt, or the vendor's portal")
	case "activate":
		reply, err := readIn(in, io.in)
		if err != nil {
			return err
		}
		more, err := c.ActivateOffline(ctx, bytes.NewReader(reply))
		if err != nil {
			return err
		}
		if more {
			fmt.Fprintln(io.out, "registered: this machine is known to the server now")
			fmt.Fprintln(io.out, "next: a new machine carries a second file: offline-activation request -out req2.txt, and exchange it")
			return nil
		}
		printStatus(io.out, c)
	case "status":
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("licence not usable: %w", err)
		}
		printStatus(io.out, c)
	case "deactivate":
		// The file is written atomically before the licence ends: if it
		// cannot be written, OfflineDeactivate changes nothing.
		if err := c.OfflineDeactivate(ctx, &fileWriter{name: out, std: io.out}); err != nil {
			return err
		}
		fmt.Fprintf(io.out, "deactivated: the licence is no longer usable on this machine (valid: %t)\n", c.Valid())
		fmt.Fprintln(io.out, "next: carry the file to an online machine (exchange) so that the server frees the seat")
	}
	return nil
}

// printStatus prints what a person checks after activation.
func printStatus(w io.Writer, c *license.Client) {
	st := c.Status()
	fmt.Fprintf(w, "licence: %s\n", st.State)
	fmt.Fprintf(w, "valid: %t\n", st.Valid())
	if !st.SessionExpiry.IsZero() {
		fmt.Fprintf(w, "session until: %s (then grace until %s)\n",
			st.SessionExpiry.UTC().Format(time.RFC3339), st.GraceDeadline.UTC().Format(time.RFC3339))
	}
	if len(st.FeatureSet) > 0 {
		fmt.Fprintf(w, "features: %s\n", strings.Join(st.FeatureSet, ", "))
	}
}

// runExchange posts a request file's carried requests on an online machine.
func runExchange(ctx context.Context, args []string, io ios) error {
	fs := newFlags("exchange", io)
	in := fs.String("in", "", "the request file (- for standard input)")
	out := fs.String("out", "", "write the reply file here (- for standard output)")
	server := fs.String("server", "", "licence server API base URL (env LICENSEKIT_SERVER)")
	apiKey := fs.String("api-key", "", "API key (env LICENSEKIT_API_KEY)")
	timeout := fs.Duration("timeout", time.Minute, "bound on the exchange")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *server == "" {
		*server = os.Getenv("LICENSEKIT_SERVER")
	}
	if *apiKey == "" {
		*apiKey = os.Getenv("LICENSEKIT_API_KEY")
	}
	if *in == "" || *out == "" || *server == "" {
		fmt.Fprintln(io.err, "offline-activation exchange: -in, -out and -server (or LICENSEKIT_SERVER) are required")
		return errUsage
	}
	req, err := readIn(*in, io.in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var reply bytes.Buffer
	if err := license.ExchangeOffline(ctx, license.ExchangeConfig{ServerURL: *server, APIKey: *apiKey}, bytes.NewReader(req), &reply); err != nil {
		return err
	}
	if err := writeOut(*out, io.out, reply.Bytes()); err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(io.out, "reply file: %s (%d bytes)\n", *out, reply.Len())
		for _, l := range blockHeaders(reply.Bytes()) {
			fmt.Fprintln(io.out, "  "+l)
		}
		fmt.Fprintln(io.out, "next: carry it back to the offline machine: offline-activation activate -in FILE")
	}
	return nil
}

// describeRequest prints a request file's readable header and size.
func describeRequest(w io.Writer, name string, text []byte) {
	if name == "-" {
		return
	}
	fmt.Fprintf(w, "request file: %s (%d bytes)\n", name, len(text))
	head, _, _ := bytes.Cut(text, []byte("\n\n"))
	for _, l := range strings.Split(string(head), "\n")[1:] {
		fmt.Fprintln(w, "  "+l)
	}
	for _, l := range blockHeaders(text) {
		fmt.Fprintln(w, "  "+l)
	}
}

// blockHeaders returns the Endpoint and Status lines of a file's blocks.
func blockHeaders(text []byte) []string {
	var out []string
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(l, "Endpoint: ") || strings.HasPrefix(l, "Status: ") {
			out = append(out, l)
		}
	}
	return out
}

// qrFit returns the QR code of text at level L, or why there is none.
func qrFit(text []byte) (*qrcode.QRCode, error) {
	q, err := qrcode.New(string(text), qrcode.Low)
	if err != nil {
		return nil, fmt.Errorf("%d bytes do not fit one QR code (at most 2953 in byte mode at level L): %w", len(text), err)
	}
	return q, nil
}

// printQR prints text as a QR code with half-block characters.
func printQR(w io.Writer, text []byte) {
	q, err := qrFit(text)
	if err != nil {
		fmt.Fprintln(w, "QR code: none:", err)
		return
	}
	fmt.Fprintf(w, "QR code: version %d, level L, %d×%d modules:\n", q.VersionNumber, len(q.Bitmap()), len(q.Bitmap()))
	fmt.Fprint(w, q.ToSmallString(false))
}

// readIn reads the file name, or r for "-".
func readIn(name string, r io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(r, 1<<20))
	}
	return os.ReadFile(name)
}

// writeOut writes b to the file name atomically, or to std for "-".
func writeOut(name string, std io.Writer, b []byte) error {
	_, err := (&fileWriter{name: name, std: std}).Write(b)
	return err
}

// fileWriter writes what it is given to a file atomically (temporary file,
// fsync, rename), or to std when name is "-". Each Write replaces the file
// with everything written so far, so that a writer that is handed the whole
// file in one Write (OfflineDeactivate) learns of any failure to store it.
type fileWriter struct {
	name string
	std  io.Writer
	buf  []byte
}

func (f *fileWriter) Write(p []byte) (int, error) {
	if f.name == "-" {
		return f.std.Write(p)
	}
	f.buf = append(f.buf, p...)
	tmp, err := os.CreateTemp(filepath.Dir(f.name), "."+filepath.Base(f.name)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(f.buf)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.name)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}
