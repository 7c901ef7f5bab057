package admin_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

const (
	product = "prod-1"
	key     = "KEY-1"
)

// client is a minimal v2 client built from envelope and net/http, the way
// the examples use the server.
type client struct {
	url    string
	apiKey string
	hc     *http.Client
	sealer envelope.Sealer
	now    func() time.Time // the server's clock: requests carry its time
}

// reply is one HTTP answer, with the body opened when it was sealed.
type reply struct {
	status int
	header http.Header
	raw    []byte // body as received
	body   []byte // opened body (raw when not sealed)
	err    error  // OpenReply's error
}

func newClient(tb testing.TB, s *licensetest.Server, hc *http.Client, opts ...envelope.Option) *client {
	tb.Helper()
	sealer, err := envelope.NewSealer(s.Info().PublicKey, opts...)
	require.NoError(tb, err)
	if hc == nil {
		hc = s.Client()
	}
	return &client{url: s.URL, apiKey: s.Info().APIKey, hc: hc, sealer: sealer, now: s.Now}
}

// post seals payload (marshalled unless it is []byte) and posts it.
func (c *client) post(endpoint string, payload any) (*reply, error) {
	pt, ok := payload.([]byte)
	if !ok {
		var err error
		if pt, err = json.Marshal(payload); err != nil {
			return nil, err
		}
	}
	sd, err := c.seal(endpoint, pt)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
	return c.raw(endpoint, body, sd.Reply)
}

// seal seals pt for endpoint at the server's time.
func (c *client) seal(endpoint string, pt []byte) (envelope.Sealed, error) {
	return c.sealer.Seal(envelope.Request{APIKey: c.apiKey, Endpoint: endpoint, Time: c.now()}, pt)
}

// raw posts body as it is.
func (c *client) raw(endpoint string, body []byte, ro envelope.ReplyOpener) (*reply, error) {
	resp, err := c.hc.Post(c.url+"/"+endpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &reply{status: resp.StatusCode, header: resp.Header, raw: b, body: b}
	if ro != nil {
		r.body, r.err = ro.OpenReply(b)
	}
	return r, nil
}

func (c *client) mustPost(tb testing.TB, endpoint string, payload any) *reply {
	tb.Helper()
	r, err := c.post(endpoint, payload)
	require.NoError(tb, err)
	require.NoError(tb, r.err)
	return r
}

func machine(n int) wire.Machine {
	return wire.Machine{
		IPAddress:    "10.0.0.1",
		CPUID:        fmt.Sprintf("cpu-%d", n),
		MBSerial:     fmt.Sprintf("mb-%d", n),
		MACAddresses: []string{fmt.Sprintf("00:11:22:33:44:%02x", n%256)},
		VolumeHash:   fmt.Sprintf("vol-%d", n),
		HostName:     fmt.Sprintf("host-%d", n),
	}
}

func registerReq(n int) wire.RegisterRequest {
	return wire.RegisterRequest{
		ProductGUID: product, LicenseKey: key, Machine: machine(n),
		Name: "Ada", Email: "ada@example.com", UserHash: map[string]string{"k": "v"},
	}
}

func (c *client) register(tb testing.TB, n int) *wire.RegisterReply {
	tb.Helper()
	r := c.mustPost(tb, licensetest.Register, registerReq(n))
	require.Equal(tb, http.StatusOK, r.status, "register: %s", r.body)
	rep, err := wire.DecodeRegister(r.body)
	require.NoError(tb, err)
	return rep
}

func (c *client) begin(tb testing.TB, guid string, n int) *wire.BeginReply {
	tb.Helper()
	r := c.mustPost(tb, licensetest.Begin, wire.BeginRequest{
		ProductGUID: product, LicenseKey: key, InstanceGUID: guid, Machine: machine(n),
	})
	require.Equal(tb, http.StatusOK, r.status, "begin: %s", r.body)
	rep, err := wire.DecodeBegin(r.body)
	require.NoError(tb, err)
	return rep
}

// newServer starts a server with one licence and closes it at cleanup.
func newServer(tb testing.TB, l licensetest.License, cfg ...*licensetest.Config) *licensetest.Server {
	tb.Helper()
	var c *licensetest.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	s := licensetest.NewServer(c)
	tb.Cleanup(s.Close)
	if l.ProductGUID == "" {
		l.ProductGUID = product
	}
	if l.Key == "" {
		l.Key = key
	}
	require.NoError(tb, s.AddLicense(l))
	return s
}

func licensetestLicense() licensetest.License {
	return licensetest.License{ProductGUID: product, Key: key, Seats: 2, SessionDuration: time.Minute, GracePeriod: time.Hour, Features: "a,b"}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

var update = flag.Bool("update", false, "rewrite golden files")

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var roomyHeaders = licensetest.Timeouts{
	ReadHeader: 10 * time.Second, Read: shortTimeouts.Read,
	Write: shortTimeouts.Write, Idle: shortTimeouts.Idle, MaxHeaderBytes: shortTimeouts.MaxHeaderBytes,
}

var shortTimeouts = licensetest.Timeouts{
	ReadHeader: 200 * time.Millisecond, Read: 300 * time.Millisecond,
	Write: 300 * time.Millisecond, Idle: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10,
}
