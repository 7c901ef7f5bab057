package license

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
)

// Config is the plain data a client needs. It can be copied freely; New
// keeps its own copy. Required fields are ServerURL, APIKey, ProductGUID,
// LicenseKey, and one of ServerPublicKey or SharedSecret (unless WithSealer
// supplies the envelope scheme).
type Config struct {
	// ServerURL is the API base URL including its version path, such as
	// "https://licensing.example.com/api/v2".
	ServerURL string
	// APIKey is sent as the request's "key" and binds every envelope. With
	// WithSealer it is optional: the sealer owns the "key" field and is
	// handed APIKey as it is.
	APIKey string
	// ServerPublicKey is the server's HPKE public key, PEM or base64, for the
	// default public-key envelope mode.
	ServerPublicKey string
	// SharedSecret selects the shared-secret envelope mode. At least 32
	// bytes.
	SharedSecret []byte
	// InsecureUnsealedReplies accepts replies the server did not seal, for
	// a server that cannot seal them. Do not set it unless you must: with
	// it, anyone who can redirect the client's traffic (a hosts-file entry,
	// a DNS answer, a proxy) can grant licences with a home-made server,
	// and refusals can be forged by anything on the path that sends the
	// spec's failure shape. By default every reply must open as a sealed
	// reply to its own request (an authenticated answer from the holder of
	// the server's private key or the shared secret); a reply that does
	// not is never a success and never a refusal but "unreachable". The
	// client warns about this setting once, at Start.
	InsecureUnsealedReplies bool

	// ProductGUID identifies the product.
	ProductGUID string
	// LicenseKey is the customer's licence key.
	LicenseKey string

	// UserName and UserEmail are sent with register_instance.
	UserName  string
	UserEmail string
	// UserAttributes is sent as user_hash. The client never modifies it.
	UserAttributes map[string]string

	// SessionDuration optionally asks the server for this session length.
	// The server may ignore it. Zero leaves it to the server. Whole seconds.
	SessionDuration time.Duration

	// StateDir is where the sealed state file lives. Empty keeps state in
	// memory only (unless WithStateStore keeps it): no offline restart and
	// no orphan cleanup across runs.
	StateDir string
}

// LogValue renders the config for logs with every secret redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("server_url", redactURL(c.ServerURL)),
		slog.String("api_key", redact(c.APIKey)),
		slog.Bool("public_key", c.ServerPublicKey != ""),
		slog.String("shared_secret", redact(string(c.SharedSecret))),
		slog.Bool("insecure_unsealed_replies", c.InsecureUnsealedReplies),
		slog.String("product_guid", c.ProductGUID),
		slog.String("license_key", redact(c.LicenseKey)),
		slog.Bool("user_name", c.UserName != ""),
		slog.Bool("user_email", c.UserEmail != ""),
		slog.Int("user_attributes", len(c.UserAttributes)),
		slog.Duration("session_duration", c.SessionDuration),
		slog.String("state_dir", c.StateDir),
	)
}

// String renders the config like LogValue, with secrets redacted, so that
// printing a Config by accident leaks nothing.
func (c Config) String() string { return c.LogValue().String() }

// GoString redacts as String does, for %#v.
func (c Config) GoString() string { return "license.Config" + c.String() }

// redact shows only whether s is set.
func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable]"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// checkServerURL accepts an absolute http or https URL with a host, and
// nothing a copy and paste can slip in unseen (spaces, control or invisible
// characters), nor credentials, a query or a fragment.
func checkServerURL(raw string) error {
	if raw == "" {
		return errors.New("ServerURL is empty")
	}
	if i := strings.IndexFunc(raw, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r)
	}); i >= 0 {
		return fmt.Errorf("ServerURL has a stray space or invisible character at byte %d", i)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return errors.New("ServerURL must be an absolute http or https URL with a host")
	case u.Port() == "" && strings.HasSuffix(u.Host, ":"):
		return errors.New("ServerURL has an empty port")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery:
		return errors.New("ServerURL must not carry credentials or a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("ServerURL must not carry a fragment")
	}
	return nil
}

// configError joins every config problem and matches ErrInvalidConfig.
type configError struct{ errs []error }

func (e *configError) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = err.Error()
	}
	return "license: invalid config: " + strings.Join(parts, "; ")
}
func (e *configError) Unwrap() []error      { return e.errs }
func (e *configError) Is(target error) bool { return target == ErrInvalidConfig }

// Option tunes a Client. Options never carry required values; those belong
// in Config.
type Option func(*options)

// FingerprintSource returns this machine's fingerprint. It is called at
// Start and before each register or begin, so it should cache.
type FingerprintSource func(ctx context.Context) (*fingerprint.Fingerprint, error)

// EventHandler receives events. Calls are serial, in order, never
// concurrent, and never after Close returns. A slow handler never delays
// renewal: events beyond a buffer of 64 are dropped, and the 1st, 2nd,
// 4th, 8th, ... drop is logged at Warn level with the running count.
type EventHandler func(Event)

// Retry tunes retries. Zero fields keep their defaults.
type Retry struct {
	// Attempts is how many HTTP attempts one call makes (default 3).
	Attempts int
	// AttemptTimeout bounds one HTTP attempt (default 10 s).
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the waits between HTTP attempts of one
	// call (defaults 500 ms and 10 s).
	MinBackoff, MaxBackoff time.Duration
	// RenewBackoff is the first wait of the renewal loop after a failed
	// renewal; it doubles per failure with equal jitter (a uniform factor
	// in [0.5, 1)) (default 2 s).
	RenewBackoff time.Duration
	// MaxRenewInterval caps the wait between successful renewals
	// (default none).
	MaxRenewInterval time.Duration
}

type options struct {
	logger      *slog.Logger
	httpClient  *http.Client
	roundTrip   http.RoundTripper
	rootCAs     *x509.CertPool
	userAgent   string
	wall        func() time.Time // TestHooks.WallClock
	rnd         func() float64   // TestHooks.Rand
	onEvent     EventHandler
	fingerprint FingerprintSource
	store       StateStore
	sealer      envelope.Sealer
	retry       Retry
	start       StartBudget
	slots       int // 0 until newOptions resolves the default, after check
	fpOpts      []fingerprint.Option
	rollbackDir string
	// WithRefusalClassifier sets kinds; rules (not both), else the
	// default rules, resolve into it.
	rules     RefusalRules
	kinds     RefusalClassifier
	shared    *SharedSession // WithSharedSession (shared.go)
	timeFloor time.Time      // replaces releaseFloor in tests (synctest starts in 2000)
}

// WithLogger sends the client's logs, and its transport's, to l. The
// default is silent.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient bases the transport on a copy of c; c is never modified.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithRoundTripper sends every request through rt, such as
// licensetest.Server.Transport for tests under testing/synctest.
func WithRoundTripper(rt http.RoundTripper) Option { return func(o *options) { o.roundTrip = rt } }

// WithRootCAs sets the certificate authorities that verify the server,
// replacing the system roots (as tls.Config.RootCAs does). To trust a private
// CA in addition to them, pass x509.SystemCertPool() with it appended.
func WithRootCAs(pool *x509.CertPool) Option { return func(o *options) { o.rootCAs = pool } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithEventHandler receives the client's events.
func WithEventHandler(h EventHandler) Option { return func(o *options) { o.onEvent = h } }

// WithFingerprintSource replaces fingerprint collection. It excludes
// WithFingerprintOptions, which tunes the default collection.
func WithFingerprintSource(f FingerprintSource) Option {
	return func(o *options) { o.fingerprint = f }
}

// WithFingerprintOptions passes options to the default fingerprint source,
// such as fingerprint.WithHashedIdentifiers. It excludes
// WithFingerprintSource, which replaces that source.
func WithFingerprintOptions(opts ...fingerprint.Option) Option {
	return func(o *options) { o.fpOpts = append(o.fpOpts, opts...) }
}

// WithStateStore keeps state in s instead of a file in a state directory:
// it excludes Config.StateDir, WithStateSlots and WithSharedSession. The
// state is sealed before it reaches s. Nil keeps the default.
func WithStateStore(s StateStore) Option { return func(o *options) { o.store = s } }

// WithStateSlots sets how many live clients of one licence may share a
// state directory at once, each in its own slot (default 4). Clients of
// other licences or products use files of their own and do not count.
// n <= 0 keeps the default. A count of its own needs Config.StateDir, and
// excludes WithStateStore and WithSharedSession (one state, no slots).
func WithStateSlots(n int) Option {
	return func(o *options) { o.slots = max(n, 0) }
}

const defaultSlots = 4

// WithSealer plugs in the envelope scheme of an existing server. Config's
// key fields (ServerPublicKey, SharedSecret, and APIKey) are then optional. The sealer owns the request's "key"
// field (Sealed.Key), is told the endpoint and the timestamp of every
// request, and says through RepliesAuthenticated whether its replies are
// authenticated.
func WithSealer(s envelope.Sealer) Option { return func(o *options) { o.sealer = s } }

// WithRefusalRules replaces the rules that name a refusal's kind (and so
// decide whether it matches ErrRevoked, ErrSeatLimit, ErrExpired or
// ErrUnknownInstance) from the server's error text. Every refusal matches
// ErrRefused whatever the rules say. Use it when your server words its
// refusals otherwise than DefaultRefusalRules expects; to keep the defaults
// too, append to DefaultRefusalRules(). Nil restores the defaults. It
// excludes WithRefusalClassifier.
func WithRefusalRules(rules RefusalRules) Option {
	return func(o *options) { o.rules = slices.Clone(rules) }
}

// WithRefusalClassifier names refusal kinds with f instead of rules, for
// servers whose texts need more than phrases (codes, other languages). f
// must be safe for concurrent use. Nil restores the default rules. It
// excludes WithRefusalRules.
func WithRefusalClassifier(f RefusalClassifier) Option {
	return func(o *options) { o.kinds = f }
}

// WithRetry tunes retries and renewal backoff.
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

// positiveOr is v when it is positive, else def.
func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// newOptions applies opts over the defaults and checks them with cfg:
// every problem, each nil option and each conflict, is in the one error.
// Zero or negative settings then take their defaults.
func newOptions(cfg *Config, opts []Option) (options, error) {
	o := options{rnd: rand.Float64}
	var errs []error
	for i, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("option %d of %d is nil", i+1, len(opts)))
			continue
		}
		opt(&o)
	}
	errs = append(errs, o.check(cfg)...)
	if len(errs) > 0 {
		return o, &configError{errs: errs}
	}
	o.logger = cmp.Or(o.logger, slog.New(slog.DiscardHandler))
	o.slots = cmp.Or(o.slots, defaultSlots)
	if o.rules != nil {
		o.kinds = o.rules.Classify
	} else if o.kinds == nil {
		o.kinds = DefaultRefusalRules().Classify
	}
	r := &o.retry
	r.Attempts = positiveOr(r.Attempts, 3)
	r.AttemptTimeout = positiveOr(r.AttemptTimeout, 10*time.Second)
	r.MinBackoff = positiveOr(r.MinBackoff, 500*time.Millisecond)
	r.MaxBackoff = max(positiveOr(r.MaxBackoff, 10*time.Second), r.MinBackoff)
	r.RenewBackoff = positiveOr(r.RenewBackoff, 2*time.Second)
	o.start.Offline = positiveOr(o.start.Offline, DefaultOfflineStartBudget)
	o.start.Online = positiveOr(o.start.Online, DefaultStartTimeout)
	return o, nil
}

// check reports every problem of cfg, and names every pair of settings
// that exclude each other, so that none silently overrides another.
func (o *options) check(cfg *Config) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := checkServerURL(cfg.ServerURL); err != nil {
		errs = append(errs, err)
	}
	if cfg.APIKey == "" && o.sealer == nil {
		bad("APIKey is empty")
	}
	if cfg.ProductGUID == "" {
		bad("ProductGUID is empty")
	}
	if cfg.LicenseKey == "" {
		bad("LicenseKey is empty")
	}
	if o.sealer == nil {
		switch {
		case cfg.ServerPublicKey == "" && len(cfg.SharedSecret) == 0:
			bad("one of ServerPublicKey or SharedSecret is required")
		case cfg.ServerPublicKey != "" && len(cfg.SharedSecret) > 0:
			bad("ServerPublicKey and SharedSecret are exclusive")
		case cfg.ServerPublicKey != "":
			if _, err := envelope.ParsePublicKey([]byte(cfg.ServerPublicKey)); err != nil {
				bad("ServerPublicKey does not parse")
			}
		case len(cfg.SharedSecret) < envelope.SecretSize:
			bad("SharedSecret must be at least %d bytes", envelope.SecretSize)
		}
	}
	if cfg.SessionDuration < 0 {
		bad("SessionDuration is negative")
	} else if cfg.SessionDuration%time.Second != 0 {
		bad("SessionDuration must be whole seconds")
	}
	if _, ok := cfg.UserAttributes[""]; ok {
		bad("UserAttributes has an empty key")
	}
	cfg.checkSizes(bad)
	if o.rules != nil && o.kinds != nil {
		bad("WithRefusalRules and WithRefusalClassifier both set: choose one")
	}
	if o.fingerprint != nil && len(o.fpOpts) > 0 {
		bad("WithFingerprintOptions and WithFingerprintSource both set: the options tune the default source, which WithFingerprintSource replaces")
	}
	if o.sealer != nil && !cfg.InsecureUnsealedReplies && !authenticatesReplies(o.sealer) {
		bad("the WithSealer sealer does not authenticate replies (it has no RepliesAuthenticated " +
			"method returning true); such a server needs InsecureUnsealedReplies")
	}
	if o.rootCAs != nil && o.roundTrip != nil {
		bad("WithRootCAs and WithRoundTripper both set: the roots cannot apply to a round tripper of your own")
	}
	// Persistence: a StateDir (with slots, or shared), or a store.
	if o.store != nil && cfg.StateDir != "" {
		bad("StateDir and WithStateStore both set: the state lives in one place")
	}
	if o.shared != nil {
		if o.store != nil {
			bad("WithSharedSession cannot be combined with WithStateStore")
		} else if cfg.StateDir == "" {
			bad("WithSharedSession requires StateDir")
		}
		if o.shared.RefreshInterval < 0 {
			bad("SharedSession.RefreshInterval is negative")
		}
	}
	if o.slots > 0 {
		switch {
		case o.store != nil:
			bad("WithStateSlots and WithStateStore both set: a store holds one state, with no slots")
		case o.shared != nil:
			bad("WithStateSlots and WithSharedSession both set: a shared session has one state, with no slots")
		case cfg.StateDir == "":
			bad("WithStateSlots requires StateDir")
		}
	}
	if o.rollbackDir != "" && o.store == nil && cfg.StateDir == "" {
		bad("WithRollbackRecordDir requires StateDir or WithStateStore: with state in memory only there is no record")
	}
	return errs
}
