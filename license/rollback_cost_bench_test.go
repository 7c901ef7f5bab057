package license

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRollbackRecordCost alternates, in every iteration, one state
// save without the anti-rollback record (seal, temporary file, fsync,
// rename, fsync of the directory) and one with it (the same, then the
// sealed record written the same way outside StateDir), on one client, so
// that a change of load or disk latency hits both alike. It reports the
// median of each ("state-only-ms", "with-record-ms"), the median cost of
// the record per save ("record-ms", the difference of the medians) and
// their ratio ("x_state_only"). One op is one save of each kind.
//
//	go test ./license -run '^$' -bench BenchmarkRollbackRecordCost -benchtime 100x
func BenchmarkRollbackRecordCost(b *testing.B) {
	c := benchSaveClient(b)
	rb := c.store.rb
	defer func() { c.store.rb = rb }()
	ctx := context.Background()
	var plain, with []time.Duration
	for b.Loop() {
		c.store.rb = nil
		t0 := time.Now()
		c.saveLocked(ctx)
		t1 := time.Now()
		c.store.rb = rb
		c.saveLocked(ctx)
		plain, with = append(plain, t1.Sub(t0)), append(with, time.Since(t1))
	}
	mp, mw := medianDuration(plain), medianDuration(with)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(mp), "state-only-ms")
	b.ReportMetric(ms(mw), "with-record-ms")
	b.ReportMetric(ms(mw-mp), "record-ms")
	if mp > 0 {
		b.ReportMetric(float64(mw)/float64(mp), "x_state_only")
	}
}
