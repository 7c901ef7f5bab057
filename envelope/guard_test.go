package envelope_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
)

// guardNow is the server clock of the Guard tests, with a fraction of a
// second that the Guard must drop.
var guardNow = time.Date(2026, 3, 1, 10, 0, 0, 900_000_000, time.UTC)

// req is an opened request as the Guard sees it: an id, a timestamp and a
// data string. The Guard reads nothing else, so the tests build it by hand.
func req(t testing.TB, ts time.Time) (*envelope.Opened, string) {
	t.Helper()
	op := &envelope.Opened{Time: ts.Truncate(time.Second)}
	_, _ = rand.Read(op.ID[:])
	return op, fmt.Sprintf("data-%x", op.ID)
}

func licence(name string) envelope.Scope { return envelope.Scope{Partition: name} }

// TestGuardReplay: a repeated request is answered from the cache and never
// admitted twice; a request id reused by other data is rejected; a request
// still in progress is not admitted again.
func TestGuardReplay(t *testing.T) {
	t.Parallel()
	now := guardNow
	g := envelope.NewGuard(envelope.GuardConfig{})
	require.Equal(t, envelope.DefaultWindow, g.Window())
	require.Equal(t, envelope.DefaultFuture, g.Future())
	op, data := req(t, now)

	ticket, cached, err := g.Admit(op, data, now, licence("L1"))
	require.NoError(t, err)
	require.True(t, ticket.Remembered())
	require.Nil(t, cached)

	_, _, err = g.Admit(op, data, now.Add(time.Second), licence("L1"))
	require.ErrorIs(t, err, envelope.ErrInProgress)
	status, _ := envelope.RejectionReply(err, now)
	require.Equal(t, http.StatusServiceUnavailable, status)

	body := []byte(`{"data":"sealed"}`)
	ticket.Done(http.StatusOK, body)
	body[0] = 'X' // the guard keeps its own copy
	for i := range 3 {
		// A repeat is recognised whatever scope it comes with: a resend
		// whose session token has since rotated proves nothing any more.
		for _, sc := range []envelope.Scope{licence("L1"), {}, licence("other")} {
			tk, cached, err := g.Admit(op, data, now.Add(time.Duration(i)*time.Minute), sc)
			require.NoError(t, err)
			require.Nil(t, tk, "a repeat must never be admitted for processing")
			require.Equal(t, &envelope.Reply{Status: 200, Body: []byte(`{"data":"sealed"}`)}, cached)
		}
	}

	// Same id, other bytes: an attacker who saw the id in the clear header
	// cannot steal the cached reply or block the id with his own request.
	_, _, err = g.Admit(op, data+"x", now, envelope.Scope{})
	require.ErrorIs(t, err, envelope.ErrReplayed)
	status, _ = envelope.RejectionReply(err, now)
	require.Equal(t, http.StatusUnauthorized, status)

	// After the window the same request is stale, not processed again.
	_, _, err = g.Admit(op, data, now.Add(envelope.DefaultWindow+time.Second), licence("L1"))
	require.ErrorIs(t, err, envelope.ErrStale)
	require.Zero(t, g.Len(), "entries outside the window are pruned")

	// Forget lets a request the server did not process be admitted again.
	op2, data2 := req(t, now)
	tk, _, err := g.Admit(op2, data2, now, licence("L1"))
	require.NoError(t, err)
	tk.Forget()
	require.Zero(t, g.Len())
	tk, _, err = g.Admit(op2, data2, now, licence("L1"))
	require.NoError(t, err)
	require.True(t, tk.Remembered())
}

// TestGuardWindow: the window is whole seconds, inclusive at both ends,
// with the server's clock floored to a whole second; the future side is
// short.
func TestGuardWindow(t *testing.T) {
	t.Parallel()
	now := guardNow // 10:00:00.9, which counts as 10:00:00
	g := envelope.NewGuard(envelope.GuardConfig{Window: time.Minute})
	require.Equal(t, 30*time.Second, g.Future())
	for _, tc := range []struct {
		skew time.Duration
		err  error
	}{
		{0, nil}, {-time.Minute, nil}, {30 * time.Second, nil},
		{31 * time.Second, envelope.ErrStale}, {-time.Minute - time.Second, envelope.ErrStale},
		{-24 * time.Hour, envelope.ErrStale}, {24 * time.Hour, envelope.ErrStale},
	} {
		op, data := req(t, now.Truncate(time.Second).Add(tc.skew))
		_, _, err := g.Admit(op, data, now, licence("L"))
		if tc.err == nil {
			require.NoError(t, err, "skew %v", tc.skew)
			continue
		}
		require.ErrorIs(t, err, tc.err, "skew %v", tc.skew)
		status, body := envelope.RejectionReply(err, now)
		require.Equal(t, http.StatusUnauthorized, status)
		rej, ok := envelope.ParseRejection(status, body)
		require.True(t, ok)
		require.Equal(t, envelope.CodeStale, rej.Code)
		require.True(t, rej.ServerTime.Equal(now.Truncate(time.Second)), "rejection carries the server's time")
	}
	// Future is never longer than the window.
	g = envelope.NewGuard(envelope.GuardConfig{Window: 10 * time.Second, Future: time.Hour})
	require.Equal(t, 10*time.Second, g.Future())
}

// TestGuardUnprovenNotRemembered: a request that proved no principal is
// checked but never remembered, so it takes no room.
func TestGuardUnprovenNotRemembered(t *testing.T) {
	t.Parallel()
	g := envelope.NewGuard(envelope.GuardConfig{MaxEntries: 4})
	op, data := req(t, guardNow)
	for range 3 {
		tk, cached, err := g.Admit(op, data, guardNow, envelope.Scope{})
		require.NoError(t, err)
		require.Nil(t, cached)
		require.False(t, tk.Remembered())
		tk.Done(200, []byte("refused"))
		tk.Forget()
	}
	require.Zero(t, g.Len())
}

// TestGuardFloodRejectsNoFreshRequest: 100,000 requests from others, proven
// or not, stamped at the future edge or across the window, never make an
// honest fresh request stale or rejected, the Guard stays within its bounds,
// and every honest request stays answered from the cache. On format 2.0's
// rule (a full Guard rejects every timestamp not after its evicted oldest)
// the first honest request after the flood was stale.
func TestGuardFloodRejectsNoFreshRequest(t *testing.T) {
	t.Parallel()
	const (
		capacity = 1000
		perPart  = 50
		flood    = 100_000
	)
	for _, tc := range []struct {
		name  string
		scope func(i int) envelope.Scope
		stamp func(i int) time.Duration
	}{
		{"strangers/future-edge", func(int) envelope.Scope { return envelope.Scope{} }, func(int) time.Duration { return envelope.DefaultFuture }},
		{"strangers/across-window", func(int) envelope.Scope { return envelope.Scope{} }, func(i int) time.Duration { return time.Duration(i%330-300) * time.Second }},
		{"one-customer/future-edge", func(int) envelope.Scope { return licence("mallory") }, func(int) time.Duration { return envelope.DefaultFuture }},
		{"many-customers/across-window", func(i int) envelope.Scope { return licence(fmt.Sprint("m", i%100)) }, func(i int) time.Duration { return time.Duration(i%330-300) * time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := envelope.NewGuard(envelope.GuardConfig{MaxEntries: capacity, PartitionEntries: perPart})
			type honest struct {
				op   *envelope.Opened
				data string
			}
			var hs []honest
			now := guardNow
			for i := range flood {
				if i%1000 == 0 {
					// An honest customer's request, stamped now.
					op, data := req(t, now)
					tk, cached, err := g.Admit(op, data, now, licence(fmt.Sprint("honest", len(hs)%20)))
					require.NoError(t, err, "honest request %d rejected after %d flood requests", len(hs), i)
					require.Nil(t, cached)
					tk.Done(200, []byte(data))
					hs = append(hs, honest{op, data})
				}
				if i%10_000 == 0 {
					now = now.Add(time.Second)
				}
				op, data := req(t, now.Add(tc.stamp(i)))
				tk, _, err := g.Admit(op, data, now, tc.scope(i))
				if err == nil {
					tk.Done(200, nil)
				}
				require.LessOrEqual(t, g.Len(), capacity)
			}
			// Every honest request is still answered from the cache: the
			// flood fills the largest partitions, never the honest ones.
			for i, h := range hs {
				tk, cached, err := g.Admit(h.op, h.data, now, envelope.Scope{})
				require.NoError(t, err)
				require.Nil(t, tk, "honest request %d forgotten", i)
				require.Equal(t, h.data, string(cached.Body))
			}
		})
	}
}

// TestGuardPartitionQuota: a full partition forgets its own oldest answered
// id and never rejects; other partitions keep theirs.
func TestGuardPartitionQuota(t *testing.T) {
	t.Parallel()
	g := envelope.NewGuard(envelope.GuardConfig{PartitionEntries: 3})
	first, firstData := req(t, guardNow)
	tk, _, err := g.Admit(first, firstData, guardNow, licence("A"))
	require.NoError(t, err)
	inProgress := tk // never answered
	var answered []*envelope.Opened
	var answeredData []string
	for range 3 {
		op, data := req(t, guardNow)
		tk, _, err := g.Admit(op, data, guardNow, licence("A"))
		require.NoError(t, err)
		tk.Done(200, []byte("ok"))
		answered = append(answered, op)
		answeredData = append(answeredData, data)
	}
	require.Equal(t, 3, g.Len())
	// The oldest answered id went, not the one still being processed.
	_, _, err = g.Admit(first, firstData, guardNow, envelope.Scope{})
	require.ErrorIs(t, err, envelope.ErrInProgress)
	inProgress.Done(200, []byte("late"))
	// A forgotten id replayed inside the window is processed again: the
	// documented, bounded cost of forgetting instead of rejecting.
	tk, cached, err := g.Admit(answered[0], answeredData[0], guardNow, licence("A"))
	require.NoError(t, err)
	require.Nil(t, cached)
	require.True(t, tk.Remembered())
	_, cached, err = g.Admit(answered[2], answeredData[2], guardNow, licence("A"))
	require.NoError(t, err)
	require.NotNil(t, cached)
}

// TestGuardFullEvictsLargestPartition: at the global bound the Guard
// forgets from its largest partition, so small (honest) ones keep their
// ids.
func TestGuardFullEvictsLargestPartition(t *testing.T) {
	t.Parallel()
	g := envelope.NewGuard(envelope.GuardConfig{MaxEntries: 10, PartitionEntries: 10})
	small, smallData := req(t, guardNow)
	tk, _, err := g.Admit(small, smallData, guardNow, licence("small"))
	require.NoError(t, err)
	tk.Done(200, []byte("kept"))
	for range 100 {
		op, data := req(t, guardNow)
		tk, _, err := g.Admit(op, data, guardNow, licence("big"))
		require.NoError(t, err)
		tk.Done(200, nil)
		require.LessOrEqual(t, g.Len(), 10)
	}
	_, cached, err := g.Admit(small, smallData, guardNow, envelope.Scope{})
	require.NoError(t, err)
	require.Equal(t, "kept", string(cached.Body))
	// A partition of one entry at a bound of one still admits.
	g = envelope.NewGuard(envelope.GuardConfig{MaxEntries: 1})
	for range 3 {
		op, data := req(t, guardNow)
		tk, _, err := g.Admit(op, data, guardNow, licence("one"))
		require.NoError(t, err)
		require.True(t, tk.Remembered())
		require.Equal(t, 1, g.Len())
	}
}

func TestGuardConcurrent(t *testing.T) {
	t.Parallel()
	now := time.Now()
	g := envelope.NewGuard(envelope.GuardConfig{MaxEntries: 50, PartitionEntries: 20})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				op, data := req(t, now)
				tk, _, err := g.Admit(op, data, now, licence(fmt.Sprint(i%3)))
				if err != nil {
					t.Errorf("Admit: %v", err)
					return
				}
				if j%2 == 0 {
					tk.Done(200, []byte(fmt.Sprint(i, j)))
				} else {
					tk.Forget()
				}
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, g.Len(), 50)
}

// BenchmarkGuardFlood measures Admit under a flood: strangers (not
// remembered) and one customer flooding its own partition, with an honest
// request every 1,000. It reports the Guard's entries at the end, which
// stay within MaxEntries however large b.N is.
func BenchmarkGuardFlood(b *testing.B) {
	for _, name := range []string{"strangers", "customer"} {
		b.Run(name, func(b *testing.B) {
			g := envelope.NewGuard(envelope.GuardConfig{})
			ops := make([]*envelope.Opened, 1024)
			datas := make([]string, len(ops))
			for i := range ops {
				ops[i], datas[i] = req(b, guardNow)
			}
			scope := envelope.Scope{}
			if name == "customer" {
				scope = licence("mallory")
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				op := ops[i%len(ops)]
				op.ID[0], op.ID[1], op.ID[2] = byte(i), byte(i>>8), byte(i>>16)
				tk, _, err := g.Admit(op, datas[i%len(ops)], guardNow, scope)
				if err == nil {
					tk.Done(200, nil)
				}
				if i%1000 == 0 {
					h, hd := req(b, guardNow)
					if _, _, err := g.Admit(h, hd, guardNow, licence("honest")); err != nil {
						b.Fatalf("honest request rejected: %v", err)
					}
				}
				i++
			}
			b.ReportMetric(float64(g.Len()), "entries")
		})
	}
}
