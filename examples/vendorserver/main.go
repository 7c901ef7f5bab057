// Command vendorserver is a small licence server for API v2 written with
// package envelope: the shape of the server a vendor runs behind the SDK. It
// opens each request's data with the private key that examples/keygen
// wrote, answers the four endpoints from licences kept in an SQLite file,
// and seals its reply whenever the client asked for a sealed one. A restart
// loses no licence, instance, session or replay-cache entry.
//
//	export VENDORSERVER_ADMIN_TOKEN=$(go run ./examples/vendorserver token)
//	go run ./examples/keygen                        # writes the key outside the tree
//	go run ./examples/vendorserver -api-key ak_demo # serves :8080, admin API on 127.0.0.1:8081
//	go run ./examples/vendorserver issue -product my-product -key ABCD-1234 -features pro -seats 2
//	go run ./examples/vendorserver revoke -product my-product -key ABCD-1234
//
// The vendor's operations (issue, set, revoke, reinstate, licences,
// sessions, instances, free) are subcommands that call the running server's
// admin API with the token from VENDORSERVER_ADMIN_TOKEN; "vendorserver
// COMMAND -h" lists each one's flags. server.go holds the protocol handler
// (the part worth copying), store.go and replay.go the database that stands
// in for the vendor's own, admin.go the admin API; docs/server.md explains
// them step by step. The tests run the SDK's own client against it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/examples/internal/httpstop"
	"github.com/licensekit/licensekit-go/examples/internal/vendorfiles"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vendorserver:", err)
		}
		os.Exit(2)
	}
}

// licenceFlags collects -license values.
type licenceFlags []Licence

func (l *licenceFlags) String() string { return fmt.Sprint(len(*l), " licences") }

func (l *licenceFlags) Set(v string) error {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return errors.New("want product:key or product:key:features")
	}
	lic := Licence{ProductGUID: parts[0], Key: parts[1]}
	if len(parts) == 3 {
		lic.Features = parts[2]
	}
	*l = append(*l, lic)
	return nil
}

// run is the command: a subcommand of commands, or else serve.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name := args[0]
		if name == "serve" {
			return serve(ctx, args[1:], stdout, stderr)
		}
		if _, ok := commands[name]; !ok {
			return fmt.Errorf("unknown command %q (vendorserver -h lists them)", name)
		}
		return runCommand(ctx, name, args[1:], stdout, stderr)
	}
	return serve(ctx, args, stdout, stderr)
}

// serve runs the licence server and its admin API.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	defaultKey, _ := vendorfiles.Path("server.key")
	defaultDB, _ := vendorfiles.Path("vendorserver.db")
	fs := flag.NewFlagSet("vendorserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vendorserver [serve] [flags]    run the licence server\n       vendorserver COMMAND [flags]  the vendor's operations, through the admin API:")
		names := make([]string, 0, len(commands))
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(stderr, "  %-10s %s\n", n, commands[n])
		}
		fmt.Fprintln(stderr, "flags of serve:")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve the licence API on")
	adminAddr := fs.String("admin", "127.0.0.1:8081", "address to serve the admin API on (empty: none)")
	adminToken := fs.String("admin-token", "", "the admin API's token, 16 characters or more (better: env "+AdminTokenEnv+")")
	dbPath := fs.String("db", defaultDB, "the SQLite database file (created when missing)")
	keyFile := fs.String("key-file", defaultKey, "the private key file examples/keygen wrote")
	apiKey := fs.String("api-key", "", "the API key clients send (required)")
	grace := fs.Duration("grace", DefaultGrace, "validation_grace_period sent to clients")
	duration := fs.Duration("for", 0, "stop after this long (0: until interrupted)")
	var licences licenceFlags
	fs.Var(&licences, "license", "issue this licence, product:key[:features], unless issued before; repeat for more")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *keyFile == "" || *apiKey == "" || *dbPath == "" {
		fs.Usage()
		return errors.New("-key-file, -db and -api-key are required")
	}
	if *adminToken == "" {
		*adminToken = os.Getenv(AdminTokenEnv)
	}
	if *adminAddr != "" && len(*adminToken) < minTokenLen {
		return fmt.Errorf("the admin API needs a token of %d characters or more in %s (vendorserver token prints one), or -admin '' to serve none",
			minTokenLen, AdminTokenEnv)
	}
	text, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("%w (examples/keygen writes one)", err)
	}
	priv, err := envelope.ParsePrivateKey(text)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyFile, err)
	}
	opener, err := envelope.NewOpener(priv)
	if err != nil {
		return err
	}
	store, err := OpenStore(*dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	for _, l := range licences {
		// Issued before (and perhaps revoked since): left as it is.
		if err := store.Issue(ctx, l, time.Now()); err != nil && !errors.Is(err, ErrIssued) {
			return err
		}
	}
	srv := NewServer(opener, []string{*apiKey}, store)
	srv.grace = *grace

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	servers := []*http.Server{{Handler: srv, ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{ln}
	fmt.Fprintf(stdout, "licence server for API v2 at http://%s/api/v2\n", ln.Addr())
	if *adminAddr != "" {
		aln, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			_ = ln.Close()
			return err
		}
		servers = append(servers, &http.Server{Handler: srv.AdminHandler(*adminToken),
			ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, aln)
		fmt.Fprintf(stdout, "admin API at http://%s/admin/ (token from %s)\n", aln.Addr(), AdminTokenEnv)
	}
	counts, err := store.Counts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s: %d licences, %d instances, %d sessions, %d stored replies\n", *dbPath,
		counts["licences"], counts["instances"], counts["sessions"], counts["replies"])
	fmt.Fprintf(stdout, "public key (key id %s) for license.Config.ServerPublicKey:\n%s\n", priv.KeyID(), priv.Public().EncodeBase64())

	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	for _, s := range servers {
		httpstop.CloseUnused(s)
	}
	served := make(chan error, len(servers))
	for i := range servers {
		go func() { served <- servers[i].Serve(listeners[i]) }()
	}
	pending := len(servers)
	var failed error
	select {
	case failed = <-served:
		pending--
	case <-ctx.Done():
	}
	// Requests in flight get 10 s to finish; connections that never sent a
	// request are closed at once (httpstop).
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdown); err != nil && failed == nil {
			failed = err
		}
	}
	for ; pending > 0; pending-- {
		<-served
	}
	if failed != nil && !errors.Is(failed, http.ErrServerClosed) {
		return failed
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
