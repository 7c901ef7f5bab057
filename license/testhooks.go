package license

import "time"

// TestHooks are for tests only, a product's own included; a product never
// sets them. They replace what testing/synctest cannot: synctest moves the
// wall clock and the monotonic clock together, while the client measures
// elapsed time with both, so a test of a suspend or of a clock set back
// needs a wall clock of its own. Nil fields keep the real sources.
type TestHooks struct {
	// WallClock replaces the wall clock (time.Now without its monotonic
	// reading): move it apart from the monotonic clock to simulate a
	// suspend, or set it back to simulate a clock set back.
	WallClock func() time.Time
	// Rand replaces the source of jitter, a function returning values in
	// [0, 1), for reproducible schedules.
	Rand func() float64
}

// WithTestHooks installs test hooks; see TestHooks. It is for tests only.
// Fields left nil keep what an earlier WithTestHooks set, so that test
// helpers can each set their own.
func WithTestHooks(h TestHooks) Option {
	return func(o *options) {
		if h.WallClock != nil {
			o.wall = h.WallClock
		}
		if h.Rand != nil {
			o.rnd = h.Rand
		}
	}
}
