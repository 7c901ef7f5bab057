package licensetest

import (
	"time"

	"github.com/licensekit/licensekit-go/envelope"
)

// Carried (offline) requests, FORMAT.md "Carried requests": a request
// marked carried is accepted up to envelope.CarriedWindow old, and its id is
// remembered for that whole window, in a partition per licence that only a
// request naming an existing licence (or a session of it) can fill. The
// mock keeps this memory for the life of the server, like the rest of its
// state; a real server keeps it in its database.

// carriedPerLicence bounds the carried ids remembered per licence or
// session.
const carriedPerLicence = 256

// admitFresh is the freshness and replay check of an opened request posted
// to ep: the server's Guard for an ordinary request, the carried Guard for a
// carried one. Either way an id is remembered only once the request proved
// an existing licence or a live session (store.scope); one that proves
// nothing is processed without being remembered: it can only be refused,
// which changes nothing.
func (s *Server) admitFresh(ep string, op *envelope.Opened, data string, now time.Time) (*envelope.Ticket, *envelope.Reply, error) {
	scope := s.store.scope(ep, op.Plaintext)
	if !op.Carried {
		return s.guard.Admit(op, data, now, scope)
	}
	return s.carried.Admit(op, data, now, scope)
}
