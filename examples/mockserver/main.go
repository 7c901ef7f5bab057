// Command mockserver runs the licensetest mock v2 licence server on its own,
// so that a product written in any language can be tested against it.
//
//	go run ./examples/mockserver -listen 127.0.0.1:8080
//
// It prints the URL and the keys a client needs (API key, public key and key
// id for public-key mode, shared secret for shared-secret mode), then serves
// until interrupted (SIGINT, SIGTERM) or until -for has passed.
//
// Licences are given with -license, once per licence:
//
//	-license 'product=my-app,key=ABCD-1234,seats=2,session=10m,grace=1h,max=1h,state=active,features=pro,export'
//
// Only product and key are required; features must come last and takes the
// rest of the value, commas included. Without -license a demo licence
// (product=demo-product, key=DEMO-KEY) is added.
//
// The admin API and the live console are on a separate listener (-admin,
// default 127.0.0.1:8081), because taking the API down closes the API's
// listening socket. Every admin request needs the admin token (random unless
// -admin-token or the environment variable LICENSEKIT_ADMIN_TOKEN sets one;
// prefer the variable, which other users cannot read in the process list); the banner prints the console URL with the token,
// and opening it in a browser shows the console. From a script, send the
// token as a bearer header:
//
//	curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/admin/state
//	curl -H "Authorization: Bearer $TOKEN" -X POST 'http://127.0.0.1:8081/admin/down?mode=refuse&for=30s'
//
// docs/mockserver.md lists every admin endpoint with a curl example, and the
// scenario format. -scenario FILE plays a scenario (timed steps such as
// "at 5m down refuse") in real time from the start.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/examples/internal/httpstop"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "mockserver:", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	listen, admin   string
	licenses        []licensetest.License
	sealed, tls     bool
	certOut         string
	keyFile         string
	kem             envelope.KEM
	secret          []byte
	apiKey          string
	match           licensetest.Match
	rotate          bool
	runFor          time.Duration
	jsonOut, debug  bool
	adminToken      string
	scenario        *admin.Scenario
	defaultSeats    int
	defaultSession  time.Duration
	defaultGrace    time.Duration
	licenseSpecsRaw []string
}

// licenseFlag collects repeated -license values.
type licenseFlag struct{ specs *[]string }

func (f licenseFlag) String() string {
	if f.specs == nil {
		return ""
	}
	return strings.Join(*f.specs, " ")
}

func (f licenseFlag) Set(v string) error {
	*f.specs = append(*f.specs, v)
	return nil
}

// adminTokenEnv is the environment variable that sets the admin token when
// -admin-token is not given: a flag shows in the process list to every user
// of the machine, the environment does not.
const adminTokenEnv = "LICENSEKIT_ADMIN_TOKEN"

// parseFlags parses args. Usage and errors go to stderr.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mockserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the v2 API")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:8081", "address of the admin API and console")
	fs.StringVar(&o.adminToken, "admin-token", "", "token the admin API requires (env "+adminTokenEnv+", which keeps it out of the process list; default: random, printed in the console URL)")
	scenario := fs.String("scenario", "", "play the scenario in this file from the start (see docs/mockserver.md)")
	fs.Var(licenseFlag{&o.licenseSpecsRaw}, "license", "a licence: product=P,key=K[,seats=N][,session=D][,grace=D][,max=D][,state=S][,features=F] (repeatable)")
	fs.IntVar(&o.defaultSeats, "seats", 0, "seat limit of licences that name none (0 = unlimited)")
	fs.DurationVar(&o.defaultSession, "session", licensetest.DefaultSessionDuration, "session duration of licences that name none")
	fs.DurationVar(&o.defaultGrace, "grace", time.Hour, "validation grace period of licences that name none")
	fs.BoolVar(&o.sealed, "sealed", false, "require sealed replies (requests that do not ask for one are refused)")
	fs.BoolVar(&o.tls, "tls", false, "serve HTTPS with a self-signed certificate (printed)")
	fs.StringVar(&o.certOut, "cert-out", "", "with -tls, also write the certificate PEM to this file")
	fs.StringVar(&o.keyFile, "key-file", "", "private key file (PEM or base64); created if missing, for stable keys across runs")
	kem := fs.String("kem", "x25519", "KEM of a generated key: x25519 or mlkem768x25519")
	secret := fs.String("secret", "", "shared secret, standard base64 of at least 32 bytes (default: random)")
	fs.StringVar(&o.apiKey, "api-key", "", "API key clients must send (default: random)")
	match := fs.String("match", "exact", "instance matching: exact, or k for k-of-5 components")
	fs.BoolVar(&o.rotate, "rotate-tokens", false, "issue a new token on every extend_session")
	fs.DurationVar(&o.runFor, "for", 0, "exit after this long (0 = until interrupted)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the configuration as one JSON object")
	fs.BoolVar(&o.debug, "v", false, "log each request to stderr (never keys, tokens or payloads)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.adminToken == "" {
		o.adminToken = os.Getenv(adminTokenEnv)
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	switch strings.ToLower(*kem) {
	case "x25519":
		o.kem = envelope.KEMX25519
	case "mlkem768x25519", "x-wing", "xwing":
		o.kem = envelope.KEMMLKEM768X25519
	default:
		errs = append(errs, fmt.Errorf("-kem: unknown KEM %q", *kem))
	}
	if *secret != "" {
		b, err := base64.StdEncoding.DecodeString(*secret)
		switch {
		case err != nil:
			errs = append(errs, errors.New("-secret: not standard base64"))
		case len(b) < envelope.SecretSize:
			errs = append(errs, fmt.Errorf("-secret: %d bytes, need at least %d", len(b), envelope.SecretSize))
		default:
			o.secret = b
		}
	}
	if *match != "exact" {
		k, err := strconv.Atoi(*match)
		if err != nil || k < 1 || k > 5 {
			errs = append(errs, fmt.Errorf("-match: want exact or 1..5, got %q", *match))
		}
		o.match = licensetest.KOfN(k)
	}
	if *scenario != "" {
		f, err := os.Open(*scenario)
		if err != nil {
			errs = append(errs, fmt.Errorf("-scenario: %w", err))
		} else {
			o.scenario, err = admin.ParseScenario(*scenario, f)
			f.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("-scenario: %w", err))
			}
		}
	}
	if o.runFor < 0 {
		errs = append(errs, errors.New("-for: negative duration"))
	}
	specs := o.licenseSpecsRaw
	if len(specs) == 0 {
		specs = []string{"product=demo-product,key=DEMO-KEY"}
	}
	for _, spec := range specs {
		l, err := parseLicense(spec, licensetest.License{
			Seats: o.defaultSeats, SessionDuration: o.defaultSession, GracePeriod: o.defaultGrace,
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o.licenses = append(o.licenses, l)
	}
	return o, errors.Join(errs...)
}

// parseLicense parses "product=P,key=K,..." over defaults.
func parseLicense(spec string, l licensetest.License) (licensetest.License, error) {
	rest := spec
	for rest != "" {
		var field string
		if strings.HasPrefix(rest, "features=") {
			field, rest = rest, ""
		} else {
			field, rest, _ = strings.Cut(rest, ",")
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return l, fmt.Errorf("-license %q: %q is not name=value", spec, field)
		}
		var err error
		switch strings.TrimSpace(name) {
		case "product":
			l.ProductGUID = value
		case "key":
			l.Key = value
		case "seats":
			l.Seats, err = strconv.Atoi(value)
		case "session":
			l.SessionDuration, err = time.ParseDuration(value)
		case "grace":
			l.GracePeriod, err = time.ParseDuration(value)
		case "max":
			l.MaxDuration, err = time.ParseDuration(value)
		case "state":
			l.State, err = parseState(value)
		case "features":
			l.Features = value
		default:
			return l, fmt.Errorf("-license %q: unknown field %q", spec, name)
		}
		if err != nil {
			return l, fmt.Errorf("-license %q: %s: %w", spec, name, err)
		}
	}
	if l.ProductGUID == "" || l.Key == "" {
		return l, fmt.Errorf("-license %q: product and key are required", spec)
	}
	return l, nil
}

func parseState(s string) (licensetest.LicenseState, error) {
	for _, st := range []licensetest.LicenseState{licensetest.Active, licensetest.Revoked, licensetest.Expired} {
		if s == st.String() {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown state %q (want active, revoked or expired)", s)
}

// loadKey reads the private key file, or creates it with a new key.
func loadKey(path string, kem envelope.KEM) (*envelope.PrivateKey, error) {
	text, err := os.ReadFile(path)
	if err == nil {
		priv, err := envelope.ParsePrivateKey(text)
		if err != nil {
			return nil, fmt.Errorf("-key-file %s: %w", path, err)
		}
		return priv, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("-key-file: %w", err)
	}
	priv, err := envelope.GenerateKey(kem)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, priv.EncodePEM(), 0o600); err != nil {
		return nil, fmt.Errorf("-key-file: %w", err)
	}
	return priv, nil
}

// info is what a client needs, as printed at start: GET /admin/config
// reports the same but for the token.
type info struct {
	admin.ClientConfig
	ConsoleURL string `json:"console_url"`
	AdminToken string `json:"admin_token"`
}

// newServer builds and starts the mock server from o.
func newServer(o *options, logger *slog.Logger) (s *licensetest.Server, err error) {
	cfg := &licensetest.Config{Addr: o.listen, KEM: o.kem, Match: o.match, Logger: logger}
	if o.keyFile != "" {
		priv, err := loadKey(o.keyFile, o.kem)
		if err != nil {
			return nil, err
		}
		cfg.PrivateKey = priv
	}
	if o.secret != nil {
		cfg.Secret = o.secret
	}
	if o.apiKey != "" {
		cfg.APIKey = o.apiKey
	}
	if o.sealed {
		cfg.SealedReplies = true
	}
	if o.rotate {
		cfg.TokenRotation = true
	}
	s = licensetest.NewUnstartedServer(cfg)
	for _, l := range o.licenses {
		if err := s.AddLicense(l); err != nil {
			s.Close()
			return nil, err
		}
	}
	defer func() {
		// Start panics, as httptest does, when it cannot listen.
		if r := recover(); r != nil {
			s.Close()
			s, err = nil, fmt.Errorf("%v", r)
		}
	}()
	if o.tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	return s, nil
}

func printInfo(w io.Writer, in info, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(in, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "licensekit mock licence server (API v2)\n")
	fmt.Fprintf(&b, "url:            %s\n", in.URL)
	fmt.Fprintf(&b, "console:        %s\n", in.ConsoleURL)
	fmt.Fprintf(&b, "admin:          %s (try: curl -H 'Authorization: Bearer %s' %sstate)\n", in.AdminURL, in.AdminToken, in.AdminURL)
	fmt.Fprintf(&b, "api key:        %s\n", in.APIKey)
	fmt.Fprintf(&b, "key id:         %s (%s)\n", in.KeyID, in.KEM)
	fmt.Fprintf(&b, "public key:     %s\n", in.PublicKey)
	fmt.Fprintf(&b, "shared secret:  %s\n", in.SharedSecret)
	fmt.Fprintf(&b, "sealed replies: %s\n", in.SealedReplies)
	for _, l := range in.Licenses {
		fmt.Fprintf(&b, "license:        product=%s key=%s seats=%d session=%s grace=%s state=%s features=%q\n",
			l.ProductGUID, l.Key, l.Seats, l.Session, l.Grace, l.State, l.Features)
	}
	b.WriteString(in.PublicKeyPEM)
	b.WriteString(in.TLSCertificate)
	_, err := io.WriteString(w, b.String())
	return err
}

// run is main without the process: it returns when ctx ends, when -for has
// passed, or on a startup error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := newServer(o, logger)
	if err != nil {
		return err
	}
	defer s.Close()

	adminLn, err := net.Listen("tcp", o.admin)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	adminBase := "http://" + adminLn.Addr().String()
	adm := admin.NewHandler(s, admin.Options{Token: o.adminToken})
	defer adm.Close()
	in := info{ClientConfig: admin.ClientConfigOf(s), ConsoleURL: adm.ConsoleURL(adminBase), AdminToken: adm.Token()}
	in.AdminURL = adminBase + admin.Path
	adminSrv := &http.Server{Handler: adm, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	licensetest.DefaultTimeouts().Apply(adminSrv)
	httpstop.CloseUnused(adminSrv) // a browser's preconnect does not hold the stop
	serveErr := make(chan error, 1)
	go func() { serveErr <- adminSrv.Serve(adminLn) }()
	defer func() {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		adm.Close() // ends the live streams, so that Shutdown need not wait for them
		_ = adminSrv.Shutdown(shutCtx)
		<-serveErr
	}()

	if o.certOut != "" && in.TLSCertificate != "" {
		if err := os.WriteFile(o.certOut, []byte(in.TLSCertificate), 0o644); err != nil {
			return fmt.Errorf("-cert-out: %w", err)
		}
	}
	if err := printInfo(stdout, in, o.jsonOut); err != nil {
		return err
	}

	scenarioDone := make(chan error, 1)
	if o.scenario != nil {
		scenCtx, cancel := context.WithCancel(ctx)
		defer func() {
			cancel()
			<-scenarioDone
		}()
		go func() { scenarioDone <- admin.RunScenario(scenCtx, s, o.scenario) }()
	}

	var timeout <-chan time.Time
	if o.runFor > 0 {
		t := time.NewTimer(o.runFor)
		defer t.Stop()
		timeout = t.C
	}
	scenarioEnded := scenarioDone
	for {
		select {
		case <-ctx.Done():
			logger.Info("mockserver: shutting down", slog.String("reason", "signal"))
			return nil
		case <-timeout:
			logger.Info("mockserver: shutting down", slog.String("reason", "-for elapsed"))
			return nil
		case err := <-serveErr:
			serveErr <- err // for the deferred shutdown
			return fmt.Errorf("admin server: %w", err)
		case err := <-scenarioEnded:
			scenarioDone <- err // for the deferred wait
			if err != nil && ctx.Err() == nil {
				return err
			}
			logger.Info("mockserver: scenario done; still serving")
			scenarioEnded = nil
		}
	}
}
