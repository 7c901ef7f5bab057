package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/internal/backoff"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	const lo, hi = 100 * time.Millisecond, 1 * time.Second
	tests := []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{0, 0, 50 * time.Millisecond},
		{0, 0.5, 75 * time.Millisecond},
		{1, 0, 100 * time.Millisecond},
		{2, 0, 200 * time.Millisecond},
		{3, 0, 400 * time.Millisecond},
		{4, 0, 500 * time.Millisecond}, // ceiling capped at hi
		{100, 0, 500 * time.Millisecond},
		{1 << 30, 0, 500 * time.Millisecond},
		{0, -1, 75 * time.Millisecond},  // out of range u counts as 0.5
		{0, 1, 75 * time.Millisecond},   // 1 is outside [0, 1)
		{0, 2.5, 75 * time.Millisecond}, // so is anything larger
		{2, math.NaN(), 300 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := backoff.Wait(lo, hi, tt.n, tt.u); got != tt.want {
			t.Errorf("Wait(%v, %v, %d, %v) = %v; want %v", lo, hi, tt.n, tt.u, got, tt.want)
		}
	}
}

// TestBackoffProperties checks, over many draws, that the wait is never 0,
// never below half the exponential ceiling and never above the ceiling.
func TestBackoffProperties(t *testing.T) {
	t.Parallel()
	bounds := [][2]time.Duration{
		{1, 1}, {1, 10}, {time.Millisecond, time.Second},
		{500 * time.Millisecond, 30 * time.Second}, {time.Hour, 1 << 62},
	}
	us := []float64{0, 1e-12, 0.25, 0.5, 0.999999999, 0.9999999999999999}
	for _, b := range bounds {
		for n := range 80 {
			ceil := b[0]
			for range n {
				if ceil >= b[1] || ceil > b[1]/2 {
					ceil = b[1]
					break
				}
				ceil *= 2
			}
			ceil = min(ceil, b[1])
			for _, u := range us {
				got := backoff.Wait(b[0], b[1], n, u)
				if got <= 0 || got > ceil || got < ceil/2 {
					t.Fatalf("Wait(%v, %v, %d, %v) = %v; want in [%v, %v] and > 0",
						b[0], b[1], n, u, got, ceil/2, ceil)
				}
			}
		}
	}
}
