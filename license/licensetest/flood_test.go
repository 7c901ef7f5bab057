package licensetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

// floodCapacity is the replay cache the flood tests give the server; every
// flood is several times larger, so that a cache that lets strangers fill it
// (the format 2.0 rule: a full cache forgets its oldest id and rejects every
// timestamp not after it) would lock the honest clients out.
const floodCapacity = 1024

// junkSealer seals the flood: anyone holding a copy of the product can seal
// valid envelopes. Shared-secret mode keeps the test fast; the Guard sees
// the same thing as from public-key envelopes.
type junkSealer struct {
	sealer envelope.Sealer
	apiKey string
	rnd    *rand.Rand
}

func newJunkSealer(t testing.TB, s *licensetest.Server) *junkSealer {
	t.Helper()
	sealer, err := envelope.NewSharedSecretSealer(s.Info().Secret, envelope.WithSealedReplies())
	require.NoError(t, err)
	return &junkSealer{sealer: sealer, apiKey: s.Info().APIKey, rnd: rand.New(rand.NewPCG(1, 2))}
}

// body returns the request body of the i-th junk request, stamped at ts:
// begins for licences that do not exist, extends and ends of sessions that
// do not exist, registrations, and payloads that are not JSON.
func (j *junkSealer) body(t testing.TB, i int, ts time.Time) (endpoint string, body []byte) {
	var pt []byte
	switch i % 4 {
	case 0:
		endpoint = licensetest.Begin
		pt, _ = json.Marshal(wire.BeginRequest{ProductGUID: product, LicenseKey: fmt.Sprintf("JUNK-%d", i), InstanceGUID: "x", Machine: wiretest.Machine(i)})
	case 1:
		endpoint = licensetest.Extend
		pt, _ = json.Marshal(wire.ExtendRequest{Token: fmt.Sprintf("junk-token-%d", i)})
	case 2:
		endpoint = licensetest.Register
		pt, _ = json.Marshal(wire.RegisterRequest{ProductGUID: product, LicenseKey: fmt.Sprintf("JUNK-%d", i), Machine: wiretest.Machine(i)})
	default:
		endpoint = licensetest.End
		pt = []byte(strings.Repeat("junk", 1+i%7))
	}
	sd, err := j.sealer.Seal(envelope.Request{APIKey: j.apiKey, Endpoint: endpoint, Time: ts}, pt)
	require.NoError(t, err)
	body, _ = json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
	return endpoint, body
}

// floodClient is an honest product: a real license.Client on loopback.
func floodClient(t *testing.T, s *licensetest.Server, licenceKey string, n int) *license.Client {
	t.Helper()
	fp := &fingerprint.Fingerprint{
		CPUID:      fingerprint.Component{Name: fingerprint.NameCPUID, Value: fmt.Sprintf("cpu-%d", n), Strength: fingerprint.Weak},
		MBSerial:   fingerprint.Component{Name: fingerprint.NameMBSerial, Value: fmt.Sprintf("board-%d", n), Strength: fingerprint.Strong},
		VolumeHash: fingerprint.Component{Name: fingerprint.NameVolumeHash, Value: fmt.Sprintf("vol-%d", n), Strength: fingerprint.Medium},
		HostName:   fingerprint.Component{Name: fingerprint.NameHostName, Value: fmt.Sprintf("host-%d", n), Strength: fingerprint.Weak},
	}
	c, err := license.New(license.Config{
		ServerURL: s.URL, APIKey: s.Info().APIKey, ServerPublicKey: s.Info().PublicKey.EncodeBase64(),
		ProductGUID: product, LicenseKey: licenceKey,
	},
		license.WithHTTPClient(s.Client()),
		license.WithStateStore(&license.MemoryStateStore{}),
		license.WithFingerprintSource(func(context.Context) (*fingerprint.Fingerprint, error) { return fp, nil }),
	)
	require.NoError(t, err)
	return c
}

// TestFloodLocksOutNoCustomer: while strangers flood the server with valid
// envelopes (several times the replay cache's capacity), honest clients
// start, renew and close with no request rejected, the cache stays within
// its bound, and a replay of an honest request inside the window is still
// answered with its stored reply and takes no seat.
func TestFloodLocksOutNoCustomer(t *testing.T) {
	const (
		flood     = 4 * floodCapacity
		customers = 4
		machines  = 2
	)
	for _, tc := range []struct {
		name  string
		stamp func(now time.Time, i int, rnd *rand.Rand) time.Time
	}{
		// The cheapest lockout on format 2.0: every junk id stamped at the
		// far edge of the window, so that it outlives everything honest.
		{"future-edge", func(now time.Time, _ int, _ *rand.Rand) time.Time { return now.Add(299 * time.Second) }},
		// Valid-looking timestamps spread across the whole window.
		{"across-window", func(now time.Time, _ int, rnd *rand.Rand) time.Time {
			return now.Add(time.Duration(rnd.IntN(599)-299) * time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := licensetest.NewServer(&licensetest.Config{ReplayCache: floodCapacity, SealedReplies: true})
			t.Cleanup(s.Close)
			for k := range customers {
				require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: fmt.Sprintf("K-%d", k), Seats: machines}))
			}
			require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: key, Seats: 5}))
			js := newJunkSealer(t, s)
			h := s.Handler()
			var sent atomic.Int64
			var maxLen atomic.Int64
			primed := make(chan struct{})
			floodDone := make(chan struct{})
			go func() {
				defer close(floodDone)
				for i := range flood {
					ep, body := js.body(t, i, tc.stamp(s.Now(), i, js.rnd))
					req := httptest.NewRequest(http.MethodPost, licensetest.BasePath+"/"+ep, strings.NewReader(string(body)))
					h.ServeHTTP(httptest.NewRecorder(), req)
					if n := int64(licensetest.GuardLen(s)); n > maxLen.Load() {
						maxLen.Store(n)
					}
					if sent.Add(1) == 2*floodCapacity {
						close(primed)
					}
				}
			}()
			<-primed // the cache has seen twice its capacity of junk

			var wg sync.WaitGroup
			var rejected atomic.Int64
			var mu sync.Mutex
			var errs []string
			for k := range customers {
				for m := range machines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := floodClient(t, s, fmt.Sprintf("K-%d", k), k*machines+m)
						fail := func(step string, err error) {
							rejected.Add(1)
							mu.Lock()
							errs = append(errs, fmt.Sprintf("K-%d/%d %s: %v", k, m, step, err))
							mu.Unlock()
						}
						ctx := context.Background()
						if err := c.Start(ctx); err != nil {
							fail("Start", err)
						}
						for range 3 {
							if err := c.ExtendSession(ctx); err != nil {
								fail("ExtendSession", err)
							}
						}
						if err := c.Close(ctx); err != nil {
							fail("Close", err)
						}
					}()
				}
			}
			wg.Wait()
			<-floodDone
			assert.Zero(t, rejected.Load(), "honest requests rejected during the flood:\n%s", strings.Join(errs, "\n"))
			assert.LessOrEqual(t, maxLen.Load(), int64(floodCapacity), "replay cache beyond its bound")
			assert.LessOrEqual(t, licensetest.GuardLen(s), floodCapacity)

			// After the flood, a captured honest begin replayed inside the
			// window gets the stored reply, byte for byte, and no second seat.
			hc := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
			reg := hc.Register(t, 900)
			cp := capture(t, hc, licensetest.Begin, wire.BeginRequest{ProductGUID: product, LicenseKey: key, InstanceGUID: reg.GUID, Machine: wiretest.Machine(900)})
			first := cp.send(t, hc, licensetest.Begin)
			require.NoError(t, first.Err)
			require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
			again := cp.send(t, hc, licensetest.Begin)
			require.NoError(t, again.Err)
			assert.Equal(t, first.Raw, again.Raw, "a replay gets the stored reply")
			assert.Equal(t, 1, s.SeatsInUse(product, key))
		})
	}
}

// TestResendAfterLostReplyOutlivesTheToken: a client that lost the reply to
// an extend (with token rotation) or an end resends the same sealed request
// and gets the stored reply, although the token it carries no longer proves
// anything: the cache is consulted before the proof.
func TestResendAfterLostReplyOutlivesTheToken(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{Seats: 1}, &licensetest.Config{TokenRotation: true, SealedReplies: true})
	c := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
	guid := c.Register(t, 1).GUID
	tok := c.Begin(t, guid, 1).Token
	for _, step := range []struct {
		ep      string
		payload any
	}{
		{licensetest.Extend, wire.ExtendRequest{Token: tok}},
		{licensetest.End, nil}, // filled in with the rotated token
	} {
		if step.ep == licensetest.End {
			step.payload = wire.EndRequest{Token: tok}
		}
		cp := capture(t, c, step.ep, step.payload)
		s.Inject(licensetest.Fault{Endpoint: step.ep, Kind: licensetest.FaultDrop, Count: 1})
		_, err := c.HC.Post(c.URL+"/"+step.ep, "application/json", strings.NewReader(string(cp.body)))
		require.Error(t, err, "the first reply is lost")
		n := s.Count(step.ep)
		r := cp.send(t, c, step.ep)
		require.NoError(t, r.Err)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", step.ep, r.Body)
		assert.Equal(t, n+1, s.Count(step.ep))
		if step.ep == licensetest.Extend {
			ext, err := wire.DecodeExtend(r.Body)
			require.NoError(t, err)
			require.NotEqual(t, tok, ext.Token, "rotated")
			tok = ext.Token
		}
	}
	assert.Zero(t, s.SeatsInUse(product, key))
}
