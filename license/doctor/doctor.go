package doctor

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/licensekit/licensekit-go/license"
)

// Verdict is the outcome of one check.
type Verdict string

// Verdicts, from best to worst; Skipped means the check did not run.
const (
	// OK: nothing wrong was found.
	OK Verdict = "ok"
	// Warn: the licence works, but something will or may bite later.
	Warn Verdict = "warn"
	// Fail: this is, or will be, why the licence does not work.
	Fail Verdict = "fail"
	// Skipped: the check did not run; the finding says why.
	Skipped Verdict = "skipped"
)

// Check ids, in the order Run reports them.
const (
	CheckConfig      = "config"
	CheckDNS         = "dns"
	CheckProxy       = "proxy"
	CheckTCP         = "tcp"
	CheckTLS         = "tls"
	CheckHTTP        = "http"
	CheckClock       = "clock"
	CheckState       = "state"
	CheckFingerprint = "fingerprint"
	CheckLicense     = "license"
	CheckRoundTrip   = "roundtrip"
)

// Fact is one piece of evidence: a name and a value in plain text. Values
// never hold a secret or a raw hardware identifier.
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Check is the result of one diagnosis.
type Check struct {
	// ID is one of the Check constants.
	ID string `json:"id"`
	// Verdict is the outcome.
	Verdict Verdict `json:"verdict"`
	// Finding is one line in plain words.
	Finding string `json:"finding"`
	// Evidence is what the finding rests on, redacted.
	Evidence []Fact `json:"evidence,omitempty"`
	// Fix suggests what to do; empty when nothing needs doing.
	Fix string `json:"fix,omitempty"`
}

// Report is the result of Run: every check, in a fixed order. It holds no
// secret and no raw hardware identifier: identifiers appear only as
// digests keyed with the report's salt (see WriteBundle). A Report is
// plain data once Run returns; it is safe to read from several goroutines.
type Report struct {
	// Time is when Run started, on the doctor's clock.
	Time time.Time `json:"time"`
	// Server is Config.ServerURL without credentials or query.
	Server string `json:"server"`
	// Full is true when the round-trip check was asked for.
	Full bool `json:"full"`
	// Checks lists every check, skipped ones included.
	Checks []Check `json:"checks"`

	salt        []byte
	identifiers map[string][]string // component -> salted digests
}

// Check returns the check with the given id.
func (r *Report) Check(id string) (Check, bool) {
	if i := slices.IndexFunc(r.Checks, func(c Check) bool { return c.ID == id }); i >= 0 {
		return r.Checks[i], true
	}
	return Check{}, false
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Count(Fail) > 0 }

// Count returns how many checks ended with v.
func (r *Report) Count(v Verdict) int {
	n := 0
	for _, c := range r.Checks {
		if c.Verdict == v {
			n++
		}
	}
	return n
}

// Resolver looks a host name up, as net.Resolver.LookupHost does. Tests
// and products with their own name resolution plug one in with
// WithResolver.
type Resolver func(ctx context.Context, host string) ([]string, error)

// Option tunes Run.
type Option func(*options)

type options struct {
	client     []license.Option
	httpClient *http.Client
	roots      *x509.CertPool
	resolver   Resolver
	clock      func() time.Time
	full       bool
	issuers    []string
	pins       []string
	salt       []byte
	baseline   *Bundle
	timeout    time.Duration
}

// WithClientOptions passes options to the licence client the doctor builds
// with license.New, so that it diagnoses the client the product really
// runs: WithFingerprintSource, WithFingerprintOptions, WithStateStore,
// WithStateSlots, WithSealer, WithRoundTripper and the like. Give the HTTP
// client and root CAs with this package's WithHTTPClient and WithRootCAs
// instead: the doctor's own network checks need them too.
func WithClientOptions(opts ...license.Option) Option {
	return func(o *options) { o.client = append(o.client, opts...) }
}

// WithHTTPClient is the product's license.WithHTTPClient. The doctor hands
// it to the licence client and reads its transport's proxy setting and TLS
// roots for its own checks. Without it the proxy comes from the
// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), as for the client.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithRootCAs is the product's license.WithRootCAs: the certificate
// authorities that verify the server, replacing the system roots.
func WithRootCAs(pool *x509.CertPool) Option { return func(o *options) { o.roots = pool } }

// WithResolver replaces DNS lookups of the doctor's checks (default
// net.DefaultResolver.LookupHost). The TCP and TLS checks connect to the
// addresses it returns.
func WithResolver(r Resolver) Option { return func(o *options) { o.resolver = r } }

// WithClock replaces the wall clock the doctor compares certificates, the
// server's time and the saved state with (default time.Now). It is handed
// to the licence client as its wall clock too (license.TestHooks).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithExpectedIssuer names the certificate authorities that should issue
// the server's chain, such as "Let's Encrypt" or "DigiCert". A chain in
// which no certificate's issuer common name or organisation contains one of
// them (case-insensitively) is reported as intercepted: a TLS-inspecting
// firewall re-signs the server's certificate with its own CA.
func WithExpectedIssuer(names ...string) Option {
	return func(o *options) { o.issuers = append(o.issuers, names...) }
}

// WithPinnedKeys pins the server's chain: pins are base64 SHA-256 digests
// of a certificate's SubjectPublicKeyInfo (as in HPKP, "sha256/" prefix
// optional). A chain with none of them is reported as intercepted.
func WithPinnedKeys(pins ...string) Option {
	return func(o *options) { o.pins = append(o.pins, pins...) }
}

// Full adds the round-trip check: a real register_instance, begin_session
// and end_session, proving that the server opens this client's envelope
// and grants a session. It takes a seat for a moment and ends the session
// it began. It uses the state directory as the product does, so run it
// while the product is stopped or has a free state slot.
func Full() Option { return func(o *options) { o.full = true } }

// WithSalt sets the salt that keys the identifier digests of the report
// and its bundle (default 16 random bytes per report). Two reports with the
// same salt show equal digests for equal identifiers.
func WithSalt(salt []byte) Option {
	return func(o *options) { o.salt = append([]byte(nil), salt...) }
}

// WithBaseline compares the report with an earlier bundle, such as one the
// customer sent before: the fingerprint check names every component that
// differs from the baseline. This machine's identifiers are digested under
// the baseline's salt for the comparison only; the report and its bundle
// keep their own salt, so that a bundle from elsewhere cannot choose the
// salt this machine's identifiers are published under.
func WithBaseline(b *Bundle) Option { return func(o *options) { o.baseline = b } }

// WithTimeout bounds each network check (default 10 s; the round trip,
// three calls, three times that). Run's ctx bounds the whole run.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = cmp.Or(max(d, 0), o.timeout) } // d <= 0 keeps it
}

// Run diagnoses a licence client built from cfg on this machine and
// returns a report with every check, in the order of the Check constants.
// By default no check has a side effect on the server or takes a seat: the
// HTTP check sends one extend_session for a token that names no session,
// and the state check only looks. Full adds a real round trip.
//
// Run does not stop at a failed check: a check that needs what failed is
// reported as Skipped with the reason. The error is for Run itself (a nil
// option, or ctx ended before any check ran); problems found are in the
// report. Run blocks until every check is done or ctx ends, and leaves no
// goroutine or connection behind.
func Run(ctx context.Context, cfg license.Config, opts ...Option) (*Report, error) {
	o := options{timeout: 10 * time.Second}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("doctor: nil option")
		}
		opt(&o)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	if o.resolver == nil {
		o.resolver = net.DefaultResolver.LookupHost
	}
	if len(o.salt) == 0 {
		o.salt = make([]byte, 16)
		_, _ = rand.Read(o.salt)
	}
	d := &doctor{o: o, cfg: cfg, idValues: map[string][]string{}}
	d.rep = &Report{Time: o.clock().UTC(), Server: cleanURL(cfg.ServerURL), Full: o.full, salt: o.salt,
		identifiers: map[string][]string{}}
	d.run(ctx)
	d.scrubReport()
	return d.rep, nil
}

// cleanURL drops credentials, query and fragment from a URL for display.
func cleanURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return u.String()
}
