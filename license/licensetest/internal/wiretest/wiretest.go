// Package wiretest is test support shared by the tests of licensetest and
// its sub-packages: a minimal v2 client built from envelope and net/http, the
// way the examples use the server, and a server with one licence. Being
// internal, it adds nothing to licensetest's public surface.
package wiretest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The product and licence key of the licence NewServer adds.
const (
	Product = "prod-1"
	Key     = "KEY-1"
)

// Client posts sealed v2 requests to a server.
type Client struct {
	URL    string
	APIKey string
	HC     *http.Client
	Sealer envelope.Sealer
	Now    func() time.Time // the server's clock: requests carry its time
}

// Reply is one HTTP answer, with the body opened when it was sealed.
type Reply struct {
	Status int
	Header http.Header
	Raw    []byte // body as received
	Body   []byte // opened body (Raw when not sealed)
	Err    error  // OpenReply's error
}

// NewClient returns a public-key client of s; a nil hc means s.Client().
func NewClient(tb testing.TB, s *licensetest.Server, hc *http.Client, opts ...envelope.Option) *Client {
	tb.Helper()
	sealer, err := envelope.NewSealer(s.Info().PublicKey, opts...)
	require.NoError(tb, err)
	if hc == nil {
		hc = s.Client()
	}
	return &Client{URL: s.URL, APIKey: s.Info().APIKey, HC: hc, Sealer: sealer, Now: s.Now}
}

// Post seals payload (marshalled unless it is []byte) and posts it.
func (c *Client) Post(endpoint string, payload any) (*Reply, error) {
	pt, ok := payload.([]byte)
	if !ok {
		var err error
		if pt, err = json.Marshal(payload); err != nil {
			return nil, err
		}
	}
	sd, err := c.Seal(endpoint, pt)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
	return c.PostRaw(endpoint, body, sd.Reply)
}

// Seal seals pt for endpoint at the server's time.
func (c *Client) Seal(endpoint string, pt []byte) (envelope.Sealed, error) {
	return c.Sealer.Seal(envelope.Request{APIKey: c.APIKey, Endpoint: endpoint, Time: c.Now()}, pt)
}

// PostRaw posts body as it is and opens the reply with ro, if not nil.
func (c *Client) PostRaw(endpoint string, body []byte, ro envelope.ReplyOpener) (*Reply, error) {
	resp, err := c.HC.Post(c.URL+"/"+endpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &Reply{Status: resp.StatusCode, Header: resp.Header, Raw: b, Body: b}
	if ro != nil {
		r.Body, r.Err = ro.OpenReply(b)
	}
	return r, nil
}

// MustPost is Post that fails the test on a transport or opening error.
func (c *Client) MustPost(tb testing.TB, endpoint string, payload any) *Reply {
	tb.Helper()
	r, err := c.Post(endpoint, payload)
	require.NoError(tb, err)
	require.NoError(tb, r.Err)
	return r
}

// Machine returns the n-th distinct machine.
func Machine(n int) wire.Machine {
	return wire.Machine{
		IPAddress:    "10.0.0.1",
		CPUID:        fmt.Sprintf("cpu-%d", n),
		MBSerial:     fmt.Sprintf("mb-%d", n),
		MACAddresses: []string{fmt.Sprintf("00:11:22:33:44:%02x", n%256)},
		VolumeHash:   fmt.Sprintf("vol-%d", n),
		HostName:     fmt.Sprintf("host-%d", n),
	}
}

// RegisterReq registers Machine(n) for the licence NewServer adds.
func RegisterReq(n int) wire.RegisterRequest {
	return wire.RegisterRequest{
		ProductGUID: Product, LicenseKey: Key, Machine: Machine(n),
		Name: "Ada", Email: "ada@example.com", UserHash: map[string]string{"k": "v"},
	}
}

// Register and Begin post one step and fail the test unless it succeeds.
func (c *Client) Register(tb testing.TB, n int) *wire.RegisterReply {
	tb.Helper()
	return MustStep(tb, c, licensetest.Register, RegisterReq(n), wire.DecodeRegister)
}

func (c *Client) Begin(tb testing.TB, guid string, n int) *wire.BeginReply {
	tb.Helper()
	return MustStep(tb, c, licensetest.Begin, wire.BeginRequest{
		ProductGUID: Product, LicenseKey: Key, InstanceGUID: guid, Machine: Machine(n),
	}, wire.DecodeBegin)
}

// MustStep posts payload to endpoint, fails the test unless the reply is 200,
// and decodes the reply.
func MustStep[T any](tb testing.TB, c *Client, endpoint string, payload any, decode func([]byte) (T, error)) T {
	tb.Helper()
	r := c.MustPost(tb, endpoint, payload)
	require.Equal(tb, http.StatusOK, r.Status, "%s: %s", endpoint, r.Body)
	rep, err := decode(r.Body)
	require.NoError(tb, err)
	return rep
}

// NewServer starts a server with the licence l (Product and Key where l
// leaves them empty) and closes it at cleanup.
func NewServer(tb testing.TB, l licensetest.License, cfg ...*licensetest.Config) *licensetest.Server {
	tb.Helper()
	var c *licensetest.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	s := licensetest.NewServer(c)
	tb.Cleanup(s.Close)
	l.ProductGUID = cmp.Or(l.ProductGUID, Product)
	l.Key = cmp.Or(l.Key, Key)
	require.NoError(tb, s.AddLicense(l))
	return s
}

// License is the licence most tests use: two seats, a one-minute session, an
// hour's grace and features "a,b".
func License() licensetest.License {
	return licensetest.License{ProductGUID: Product, Key: Key, Seats: 2, SessionDuration: time.Minute, GracePeriod: time.Hour, Features: "a,b"}
}

// ShortTimeouts make the slow-client tests quick.
var ShortTimeouts = licensetest.Timeouts{
	ReadHeader: 200 * time.Millisecond, Read: 300 * time.Millisecond,
	Write: 300 * time.Millisecond, Idle: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10,
}

// RoomyHeaders are ShortTimeouts with time to send the headers, for the
// tests of what comes after them: on a loaded machine a client can stall
// for 200 ms between its dial and its first write.
var RoomyHeaders = licensetest.Timeouts{
	ReadHeader: 10 * time.Second, Read: ShortTimeouts.Read,
	Write: ShortTimeouts.Write, Idle: ShortTimeouts.Idle, MaxHeaderBytes: ShortTimeouts.MaxHeaderBytes,
}
