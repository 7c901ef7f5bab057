package licensetest

import (
	"cmp"
	"maps"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest/internal/hook"
)

func init() {
	hook.Of = func(v any) hook.Internals {
		s := v.(*Server)
		return hook.Internals{Logger: s.logger, Faults: s.faultSnapshot, Requests: s.requestSnapshot, Slot: &s.slot}
	}
	hook.CheckDurations = func(product, key string, session, grace, maxDur time.Duration) error {
		return (&License{ProductGUID: product, Key: key, SessionDuration: session, GracePeriod: grace, MaxDuration: maxDur}).normalise()
	}
}

// faultSnapshot returns the faults in effect, for the admin package.
func (s *Server) faultSnapshot() hook.Faults {
	f := s.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	out := hook.Faults{Down: f.down, Mode: f.mode.String(), Queued: []hook.Queued{}, Latency: positive(f.latency),
		RetryAfter: positive(f.retryAfter), ContentType: maps.Clone(f.contentType), Skew: f.skew.String()}
	maps.DeleteFunc(out.ContentType, func(_, ct string) bool { return ct == "" })
	for _, p := range f.queue {
		out.Queued = append(out.Queued, hook.Queued{Endpoint: cmp.Or(p.Endpoint, "all"), Kind: p.Kind.String(), Left: p.left, Status: p.Status})
	}
	return out
}

// positive returns the positive durations of m as text.
func positive(m map[string]time.Duration) map[string]string {
	out := map[string]string{}
	for ep, d := range m {
		if d > 0 {
			out[ep] = d.String()
		}
	}
	return out
}

// requestSnapshot returns the last n retained requests and the sequence
// number of the first, for the admin package.
func (s *Server) requestSnapshot(n int) (any, int) {
	reqs, first := s.reqlog.last(n)
	if reqs == nil {
		reqs = []Request{}
	}
	return reqs, first
}
