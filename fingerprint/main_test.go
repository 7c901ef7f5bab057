package fingerprint

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// withFS is a test hook: it makes Collect read the Linux sources through fsys.
func withFS(fsys sysFS) Option {
	return func(o *options) { o.fsys = fsys }
}

// withWrap is a test hook: it wraps every source task. Several wraps compose, the last outermost.
func withWrap(w func(task string, run taskFunc) taskFunc) Option {
	return func(o *options) {
		inner := o.wrap
		if inner == nil {
			o.wrap = w
			return
		}
		o.wrap = func(task string, run taskFunc) taskFunc { return w(task, inner(task, run)) }
	}
}

// withoutNetwork is a test hook: ip_address is reported Unsupported without touching the network.
func withoutNetwork() Option {
	return func(o *options) { o.noNet = true }
}
