package envelope_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/stretchr/testify/require"
)

// TestEndpointBinding: an envelope sealed for one endpoint and posted to
// another does not open, and the error is unauthentic (HTTP 401).
func TestEndpointBinding(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		s, o := p.sealer(envelope.WithSealedReplies()), p.opener()
		sd, err := s.Seal(envelope.Request{APIKey: apiKey, Endpoint: "begin_session"}, []byte(plaintext))
		require.NoError(t, err)
		require.Equal(t, apiKey, sd.Key, "%s: built-in modes send the API key as key", p.name)
		for _, ep := range []string{"extend_session", "end_session", "register_instance", "", "begin_session/"} {
			op, err := o.Open(envelope.Incoming{Key: sd.Key, Data: sd.Data, Endpoint: ep})
			require.ErrorIs(t, err, envelope.ErrUnauthentic, "%s: Open at %q", p.name, ep)
			require.Nil(t, op)
			status, _ := envelope.RejectionReply(err, time.Now())
			require.Equal(t, http.StatusUnauthorized, status)
		}
		op, err := o.Open(envelope.Incoming{Key: sd.Key, Data: sd.Data, Endpoint: "begin_session"})
		require.NoError(t, err, p.name)
		require.Equal(t, "begin_session", op.Endpoint)
		require.Equal(t, sd.ID, op.ID)
	}
}

func TestSealRequestValidation(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		s := p.sealer()
		for _, ep := range []string{"", "begin session", string(make([]byte, envelope.MaxEndpointLen+1)), "é"} {
			_, err := s.Seal(envelope.Request{APIKey: apiKey, Endpoint: ep}, nil)
			require.ErrorIs(t, err, envelope.ErrMalformed, "%s: Seal(endpoint %q)", p.name, ep)
		}
		_, err := s.Seal(envelope.Request{APIKey: apiKey, Endpoint: "x", Time: time.Unix(-1, 0)}, nil)
		require.ErrorIs(t, err, envelope.ErrMalformed)
		// The timestamp is carried in whole seconds; the zero time means now.
		at := time.Date(2030, 5, 6, 7, 8, 9, 999, time.UTC)
		sd, err := s.Seal(envelope.Request{APIKey: apiKey, Endpoint: "x", Time: at}, nil)
		require.NoError(t, err)
		op, err := p.opener().Open(envelope.Incoming{Key: apiKey, Data: sd.Data, Endpoint: "x"})
		require.NoError(t, err)
		require.True(t, op.Time.Equal(at.Truncate(time.Second)), "%s: time %v", p.name, op.Time)
		before := time.Now().Add(-time.Second)
		sd, err = s.Seal(envelope.Request{APIKey: apiKey, Endpoint: "x"}, nil)
		require.NoError(t, err)
		op, err = p.opener().Open(envelope.Incoming{Key: apiKey, Data: sd.Data, Endpoint: "x"})
		require.NoError(t, err)
		require.False(t, op.Time.Before(before.Truncate(time.Second)))
	}
}

// TestRequestIDsDistinct: every Seal draws a fresh 16-byte request id.
func TestRequestIDsDistinct(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		s := p.sealer()
		seen := map[[envelope.RequestIDSize]byte]bool{}
		for range 200 {
			sd, err := s.Seal(envelope.Request{APIKey: apiKey, Endpoint: "x"}, nil)
			require.NoError(t, err)
			require.False(t, seen[sd.ID], "%s: repeated request id", p.name)
			require.NotEqual(t, [envelope.RequestIDSize]byte{}, sd.ID)
			seen[sd.ID] = true
		}
	}
}

func TestRepliesAuthenticated(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		require.False(t, p.sealer().RepliesAuthenticated(), p.name)
		require.True(t, p.sealer(envelope.WithSealedReplies()).RepliesAuthenticated(), p.name)
	}
}

func opened(t *testing.T, p pair, at time.Time) (*envelope.Opened, string) {
	t.Helper()
	sd, err := p.sealer(envelope.WithSealedReplies()).Seal(envelope.Request{APIKey: apiKey, Endpoint: "begin_session", Time: at}, []byte(plaintext))
	require.NoError(t, err)
	op, err := p.opener().Open(envelope.Incoming{Key: apiKey, Data: sd.Data, Endpoint: "begin_session"})
	require.NoError(t, err)
	return op, sd.Data
}

// TestGuardReplay: a repeated request is answered from the cache and never
// admitted twice; a request id reused by other data is rejected; a request
// still in progress is not admitted again.
func TestGuardReplay(t *testing.T) {
	t.Parallel()
	p := pairs(t)[2]
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	g := envelope.NewGuard(0, 0)
	require.Equal(t, envelope.DefaultWindow, g.Window())
	op, data := opened(t, p, now)

	ticket, cached, err := g.Admit(op, data, now)
	require.NoError(t, err)
	require.NotNil(t, ticket)
	require.Nil(t, cached)

	_, _, err = g.Admit(op, data, now.Add(time.Second))
	require.ErrorIs(t, err, envelope.ErrInProgress)
	status, _ := envelope.RejectionReply(err, now)
	require.Equal(t, http.StatusServiceUnavailable, status)

	body := []byte(`{"data":"sealed"}`)
	ticket.Done(http.StatusOK, body)
	body[0] = 'X' // the guard keeps its own copy
	for i := range 3 {
		tk, cached, err := g.Admit(op, data, now.Add(time.Duration(i)*time.Minute))
		require.NoError(t, err)
		require.Nil(t, tk, "a repeat must never be admitted for processing")
		require.Equal(t, &envelope.Reply{Status: 200, Body: []byte(`{"data":"sealed"}`)}, cached)
	}

	// Same id, other bytes: an attacker who saw the id in the clear header
	// cannot steal the cached reply or block the id with his own request.
	other := *op
	_, _, err = g.Admit(&other, data+"x", now)
	require.ErrorIs(t, err, envelope.ErrReplayed)
	status, _ = envelope.RejectionReply(err, now)
	require.Equal(t, http.StatusUnauthorized, status)

	// After the window the same request is stale, not processed again.
	_, _, err = g.Admit(op, data, now.Add(envelope.DefaultWindow+time.Second))
	require.ErrorIs(t, err, envelope.ErrStale)
	require.Zero(t, g.Len(), "entries outside the window are pruned")

	// Forget lets a request the server did not process be admitted again.
	op2, data2 := opened(t, p, now)
	tk, _, err := g.Admit(op2, data2, now)
	require.NoError(t, err)
	tk.Forget()
	tk, _, err = g.Admit(op2, data2, now)
	require.NoError(t, err)
	require.NotNil(t, tk)
}

func TestGuardWindow(t *testing.T) {
	t.Parallel()
	p := pairs(t)[0]
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	g := envelope.NewGuard(time.Minute, 0)
	for _, tc := range []struct {
		skew time.Duration
		err  error
	}{
		{0, nil}, {time.Minute, nil}, {-time.Minute, nil},
		{time.Minute + time.Second, envelope.ErrStale}, {-time.Minute - time.Second, envelope.ErrStale},
		{-24 * time.Hour, envelope.ErrStale}, {24 * time.Hour, envelope.ErrStale},
	} {
		op, data := opened(t, p, now.Add(tc.skew))
		_, _, err := g.Admit(op, data, now)
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
		require.True(t, rej.ServerTime.Equal(now), "rejection carries the server's time")
	}
}

// TestGuardBounded: a full guard forgets the oldest id and from then on
// treats every timestamp up to it as stale, so forgetting never re-admits a
// replay.
func TestGuardBounded(t *testing.T) {
	t.Parallel()
	p := pairs(t)[2]
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	g := envelope.NewGuard(time.Hour, 3)
	type req struct {
		op   *envelope.Opened
		data string
	}
	var rs []req
	for i := range 4 {
		op, data := opened(t, p, now.Add(time.Duration(i)*time.Second))
		rs = append(rs, req{op, data})
		tk, _, err := g.Admit(op, data, now)
		require.NoError(t, err)
		tk.Done(200, []byte("ok"))
	}
	require.Equal(t, 3, g.Len())
	_, _, err := g.Admit(rs[0].op, rs[0].data, now)
	require.ErrorIs(t, err, envelope.ErrStale, "the evicted request must not be processed again")
	_, cached, err := g.Admit(rs[3].op, rs[3].data, now)
	require.NoError(t, err)
	require.NotNil(t, cached)
	// A new request no newer than the oldest remembered one cannot evict it.
	op, data := opened(t, p, now)
	_, _, err = g.Admit(op, data, now)
	require.ErrorIs(t, err, envelope.ErrStale)
}

func TestGuardConcurrent(t *testing.T) {
	t.Parallel()
	p := pairs(t)[2]
	now := time.Now()
	g := envelope.NewGuard(0, 50)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				op, data := opened(t, p, now.Add(time.Duration(i*20+j)*time.Millisecond))
				tk, _, err := g.Admit(op, data, now)
				if err == nil {
					tk.Done(200, []byte(fmt.Sprint(i, j)))
				} else if !errors.Is(err, envelope.ErrStale) {
					t.Errorf("Admit: %v", err)
				}
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, g.Len(), 50)
}

func TestParseRejection(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, err := range []error{envelope.ErrMalformed, envelope.ErrUnsupportedVersion, envelope.ErrUnauthentic,
		envelope.ErrStale, envelope.ErrReplayed, envelope.ErrInProgress} {
		status, body := envelope.RejectionReply(&envelope.Error{Op: "open", Reason: "x", Err: err}, now)
		rej, ok := envelope.ParseRejection(status, body)
		require.True(t, ok, "%v", err)
		require.Equal(t, status, rej.Status)
		require.NotContains(t, string(body), `"x"`, "the detail stays on the server")
	}
	for _, body := range []string{``, `{}`, `{"success":false,"time":"t","error":"revoked"}`, `{"data":"AAAA"}`,
		`{"envelope_error":""}`, `{"envelope_error":5}`, `[1]`, `{"envelope_error":"x"` /* truncated */} {
		_, ok := envelope.ParseRejection(401, []byte(body))
		require.False(t, ok, "ParseRejection(%q)", body)
	}
}

// FuzzParseRejection: any body either is not a rejection or yields a code;
// it never panics.
func FuzzParseRejection(f *testing.F) {
	_, body := envelope.RejectionReply(envelope.ErrStale, time.Unix(0, 0))
	f.Add(401, body)
	f.Add(400, []byte(`{"envelope_error":"x","time":5}`))
	f.Add(200, []byte(`{"data":"AAAA"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		rej, ok := envelope.ParseRejection(status, body)
		if ok && (rej.Code == "" || rej.Status != status) {
			t.Fatalf("ParseRejection(%d, %q) = %+v", status, body, rej)
		}
	})
}
