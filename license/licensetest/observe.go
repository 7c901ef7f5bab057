package licensetest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Request is a request the server handled, as returned by Requests.
type Request struct {
	// Endpoint is the v2 endpoint, such as Register.
	Endpoint string
	// Payload is the decrypted data, exactly as the client sent it, or nil
	// when the request could not be opened. It may be invalid JSON when the
	// request was refused as malformed.
	Payload json.RawMessage
	// Time is the server's clock when it processed the request (without
	// SetClockSkew).
	Time time.Time
	// Status is the HTTP status the server answered, or would have answered
	// for FaultDrop.
	Status int
	// Sealed reports whether the reply was sealed.
	Sealed bool
	// Fault is the queued fault the request met, or zero.
	Fault FaultKind
	// Rejected is the envelope-level rejection code (such as
	// envelope.CodeStale) when the server did not process the request
	// because its envelope failed, or "".
	Rejected string
	// Repeat reports a repeat of a request the server had already answered
	// (a retry or a replay): it got the stored reply and was not processed
	// again.
	Repeat bool
	// Down reports that the server was down in DownUnavailable mode and
	// answered 503 without processing the request.
	Down bool
	// Latency is how long the server took to answer, added latency
	// included.
	Latency time.Duration
}

// requestLog keeps the most recent requests and counts them all.
type requestLog struct {
	mu     sync.Mutex
	max    int
	buf    []Request
	counts map[string]int // by endpoint, and "" for all
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[""]++
	l.counts[r.Endpoint]++
	if l.max <= 0 {
		return
	}
	if len(l.buf) >= 2*l.max {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-l.max+1:]...)
	}
	l.buf = append(l.buf, r)
}

// Requests returns the requests the server handled, oldest first: at most
// the most recent Config.MaxRequests (default 10,000). It counts requests that
// reached an endpoint and were answered (or dropped by a fault), including
// the 503s of DownUnavailable; requests refused or reset while the server
// was down, abandoned during latency, or sent to an unknown path or with a
// method other than POST are not included. The result is a copy.
func (s *Server) Requests() []Request {
	out, _ := s.reqlog.last(math.MaxInt)
	for i := range out {
		out[i].Payload = bytes.Clone(out[i].Payload)
	}
	return out
}

// last returns a copy of the last n retained requests (nil when none are
// retained) and the sequence number (from 1) of the first of them.
func (l *requestLog) last(n int) ([]Request, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max <= 0 {
		return nil, l.counts[""] + 1
	}
	start := max(0, len(l.buf)-min(n, l.max))
	return slices.Clone(l.buf[start:]), l.counts[""] - len(l.buf) + 1 + start
}

// Count returns how many requests endpoint ("" = all four) has handled since
// the server was made, counted as Requests counts them but without limit.
func (s *Server) Count(endpoint string) int {
	l := s.reqlog
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[endpoint]
}

// Sessions returns the live sessions, in the order they began. Lapsed
// sessions are reaped first, at the server's clock.
func (s *Server) Sessions() []Session {
	st, now := s.store, s.cfg.Clock()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reap(now)
	recs := slices.SortedFunc(maps.Values(st.sessions), func(a, b *sessionRec) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Session, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Session)
	}
	return out
}

// SeatsInUse returns the number of live sessions of a licence (0 for an
// unknown one), after reaping lapsed sessions.
func (s *Server) SeatsInUse(product, key string) int {
	st, now := s.store, s.cfg.Clock()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reap(now)
	if rec := st.licenses[licenseID{product, key}]; rec != nil {
		return rec.live
	}
	return 0
}

// Instances returns the registered instances, in registration order.
func (s *Server) Instances() []Instance {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	recs := slices.SortedFunc(maps.Values(st.instances), func(a, b *instanceRec) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Instance, 0, len(recs))
	for _, i := range recs {
		out = append(out, i.Instance.clone())
	}
	return out
}

// AddLicense adds a licence, or replaces the terms of an existing one with
// the same ProductGUID and Key (its instances and sessions stay). It reports
// every invalid field at once: an empty ProductGUID or Key, negative Seats,
// an unknown State, or a duration that is negative or not whole seconds.
func (s *Server) AddLicense(l License) error {
	st := s.store
	if err := l.normalise(); err != nil {
		return err
	}
	id := licenseID{l.ProductGUID, l.Key}
	st.mu.Lock()
	defer st.mu.Unlock()
	if rec := st.licenses[id]; rec != nil {
		rec.License = l
		return nil
	}
	st.licenses[id] = &licenseRec{License: l, exact: make(map[string]*instanceRec)}
	return nil
}

// License returns the licence for product and key, with defaults applied.
func (s *Server) License(product, key string) (License, bool) {
	var l License
	err := s.store.update(product, key, func(rec *licenseRec) { l = rec.License })
	return l, err == nil
}

// Licenses returns every licence, with defaults applied, ordered by product
// GUID and key.
func (s *Server) Licenses() []License {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]License, 0, len(st.licenses))
	for _, rec := range st.licenses {
		out = append(out, rec.License)
	}
	slices.SortFunc(out, func(a, b License) int {
		return cmp.Or(strings.Compare(a.ProductGUID, b.ProductGUID), strings.Compare(a.Key, b.Key))
	})
	return out
}

// SetLicenseState sets a licence's state. Live sessions are kept, but a
// revoked or expired licence's sessions can no longer be extended (403);
// they can still be ended. It returns ErrUnknownLicense for a licence never
// added, and an error for a state other than Active, Revoked or Expired.
func (s *Server) SetLicenseState(product, key string, st LicenseState) error {
	if st < Active || st > Expired {
		return errInvalidLicense
	}
	return s.store.update(product, key, func(l *licenseRec) { l.State = st })
}

// SetControlOptions changes a licence's session duration (zero means
// DefaultSessionDuration) and grace period on the fly. Replies to later
// register, begin and extend requests carry them; sessions keep their
// current expiry until extended. Durations must be whole, non-negative
// seconds.
func (s *Server) SetControlOptions(product, key string, session, grace time.Duration) error {
	l := License{ProductGUID: product, Key: key, SessionDuration: session, GracePeriod: grace}
	if err := l.normalise(); err != nil {
		return err
	}
	return s.store.update(product, key, func(rec *licenseRec) {
		rec.SessionDuration = l.SessionDuration
		rec.GracePeriod = l.GracePeriod
	})
}
