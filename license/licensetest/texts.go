package licensetest

import (
	"cmp"
	"fmt"
	"net/http"
)

// RefusalTexts are the "error" texts of the server's refusals, so that a
// test can run a client against a server that words its refusals like the
// vendor's real one (see license.WithRefusalRules). An empty field keeps
// the default text.
type RefusalTexts struct {
	// UnknownLicense: register_instance or begin_session for a licence the
	// server does not hold (403, default "unknown license").
	UnknownLicense string
	// Revoked: any call but end_session on a revoked licence (403,
	// default "license revoked").
	Revoked string
	// Expired: any call but end_session on an expired licence (403,
	// default "license expired").
	Expired string
	// UnknownInstance: begin_session for an instance the server does not
	// know (404, default "unknown instance").
	UnknownInstance string
	// UnknownToken: extend_session or end_session for a token the server
	// never issued or that was ended (404, or 422 from end_session; default
	// "unknown token").
	UnknownToken string
	// Lapsed: extend_session or end_session for a session that lapsed (404,
	// or 422 from end_session; default "session lapsed").
	Lapsed string
	// SeatLimit: begin_session beyond the seat count (409, default "seat
	// limit reached: N of M seats in use").
	SeatLimit string
}

// DefaultRefusalTexts returns the texts the server uses unless
// Config.RefusalTexts says otherwise. SeatLimit is empty: by default its text
// names the seat counts.
func DefaultRefusalTexts() RefusalTexts {
	return RefusalTexts{
		UnknownLicense:  "unknown license",
		Revoked:         "license revoked",
		Expired:         "license expired",
		UnknownInstance: "unknown instance",
		UnknownToken:    "unknown token",
		Lapsed:          "session lapsed",
	}
}

// refusals are a server's refusal replies.
type refusals struct {
	unknownLicense, unknownInstance, unknownToken, lapsed *apiError
	state                                                 [Expired + 1]*apiError // by licence state; nil for Active
	seatLimit                                             string
}

// seatLimitFor is the refusal of a begin_session with live of seats in use.
func (r *refusals) seatLimitFor(live, seats int) *apiError {
	return refuse(http.StatusConflict, cmp.Or(r.seatLimit, fmt.Sprintf("seat limit reached: %d of %d seats in use", live, seats)))
}

func newRefusals(t RefusalTexts) refusals {
	d := DefaultRefusalTexts()
	return refusals{
		unknownLicense: refuse(http.StatusForbidden, cmp.Or(t.UnknownLicense, d.UnknownLicense)),
		state: [...]*apiError{
			Revoked: refuse(http.StatusForbidden, cmp.Or(t.Revoked, d.Revoked)),
			Expired: refuse(http.StatusForbidden, cmp.Or(t.Expired, d.Expired)),
		},
		unknownInstance: refuse(http.StatusNotFound, cmp.Or(t.UnknownInstance, d.UnknownInstance)),
		unknownToken:    refuse(http.StatusNotFound, cmp.Or(t.UnknownToken, d.UnknownToken)),
		lapsed:          refuse(http.StatusNotFound, cmp.Or(t.Lapsed, d.Lapsed)),
		seatLimit:       t.SeatLimit,
	}
}
