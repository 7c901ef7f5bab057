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
// An admin API on a separate listener (-admin, default 127.0.0.1:8081) lets
// a tester change the server while it runs. It is separate because taking
// the API down closes the API's listening socket. All admin calls are POST
// with query parameters, except the GET ones:
//
//	GET  /admin/stats                          counts, sessions, seats, state
//	GET  /admin/config                         what was printed at start
//	POST /admin/down?on=1&mode=refuse|reset&for=30s
//	POST /admin/revoke?product=P&key=K         also /admin/expire, /admin/reinstate
//	POST /admin/license?product=P&key=K&seats=&session=&grace=&max=&features=
//	POST /admin/control?product=P&key=K&session=30s&grace=5m
//	POST /admin/fail?endpoint=begin&n=3&status=503&retry_after=10s
//	POST /admin/fault?endpoint=extend&kind=drop&n=1
//	     (kind: truncate, garbage, drop, cut_body, replay, bad_seal; n=-1 forever)
//	POST /admin/latency?endpoint=all&d=2s      also /admin/retry_after?endpoint=&d=
//	POST /admin/content_type?endpoint=&ct=text/html
//	POST /admin/skew?d=-1h
//	POST /admin/clear                          remove every fault
//
// endpoint is register, begin, extend, end (or the full v2 names), or all.
// The admin API has no authentication: keep it on loopback.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
	"github.com/licensekit/licensekit-go/license/licensetest"
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

// parseFlags parses args. Usage and errors go to stderr.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mockserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the v2 API")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:8081", "address of the admin API")
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

// info is what a client needs, as printed at start and served at
// /admin/config.
type info struct {
	URL            string          `json:"url"`
	AdminURL       string          `json:"admin_url"`
	APIKey         string          `json:"api_key"`
	KeyID          string          `json:"key_id"`
	KEM            string          `json:"kem"`
	PublicKey      string          `json:"public_key"`
	PublicKeyPEM   string          `json:"public_key_pem"`
	SharedSecret   string          `json:"shared_secret"`
	SealedReplies  string          `json:"sealed_replies"`
	TLSCertificate string          `json:"tls_certificate_pem,omitempty"`
	Licenses       []licenseStatus `json:"licenses"`
}

// newServer builds and starts the mock server from o.
func newServer(o *options, logger *slog.Logger) (s *licensetest.Server, err error) {
	srvOpts := []licensetest.Option{
		licensetest.WithAddr(o.listen),
		licensetest.WithKEM(o.kem),
		licensetest.WithMatch(o.match),
		licensetest.WithLogger(logger),
	}
	if o.keyFile != "" {
		priv, err := loadKey(o.keyFile, o.kem)
		if err != nil {
			return nil, err
		}
		srvOpts = append(srvOpts, licensetest.WithPrivateKey(priv))
	}
	if o.secret != nil {
		srvOpts = append(srvOpts, licensetest.WithSecret(o.secret))
	}
	if o.apiKey != "" {
		srvOpts = append(srvOpts, licensetest.WithAPIKey(o.apiKey))
	}
	if o.sealed {
		srvOpts = append(srvOpts, licensetest.WithSealedReplies())
	}
	if o.rotate {
		srvOpts = append(srvOpts, licensetest.WithTokenRotation())
	}
	s = licensetest.NewUnstartedServer(srvOpts...)
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

func describe(s *licensetest.Server, o *options, adminURL string) info {
	in := info{
		URL:           s.URL,
		AdminURL:      adminURL,
		APIKey:        s.APIKey(),
		KeyID:         s.KeyID(),
		KEM:           s.PublicKey().KEM().String(),
		PublicKey:     s.PublicKey().EncodeBase64(),
		PublicKeyPEM:  string(s.PublicKey().EncodePEM()),
		SharedSecret:  base64.StdEncoding.EncodeToString(s.Secret()),
		SealedReplies: "on request",
		Licenses:      licenseStatuses(s),
	}
	if o.sealed {
		in.SealedReplies = "required"
	}
	if cert := s.Certificate(); cert != nil {
		in.TLSCertificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	return in
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
	fmt.Fprintf(&b, "admin:          %s (try: curl %sstats)\n", in.AdminURL, in.AdminURL)
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
	adminURL := "http://" + adminLn.Addr().String() + "/admin/"
	in := describe(s, o, adminURL)
	adm := newAdmin(s, in)
	defer adm.Close()
	adminSrv := &http.Server{Handler: adm, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- adminSrv.Serve(adminLn) }()
	defer func() {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
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

	var timeout <-chan time.Time
	if o.runFor > 0 {
		t := time.NewTimer(o.runFor)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		logger.Info("mockserver: shutting down", slog.String("reason", "signal"))
	case <-timeout:
		logger.Info("mockserver: shutting down", slog.String("reason", "-for elapsed"))
	case err := <-serveErr:
		serveErr <- err // for the deferred shutdown
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}
