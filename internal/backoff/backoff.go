// Package backoff is the one retry wait of the SDK: transport's retries of
// one HTTP call and license's renewal retries both use Wait, so that they
// grow, cap and jitter alike.
package backoff

import "time"

// Wait returns the wait before retry number n+1 (n counts from 0): equal
// jitter over an exponential ceiling, ceil/2 + u·ceil/2 with
// ceil = min(hi, lo·2ⁿ), so the wait lies in [ceil/2, ceil]. lo <= 0 counts
// as 1 ns and hi < lo as lo. It never returns less than 1 ns, so a retry
// never fires in the same instant as the failure.
//
// u is a uniform random number in [0, 1). A value outside it (NaN, a broken
// random source) counts as 0.5, the mean: such a source then neither
// shortens every client's retries to the minimum against a struggling
// server nor stretches them to the maximum.
func Wait(lo, hi time.Duration, n int, u float64) time.Duration {
	lo = max(lo, 1)
	hi = max(hi, lo)
	ceil := lo
	for i := 0; i < n && ceil < hi; i++ {
		ceil *= 2
		if ceil <= 0 { // overflow
			ceil = hi
		}
	}
	ceil = min(ceil, hi)
	if !(u >= 0 && u < 1) {
		u = 0.5
	}
	// ceil/2 + u·ceil/2 stays within [ceil/2, ceil] without float overflow.
	wait := ceil/2 + time.Duration(float64(ceil/2)*u)
	return max(wait, 1)
}
