package licensetest

import (
	"log/slog"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
)

// Option configures a Server. Options are applied in order by NewServer,
// NewTLSServer and NewUnstartedServer; a later option overrides an earlier one.
type Option func(*config)

// config is the plain data the options fill in.
type config struct {
	clock         func() time.Time
	kem           envelope.KEM
	priv          *envelope.PrivateKey
	secret        []byte
	apiKey        string
	sealedReplies bool
	match         Match
	logger        *slog.Logger
	rotate        bool
	addr          string
	maxRequests   int
	window        time.Duration
	replayEntries int
	texts         RefusalTexts
	timeouts      Timeouts
}

// defaultMaxRequests is how many requests Requests retains by default.
const defaultMaxRequests = 10000

func buildConfig(opts []Option) config {
	c := config{
		kem:         envelope.KEMX25519,
		addr:        "127.0.0.1:0",
		maxRequests: defaultMaxRequests,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// WithClock makes the server read the time from clock instead of time.Now.
// The clock decides session expiry, reaping and every time the server
// reports. Under testing/synctest the default time.Now already follows the
// bubble's fake clock when the server is used through Transport; WithClock
// is for tests that move the wall clock by hand (suspend, clock set back). A
// nil clock restores time.Now. clock must be safe for concurrent use.
func WithClock(clock func() time.Time) Option {
	return func(c *config) { c.clock = clock }
}

// WithKEM selects the KEM of the key pair the server generates (default
// envelope.KEMX25519). It has no effect together with WithPrivateKey.
func WithKEM(kem envelope.KEM) Option {
	return func(c *config) { c.kem = kem }
}

// WithPrivateKey makes the server use priv instead of a freshly generated
// key pair, so that its public key and key id stay the same across runs (the
// standalone mockserver uses it). A nil priv restores key generation.
func WithPrivateKey(priv *envelope.PrivateKey) Option {
	return func(c *config) { c.priv = priv }
}

// WithSecret makes the server use secret (at least envelope.SecretSize bytes)
// for shared-secret mode instead of a freshly generated one. The server
// copies it. NewServer panics if it is shorter than envelope.SecretSize.
//
// The server always accepts both envelope modes at once: public-key (HPKE)
// requests addressed to its key id and shared-secret requests addressed to
// its secret's key id. There is no option to switch a mode off.
func WithSecret(secret []byte) Option {
	return func(c *config) { c.secret = append([]byte(nil), secret...) }
}

// WithAPIKey sets the API key clients must send in the request's "key" field
// (default: a random key). Requests carrying another key get the
// envelope-level rejection "unauthentic" (HTTP 401).
func WithAPIKey(key string) Option {
	return func(c *config) { c.apiKey = key }
}

// WithSealedReplies makes the server insist on sealed replies: a request that
// does not ask for a sealed reply (the flag in the envelope's authenticated
// header) gets the envelope-level rejection "malformed" (HTTP 400), in plain
// text since such a client could not open a sealed one.
//
// Without this option the server seals the reply, success or failure, to
// every request that asks for it and answers the others in plain JSON. A
// request the server cannot open always gets a plain reply.
func WithSealedReplies() Option {
	return func(c *config) { c.sealedReplies = true }
}

// WithMatch sets how register_instance recognises a machine it has seen
// (default Exact).
func WithMatch(m Match) Option {
	return func(c *config) { c.match = m }
}

// WithLogger sets the logger (default: discard). The server logs each request
// at Debug (endpoint, status, fault) and changes of its up/down state at
// Info. It never logs API keys, licence keys, tokens, session keys or
// payloads.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithTokenRotation makes extend_session issue a new token on every
// extension; the old token stops working at once. By default the token stays
// the same for the life of the session.
func WithTokenRotation() Option {
	return func(c *config) { c.rotate = true }
}

// WithAddr sets the TCP address Start and StartTLS listen on (default
// "127.0.0.1:0", a free loopback port).
func WithAddr(addr string) Option {
	return func(c *config) { c.addr = addr }
}

// WithMaxRequests sets how many of the most recent requests Requests retains
// (default 10,000). Zero keeps the default; a negative n retains none. Count
// is not affected: it counts every request.
func WithMaxRequests(n int) Option {
	return func(c *config) {
		if n != 0 {
			c.maxRequests = n
		}
	}
}

// WithFreshnessWindow sets how far a request's timestamp may be behind the
// server's clock (default envelope.DefaultWindow, 5 minutes); the future
// side stays envelope.DefaultFuture (30 seconds), or d if shorter. Requests
// outside the window get the envelope-level rejection "stale_timestamp"
// (HTTP 401) carrying the server's time. Zero keeps the default.
func WithFreshnessWindow(d time.Duration) Option {
	return func(c *config) { c.window = d }
}

// WithReplayCache sets how many request ids the server remembers within the
// freshness window (default envelope.DefaultGuardEntries), of which at most
// envelope.DefaultPartitionEntries for one licence or one session. A
// repeated request is answered with the stored reply and never processed
// twice. A full cache forgets the oldest answered id of its largest
// licence or session, never rejects a fresh request. Zero keeps the
// default.
func WithReplayCache(n int) Option {
	return func(c *config) { c.replayEntries = n }
}
