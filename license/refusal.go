package license

import (
	"context"
	"errors"
	"time"

	"github.com/licensekit/licensekit-go/internal/text"
)

// refusalRecord is the persisted final refusal: while it is set, the state
// grants no offline time, whatever its deadlines say. Only an authenticated
// success from the server clears it.
type refusalRecord struct {
	// At is the wall time of the refusal.
	At time.Time `json:"at"`
	// Endpoint and Message are the refusal's. Message is the APIError's,
	// which the verdict redactor already cleaned of secrets; text.Clean
	// only bounds it to one printable line.
	Endpoint string `json:"endpoint,omitempty"`
	Message  string `json:"message,omitempty"`
}

// persistRefusalLocked records a final refusal verdict (a refused begin, or
// the fresh begin after a refused extend): the offline allowance is zeroed
// and the state saved at once, so that neither Close nor a crash nor an
// offline restart brings it back. Intermediate answers (the refused extend
// itself, end_session's 422) never come here.
func (c *Client) persistRefusalLocked(err error) {
	rec := &refusalRecord{At: c.wallNow()}
	var api *APIError
	if errors.As(err, &api) {
		rec.Endpoint, rec.Message = api.Endpoint, text.Clean(api.Message, 200)
	}
	c.st.Refusal = rec
	c.st.Token = ""
	c.st.Sent = time.Time{} // no deadline left to run offline on
	c.anchor = time.Time{}
	c.saveLocked(context.Background())
	// Shared mode: the verdict is in the shared state for every process;
	// this one stops renewing, so it lets another ask the server.
	c.resignSharedLocked()
}

// clearRefusalLocked forgets a persisted refusal after a success. Only a
// success the client can authenticate (a sealed reply) restores the offline
// allowance: an unauthenticated one is used for this run, but the state keeps
// granting nothing offline.
func (c *Client) clearRefusalLocked() {
	if c.st.Refusal != nil && c.sealed {
		c.st.Refusal = nil
	}
}

// persistedRefusal explains why a persisted refusal grants no offline time.
func (c *Client) persistedRefusal() error {
	r := c.st.Refusal
	if r == nil {
		return nil
	}
	msg := "the server refused this licence at " + r.At.UTC().Format(time.RFC3339)
	if r.Message != "" {
		msg += " (" + r.Message + ")"
	}
	return &stateError{kind: ErrRefused, msg: msg + "; no offline use until the server answers again"}
}
