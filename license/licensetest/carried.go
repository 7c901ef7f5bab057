package licensetest

import (
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
)

// Carried (offline) requests, FORMAT.md "Carried requests": a request
// marked carried is accepted up to envelope.CarriedWindow old, and its id is
// remembered for that whole window, in a partition per licence that only a
// request naming an existing licence (or a session of it) can fill. The
// mock keeps this memory for the life of the server, like the rest of its
// state; a real server keeps it in its database.

// carriedPerLicence bounds the carried ids remembered per licence.
const carriedPerLicence = 256

// carriedMemory is one Guard per licence for carried requests.
type carriedMemory struct {
	mu     sync.Mutex
	guards map[licenseID]*envelope.Guard
}

func newCarriedMemory() *carriedMemory {
	return &carriedMemory{guards: make(map[licenseID]*envelope.Guard)}
}

func (m *carriedMemory) guard(id licenseID) *envelope.Guard {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.guards[id]
	if g == nil {
		g = envelope.NewGuard(envelope.CarriedWindow, carriedPerLicence)
		m.guards[id] = g
	}
	return g
}

// admitFresh is the freshness and replay check of an opened request posted
// to ep: the server's Guard for an ordinary request; for a carried one, the
// carried window and the memory of its licence. A carried request that names
// no existing licence or session is processed without being remembered (a
// nil ticket): it can only be refused, which changes nothing.
func (s *Server) admitFresh(ep string, op *envelope.Opened, data string, now time.Time) (*envelope.Ticket, *envelope.Reply, error) {
	if !op.Carried {
		return s.guard.Admit(op, data, now)
	}
	if op.Time.Before(now.Add(-envelope.CarriedWindow)) || op.Time.After(now.Add(s.guard.Window())) {
		return nil, nil, envelope.ErrStale
	}
	id, ok := s.carriedLicence(ep, op.Plaintext)
	if !ok {
		return nil, nil, nil
	}
	return s.carried.guard(id).Admit(op, data, now)
}

// carriedLicence names the existing licence a carried request is about: by
// product and key for register_instance and begin_session, by a live
// session's token for extend_session and end_session.
func (s *Server) carriedLicence(ep string, pt []byte) (licenseID, bool) {
	var id licenseID
	switch ep {
	case Register:
		r, err := decodeRegister(pt)
		if err != nil {
			return id, false
		}
		id = licenseID{r.ProductGUID, r.LicenseKey}
	case Begin:
		r, err := decodeBegin(pt)
		if err != nil {
			return id, false
		}
		id = licenseID{r.ProductGUID, r.LicenseKey}
	default:
		var token string
		if ep == Extend {
			r, err := decodeExtend(pt)
			if err != nil {
				return id, false
			}
			token = r.Token
		} else {
			r, err := decodeEnd(pt)
			if err != nil {
				return id, false
			}
			token = r.Token
		}
		s.store.mu.Lock()
		defer s.store.mu.Unlock()
		sess := s.store.sessions[token]
		if sess == nil {
			return id, false
		}
		return sess.lic.id, true
	}
	_, ok := s.store.license(id.product, id.key)
	return id, ok
}
