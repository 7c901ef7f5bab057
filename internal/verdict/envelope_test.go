package verdict

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/transport"
)

// TestEnvelopeRejection: the server's plain envelope-level rejection is
// unreachable (never a refusal), sealed or not, and carries its code and
// the server's time for the client's clock correction.
func TestEnvelopeRejection(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, err := range []error{envelope.ErrStale, envelope.ErrUnauthentic, envelope.ErrReplayed, envelope.ErrMalformed} {
		status, body := envelope.RejectionReply(err, now)
		for _, sealed := range []bool{false, true} {
			out := Classify(Input{
				Endpoint: "extend_session",
				Resp:     &transport.Response{Status: status, Body: body},
				Err:      &transport.Error{Endpoint: "extend_session", Status: status, Attempts: 1},
				Sealed:   sealed,
			})
			require.Equal(t, Unreachable, out.Category, "%v sealed=%v", err, sealed)
			assert.ErrorIs(t, out.Err, ErrUnreachable)
			assert.NotErrorIs(t, out.Err, ErrRefused)
			var rej *EnvelopeRejection
			require.True(t, errors.As(out.Err, &rej))
			assert.True(t, rej.ServerTime.Equal(now))
			var e *Error
			require.True(t, errors.As(out.Err, &e))
			assert.Equal(t, DetailEnvelopeRejected, e.Detail)
		}
	}
}
