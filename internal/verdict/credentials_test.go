package verdict_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/verdict"
)

// TestCredentialsRejected: a server that answers but does not authenticate
// the client is marked as a credentials fault, which stays unreachable
// (grace applies) and names the likely causes; freshness rejections, proxy
// and firewall pages and server errors are not.
func TestCredentialsRejected(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	rejection := func(err error) (int, []byte) { return envelope.RejectionReply(err, now) }
	ua, uaBody := rejection(envelope.ErrUnauthentic)
	st, stBody := rejection(envelope.ErrStale)
	rp, rpBody := rejection(envelope.ErrReplayed)
	b := func(s string) []byte { return []byte(s) }
	for _, tc := range []struct {
		name   string
		sealed bool
		status int
		body   []byte
		want   bool
		cat    verdict.Category
	}{
		{"envelope unauthentic (the mock: wrong API key or key)", true, ua, uaBody, true, verdict.Unreachable},
		{"envelope unauthentic, unsealed", false, ua, uaBody, true, verdict.Unreachable},
		{"envelope stale", true, st, stBody, false, verdict.Unreachable},
		{"envelope replayed", true, rp, rpBody, false, verdict.Unreachable},
		{"401 plain text", true, 401, b("Unauthorized"), true, verdict.Unreachable},
		{"401 spec failure, not sealed", true, 401, b(`{"success":false,"error":"invalid API key"}`), true, verdict.Unreachable},
		{"401 other JSON", false, 401, b(`{"message":"bad key"}`), true, verdict.Unreachable},
		{"403 spec failure, not sealed", true, 403, b(`{"success":false,"error":"access denied"}`), true, verdict.Unreachable},
		{"403 firewall page", true, 403, b(proxyPage), false, verdict.Unreachable},
		{"403 other JSON", true, 403, b(otherJSON), false, verdict.Unreachable},
		{"407", true, 407, b(proxyPage), false, verdict.Unreachable},
		{"503", true, 503, b(`{"success":false,"error":"invalid API key"}`), false, verdict.Unreachable},
		{"403 spec failure, unsealed opt-out: a refusal", false, 403, b(specFailure), false, verdict.Refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := verdict.Input{Endpoint: "begin_session", Sealed: tc.sealed, Redactor: verdict.NewRedactor("api-key-0000"),
				Opener: plainOpener{}}
			if tc.sealed {
				in.Opener = noOpener{}
			}
			in.Resp, in.Err = reply(tc.status, tc.body, nil)
			out := verdict.Classify(in)
			require.Equal(t, tc.cat, out.Category)
			assert.Equal(t, tc.want, errors.Is(out.Err, verdict.ErrCredentialsRejected), "errors.Is(%v, ErrCredentialsRejected)", out.Err)
			if tc.cat == verdict.Unreachable {
				assert.ErrorIs(t, out.Err, verdict.ErrUnreachable)
			}
			if !tc.want {
				return
			}
			msg := out.Err.Error()
			for _, cause := range []string{"API key", "public key", "shared secret", "key id"} {
				assert.Contains(t, msg, cause)
			}
			assert.Contains(t, msg, "did not authenticate this client")
			assert.Contains(t, msg, "(HTTP 40")
		})
	}
}

// noOpener opens nothing: the reply a client gets when the server could not
// seal its answer.
type noOpener struct{}

func (noOpener) OpenReply([]byte) ([]byte, error) { return nil, errors.New("does not open") }
