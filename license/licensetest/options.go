package licensetest

import (
	"bytes"
	"cmp"
	"log/slog"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/hook"
)

// Config configures a Server. A nil *Config, like the zero value, gives a
// server with fresh random keys, a random API key and the defaults below;
// each zero field keeps its default. NewServer, NewTLSServer and
// NewUnstartedServer copy it, so changing it later has no effect.
type Config struct {
	// Clock is the server's clock (default time.Now). It decides session
	// expiry, reaping and every time the server reports. Under
	// testing/synctest time.Now already follows the bubble's fake clock
	// when the server is used through Transport; Clock is for tests that
	// move the wall clock by hand (suspend, clock set back). It must be
	// safe for concurrent use.
	Clock func() time.Time

	// KEM is the KEM of the key pair the server generates (default
	// envelope.KEMX25519). It has no effect together with PrivateKey.
	KEM envelope.KEM
	// PrivateKey makes the server use this key pair instead of a freshly
	// generated one, so that its public key and key id stay the same
	// across runs (the standalone mockserver uses it).
	PrivateKey *envelope.PrivateKey
	// Secret is the server's secret for shared-secret mode (at least
	// envelope.SecretSize bytes; default a fresh random one). The server
	// copies it; NewServer panics if it is too short.
	//
	// The server always accepts both envelope modes at once: public-key
	// (HPKE) requests addressed to its key id and shared-secret requests
	// addressed to its secret's key id. There is no setting to switch a
	// mode off.
	Secret []byte
	// APIKey is the API key clients must send in the request's "key"
	// field (default a random key). Requests carrying another key get the
	// envelope-level rejection "unauthentic" (HTTP 401).
	APIKey string

	// SealedReplies makes the server insist on sealed replies: a request
	// that does not ask for a sealed reply (the flag in the envelope's
	// authenticated header) gets the envelope-level rejection "malformed"
	// (HTTP 400), in plain text since such a client could not open a
	// sealed one. Without it the server seals the reply, success or
	// failure, to every request that asks for it and answers the others
	// in plain JSON. A request the server cannot open always gets a plain
	// reply.
	SealedReplies bool
	// TokenRotation makes extend_session issue a new token on every
	// extension; the old token stops working at once. By default the token
	// stays the same for the life of the session.
	TokenRotation bool
	// Match is how register_instance recognises a machine it has seen
	// (default Exact).
	Match Match
	// RefusalTexts words the server's refusals; empty fields keep the
	// defaults (DefaultRefusalTexts). Statuses do not change.
	RefusalTexts RefusalTexts
	// FreshnessWindow is how far a request's timestamp may be behind the
	// server's clock (default envelope.DefaultWindow, 5 minutes); the
	// future side stays envelope.DefaultFuture (30 seconds), or this if
	// shorter. Requests outside the window get the envelope-level
	// rejection "stale_timestamp" (HTTP 401) carrying the server's time.
	FreshnessWindow time.Duration
	// ReplayCache is how many request ids the server remembers within the
	// freshness window (default envelope.DefaultGuardEntries), of which at
	// most envelope.DefaultPartitionEntries for one licence or one
	// session. A repeated request is answered with the stored reply and
	// never processed twice. A full cache forgets the oldest answered id
	// of its largest licence or session, never rejects a fresh request.
	ReplayCache int

	// Addr is the TCP address Start and StartTLS listen on (default
	// "127.0.0.1:0", a free loopback port).
	Addr string
	// Timeouts are the timeouts of the listener Start and StartTLS open
	// (default DefaultTimeouts); zero fields keep their defaults. They do
	// not apply to Transport or to Handler mounted elsewhere.
	Timeouts Timeouts
	// MaxRequests is how many of the most recent requests Requests retains
	// (default 10,000); a negative value retains none. Count is not
	// affected: it counts every request.
	MaxRequests int
	// Logger receives the server's log (default: discard). The server
	// logs each request at Debug (endpoint, status, fault) and changes of
	// its up/down state at Info. It never logs API keys, licence keys,
	// tokens, session keys or payloads.
	Logger *slog.Logger
}

// withDefaults returns a copy of in (nil for the zero Config) with the
// defaults filled in, fresh keys included, and Secret copied.
func withDefaults(in *Config) Config {
	var c Config
	if in != nil {
		c = *in
	}
	var err error
	c.KEM = cmp.Or(c.KEM, envelope.KEMX25519)
	if c.PrivateKey == nil {
		c.PrivateKey, err = envelope.GenerateKey(c.KEM)
		must(err)
	}
	if c.Secret = bytes.Clone(c.Secret); len(c.Secret) == 0 {
		c.Secret, err = envelope.GenerateSecret()
		must(err)
	}
	c.APIKey = cmp.Or(c.APIKey, "lt_"+hook.RandomToken(24))
	c.Addr = cmp.Or(c.Addr, "127.0.0.1:0")
	c.MaxRequests = cmp.Or(c.MaxRequests, 10000)
	if c.Clock == nil {
		c.Clock = time.Now
	}
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	return c
}
