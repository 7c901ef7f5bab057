package fingerprint

import (
	"cmp"
	"context"
	"time"
)

// Defaults for the collection deadlines.
const (
	// DefaultTimeout is the overall budget of one Collect. It only shortens the deadline when it is
	// below the component timeout, since all sources run at once under the shorter of the two.
	DefaultTimeout = 2 * time.Second
	// DefaultComponentTimeout is the deadline of each component source, and so, as all sources run
	// at once, of a Collect with default options.
	DefaultComponentTimeout = time.Second
)

// Option configures Collect and NewCached.
type Option func(*options)

type options struct {
	key         []byte
	hashed      bool
	root        string
	server      string
	timeout     time.Duration
	compTimeout time.Duration

	// Test hooks, set only by the tests (main_test.go): fsys replaces the Linux filesystem (and
	// selects the Linux sources on any OS), wrap wraps each source task, noNet skips ip_address.
	fsys  sysFS
	wrap  func(task string, run taskFunc) taskFunc
	noNet bool
}

func newOptions(opts []Option) *options {
	o := &options{timeout: DefaultTimeout, compTimeout: DefaultComponentTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// WithHashedIdentifiers makes Collect replace every component value with hex
// HMAC-SHA256(productKey, "fp1" 0x00 name 0x00 value); each MAC address is hashed on its own, so MAC
// sets still overlap. The values stay stable for matching, two products with different keys cannot
// correlate a user, and raw serials never leave the machine. Hashes are still pseudonymous personal
// data. The key is copied. An empty key makes Collect fail.
func WithHashedIdentifiers(productKey []byte) Option {
	k := append([]byte(nil), productKey...)
	return func(o *options) { o.key, o.hashed = k, true }
}

// WithRoot makes Collect read the Linux sources (/proc, /sys, /etc, /dev/disk, container markers)
// below dir instead of "/", on any OS. It exists for fixtures and for inspecting a mounted Linux
// image. host_name is then read from dir/proc/sys/kernel/hostname; ip_address still comes from the
// live network stack. volume_hash is Unsupported below a root other than "/": stat and statfs of dir
// would describe the host filesystem holding the tree, not the captured machine, so the same tree
// would give different fingerprints (and Match scores) on different hosts and OSes. "" restores the
// default, the running system's own sources (on Linux the same as "/").
func WithRoot(dir string) Option {
	return func(o *options) { o.root = dir }
}

// WithServerAddress sets the licence server's "host:port" used to find ip_address: the local address
// the OS would use to reach it, found with a UDP connect that sends no packet. An IP literal avoids
// even a DNS query; a host name is resolved (the licence client resolves it anyway). The default
// probes the documentation addresses 192.0.2.1:443 and [2001:db8::1]:443, which follow the default
// route.
func WithServerAddress(hostport string) Option {
	return func(o *options) { o.server = hostport }
}

// WithTimeout sets the overall budget of one Collect (default DefaultTimeout). d <= 0 keeps the default.
// Collect waits for the shorter of d and the component timeout, and a caller's context deadline that
// comes earlier wins.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = cmp.Or(max(d, 0), o.timeout) }
}

// WithComponentTimeout sets the deadline of each component source (default DefaultComponentTimeout).
// d <= 0 keeps the default. A source that misses it is reported as TimedOut.
func WithComponentTimeout(d time.Duration) Option {
	return func(o *options) { o.compTimeout = cmp.Or(max(d, 0), o.compTimeout) }
}

// taskFunc collects one or more components. It must return promptly once ctx is done when it does
// anything that can block for long (exec, DNS); plain file reads may ignore ctx.
type taskFunc func(ctx context.Context) taskResult
