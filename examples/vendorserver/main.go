// Command vendorserver is a small licence server for API v2 written with
// package envelope: the shape of the server a vendor runs behind the SDK. It
// opens each request's data with the private key that examples/keygen
// wrote, answers the four endpoints from licences held in memory, and seals
// its reply whenever the client asked for a sealed one.
//
//	go run ./examples/keygen -out server.key
//	go run ./examples/vendorserver -key-file server.key -api-key ak_demo \
//		-license 'my-product:ABCD-1234:pro'
//
// It prints the URL and the public key to put into license.Config, then
// serves until interrupted or until -for has passed. server.go holds the
// handler (the part worth copying) and the toy licence logic that stands in
// for the vendor's own; docs/server.md explains it step by step. The tests
// run the SDK's own client against it.
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
	"strings"
	"syscall"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vendorserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on")
	keyFile := fs.String("key-file", "", "the private key file examples/keygen wrote (required)")
	apiKey := fs.String("api-key", "", "the API key clients send (required)")
	duration := fs.Duration("for", 0, "stop after this long (0: until interrupted)")
	var licences licenceFlags
	fs.Var(&licences, "license", "a licence, product:key[:features]; repeat for more")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile == "" || *apiKey == "" {
		fs.Usage()
		return errors.New("-key-file and -api-key are required")
	}
	text, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	priv, err := envelope.ParsePrivateKey(text)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyFile, err)
	}
	opener, err := envelope.NewOpener(priv)
	if err != nil {
		return err
	}
	if len(licences) == 0 {
		licences = licenceFlags{{ProductGUID: "demo-product", Key: "DEMO-KEY", Features: "pro"}}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: NewServer(opener, []string{*apiKey}, licences), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "licence server for API v2 at http://%s/api/v2\n", ln.Addr())
	fmt.Fprintf(stdout, "public key (key id %s) for license.Config.ServerPublicKey:\n%s\n", priv.KeyID(), priv.Public().EncodeBase64())
	for _, l := range licences {
		fmt.Fprintf(stdout, "licence: product %s, key %s, features %q\n", l.ProductGUID, l.Key, l.Features)
	}

	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	<-served
	fmt.Fprintln(stdout, "stopped")
	return nil
}
