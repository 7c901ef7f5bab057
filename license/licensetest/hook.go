package licensetest

import (
	"cmp"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest/internal/hook"
)

func init() {
	hook.Of = func(v any) hook.Internals {
		s := v.(*Server)
		return hook.Internals{Logger: s.cfg.Logger, Faults: s.faultSnapshot,
			Requests: func(n int) (any, int) { return s.reqlog.last(n) }, Slot: &s.slot}
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
	out := hook.Faults{Down: f.down, Mode: f.mode.String(), Queued: []hook.Queued{}, Latency: map[string]string{},
		RetryAfter: map[string]string{}, ContentType: map[string]string{}, Skew: f.skew.String()}
	for _, p := range f.queue {
		out.Queued = append(out.Queued, hook.Queued{Endpoint: cmp.Or(p.Endpoint, "all"), Kind: p.Kind.String(), Left: p.Count, Status: p.Status})
	}
	for ep, st := range f.endpoints {
		if st.latency > 0 {
			out.Latency[ep] = st.latency.String()
		}
		if st.retryAfter > 0 {
			out.RetryAfter[ep] = st.retryAfter.String()
		}
		if st.contentType != "" {
			out.ContentType[ep] = st.contentType
		}
	}
	return out
}
