package envelope_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
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
