package licensetest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

// The licence wiretest.NewServer adds.
const (
	product = wiretest.Product
	key     = wiretest.Key
)

// failure decodes the body as a spec failure, or returns nil.
func failure(r *wiretest.Reply) *wire.Failure {
	var f wire.Failure
	if err := json.Unmarshal(r.Body, &f); err != nil {
		return nil
	}
	return &f
}

// newSecretClient is wiretest.NewClient in shared-secret mode.
func newSecretClient(tb testing.TB, s *licensetest.Server, hc *http.Client, opts ...envelope.Option) *wiretest.Client {
	tb.Helper()
	c := wiretest.NewClient(tb, s, hc)
	sealer, err := envelope.NewSharedSecretSealer(s.Info().Secret, opts...)
	require.NoError(tb, err)
	c.Sealer = sealer
	return c
}

// mustExtend and mustEnd post one step and fail the test unless it succeeds.
func mustExtend(tb testing.TB, c *wiretest.Client, token string) *wire.ExtendReply {
	tb.Helper()
	return wiretest.MustStep(tb, c, licensetest.Extend, wire.ExtendRequest{Token: token}, wire.DecodeExtend)
}

func mustEnd(tb testing.TB, c *wiretest.Client, token string) {
	tb.Helper()
	wiretest.MustStep(tb, c, licensetest.End, wire.EndRequest{Token: token}, wire.DecodeEnd)
}

// lifecycle runs register, begin, extend and end, returning the first error.
func lifecycle(c *wiretest.Client, n int) error {
	step := func(endpoint string, payload any) ([]byte, error) {
		r, err := c.Post(endpoint, payload)
		switch {
		case err != nil:
			return nil, err
		case r.Err != nil:
			return nil, r.Err
		case r.Status != http.StatusOK:
			return nil, fmt.Errorf("%s: status %d: %s", endpoint, r.Status, r.Body)
		}
		return r.Body, nil
	}
	body, err := step(licensetest.Register, wiretest.RegisterReq(n))
	if err != nil {
		return err
	}
	reg, err := wire.DecodeRegister(body)
	if err != nil {
		return err
	}
	if body, err = step(licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: reg.GUID, Machine: wiretest.Machine(n)}); err != nil {
		return err
	}
	b, err := wire.DecodeBegin(body)
	if err != nil {
		return err
	}
	if body, err = step(licensetest.Extend, wire.ExtendRequest{Token: b.Token}); err != nil {
		return err
	}
	e, err := wire.DecodeExtend(body)
	if err != nil {
		return err
	}
	_, err = step(licensetest.End, wire.EndRequest{Token: e.Token})
	return err
}

// clocked starts a server with the licence l on a fake clock (cfg's other
// fields kept) and returns the clock, the server and a public-key client.
func clocked(t *testing.T, l licensetest.License, cfg licensetest.Config) (*fakeClock, *licensetest.Server, *wiretest.Client) {
	t.Helper()
	clock := newFakeClock()
	cfg.Clock = clock.Now
	s := wiretest.NewServer(t, l, &cfg)
	return clock, s, wiretest.NewClient(t, s, nil)
}
