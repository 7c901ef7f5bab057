package licensetest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

// captured is one sealed request as an attacker on the path sees it.
type captured struct {
	endpoint string
	body     []byte
	reply    envelope.ReplyOpener
}

func capture(t *testing.T, c *wiretest.Client, endpoint string, payload any) captured {
	t.Helper()
	pt, err := json.Marshal(payload)
	require.NoError(t, err)
	sd, err := c.Seal(endpoint, pt)
	require.NoError(t, err)
	body, _ := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
	return captured{endpoint, body, sd.Reply}
}

func (cp captured) send(t *testing.T, c *wiretest.Client, endpoint string) *wiretest.Reply {
	t.Helper()
	r, err := c.PostRaw(endpoint, cp.body, cp.reply)
	require.NoError(t, err)
	return r
}

func rejection(t *testing.T, r *wiretest.Reply) *envelope.Rejection {
	t.Helper()
	rej, ok := envelope.ParseRejection(r.Status, r.Raw)
	require.True(t, ok, "not an envelope-level rejection: %d %s", r.Status, r.Raw)
	return rej
}

// TestReplayedBeginTakesNoSecondSeat: a begin_session sent twice (a retry, or
// a replay of a capture) is answered with the stored reply, takes one seat,
// and the legitimate client can read the repeat.
func TestReplayedBeginTakesNoSecondSeat(t *testing.T) {
	t.Parallel()
	for _, sealed := range []bool{false, true} {
		clock := newFakeClock()
		s := wiretest.NewServer(t, licensetest.License{Seats: 5}, &licensetest.Config{Clock: clock.Now})
		var opts []envelope.Option
		if sealed {
			opts = append(opts, envelope.WithSealedReplies())
		}
		c := wiretest.NewClient(t, s, nil, opts...)
		guid := c.Register(t, 1).GUID
		cp := capture(t, c, licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: guid, Machine: wiretest.Machine(1)})
		first := cp.send(t, c, licensetest.Begin)
		require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
		require.NoError(t, first.Err)
		clock.Advance(time.Minute)
		for range 3 {
			again := cp.send(t, c, licensetest.Begin)
			require.NoError(t, again.Err, "the legitimate retry opens")
			assert.Equal(t, first.Status, again.Status)
			assert.Equal(t, first.Raw, again.Raw, "the stored reply, byte for byte")
		}
		assert.Equal(t, 1, s.SeatsInUse(product, key), "sealed=%v", sealed)
		reqs := s.Requests()
		assert.True(t, reqs[len(reqs)-1].Repeat)
		assert.False(t, reqs[len(reqs)-4].Repeat)

		// After the window the capture is stale, and still takes no seat.
		clock.Advance(5 * time.Minute)
		late := cp.send(t, c, licensetest.Begin)
		assert.Equal(t, http.StatusUnauthorized, late.Status)
		rej := rejection(t, late)
		assert.Equal(t, envelope.CodeStale, rej.Code)
		assert.True(t, rej.ServerTime.Equal(clock.Now()), "the rejection carries the server's time")
		assert.Equal(t, 1, s.SeatsInUse(product, key))
	}
}

// TestReplayedExtendChangesNothing: a captured extend_session replayed after
// the window is rejected and does not extend the session.
func TestReplayedExtendChangesNothing(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := wiretest.NewServer(t, licensetest.License{SessionDuration: time.Hour}, &licensetest.Config{Clock: clock.Now})
	c := wiretest.NewClient(t, s, nil)
	guid := c.Register(t, 1).GUID
	tok := c.Begin(t, guid, 1).Token
	cp := capture(t, c, licensetest.Extend, wire.ExtendRequest{Token: tok})
	require.Equal(t, http.StatusOK, cp.send(t, c, licensetest.Extend).Status)
	n := s.Count(licensetest.Extend)
	clock.Advance(50 * time.Minute)
	r := cp.send(t, c, licensetest.Extend)
	assert.Equal(t, envelope.CodeStale, rejection(t, r).Code)
	clock.Advance(11 * time.Minute) // past the hour the original extend granted
	assert.Equal(t, 0, s.SeatsInUse(product, key), "the replay extended the session")
	assert.Equal(t, n+1, s.Count(licensetest.Extend))
}

// TestEnvelopeAtAnotherEndpoint: a begin_session envelope posted to
// /extend_session, or an extend body to /end_session, is rejected as
// unauthentic (401) and changes nothing.
func TestEnvelopeAtAnotherEndpoint(t *testing.T) {
	t.Parallel()
	for _, sealed := range []bool{false, true} {
		s := wiretest.NewServer(t, licensetest.License{Seats: 2})
		var opts []envelope.Option
		if sealed {
			opts = append(opts, envelope.WithSealedReplies())
		}
		c := wiretest.NewClient(t, s, nil, opts...)
		guid := c.Register(t, 1).GUID
		tok := c.Begin(t, guid, 1).Token
		begin := capture(t, c, licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: guid, Machine: wiretest.Machine(1)})
		extend := capture(t, c, licensetest.Extend, wire.ExtendRequest{Token: tok})
		for _, tc := range []struct {
			cp captured
			to string
		}{{begin, licensetest.Extend}, {begin, licensetest.End}, {begin, licensetest.Register}, {extend, licensetest.End}, {extend, licensetest.Begin}} {
			r := tc.cp.send(t, c, tc.to)
			assert.Equal(t, http.StatusUnauthorized, r.Status, "%s at %s", tc.cp.endpoint, tc.to)
			assert.Equal(t, envelope.CodeUnauthentic, rejection(t, r).Code)
			if sealed {
				assert.ErrorIs(t, r.Err, envelope.ErrUnauthentic, "never sealed")
			}
		}
		assert.Equal(t, 1, s.SeatsInUse(product, key), "a session was ended or begun")
		mustExtend(t, c, tok) // the session is intact
	}
}

// TestRetryAfterDroppedReply: the reply of a processed request is lost on
// the way; the client's retry of the same bytes gets it, and the server does
// not process the request twice.
func TestRetryAfterDroppedReply(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{Seats: 5})
	c := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
	guid := c.Register(t, 1).GUID
	cp := capture(t, c, licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: guid, Machine: wiretest.Machine(1)})
	s.Inject(licensetest.Fault{Endpoint: licensetest.Begin, Kind: licensetest.FaultDrop, Count: 1})
	_, err := c.HC.Post(c.URL+"/"+licensetest.Begin, "application/json", bytes.NewReader(cp.body))
	require.Error(t, err)
	r := cp.send(t, c, licensetest.Begin)
	require.NoError(t, r.Err)
	require.Equal(t, http.StatusOK, r.Status)
	_, err = wire.DecodeBegin(r.Body)
	require.NoError(t, err)
	assert.Equal(t, 1, s.SeatsInUse(product, key))
}

func TestFreshnessWindowOption(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := wiretest.NewServer(t, licensetest.License{}, &licensetest.Config{Clock: clock.Now, FreshnessWindow: time.Hour})
	c := wiretest.NewClient(t, s, nil)
	cp := capture(t, c, licensetest.Register, wiretest.RegisterReq(1))
	clock.Advance(59 * time.Minute)
	r := cp.send(t, c, licensetest.Register)
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	clock.Advance(2 * time.Minute)
	r = cp.send(t, c, licensetest.Register)
	assert.Equal(t, envelope.CodeStale, rejection(t, r).Code)
}
