package licensetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/hook"
)

// Server is a mock v2 licence server. It is safe for concurrent use: tests
// may inject faults and observe state while clients call it.
//
// Build one with NewServer, NewTLSServer or NewUnstartedServer, and Close it
// when done (t.Cleanup(s.Close)).
type Server struct {
	// URL is the base URL of the v2 API, of the form
	// http://127.0.0.1:PORT/api/v2 (https for a TLS server); the endpoints
	// are URL + "/register_instance" and so on. Before Start it is
	// "http://[::1%25unstarted-licensetest.Server-use-its-Transport]:9/api/v2",
	// which only Transport serves: an IP literal, so that a client inside a
	// testing/synctest bubble never resolves a host name, and an address
	// whose dial error says what to do. Do not change it.
	URL string

	cfg    Config // defaults filled in
	opener envelope.Opener
	guard  *envelope.Guard
	// carried remembers carried (offline) request ids (NewUnstartedServer).
	carried *envelope.Guard
	store   *store
	faults  *faultState
	reqlog  *requestLog
	flight  inflight
	slot    hook.Slot // the admin package's state (hook.go)
	once    sync.Once // runs close

	mu        sync.Mutex // guards the fields below
	closed    bool
	gate      *gate
	srv       *http.Server
	serveDone chan struct{}
	cert      *x509.Certificate
	client    *http.Client

	downMu      sync.Mutex // serialises applyDown and guards the two below
	appliedDown bool       // the state applyDown last logged
	appliedMode DownMode

	connMu  sync.Mutex // guards conns and closing
	conns   map[net.Conn]http.ConnState
	connWG  sync.WaitGroup
	closing bool
}

// unstartedURL is URL before Start (see Server.URL). A DNS lookup inside a
// testing/synctest bubble touches the resolver's process-wide state and can
// crash the runtime ("send on synctest channel from outside bubble"), hence
// the IP literal. Port 9 (discard) is closed on almost every machine, so a
// client that bypasses Transport fails fast, and its error names the address
// with the advice in the zone.
const unstartedURL = "http://[::1%25unstarted-licensetest.Server-use-its-Transport]:9" + BasePath

// NewServer starts and returns a new Server listening on a loopback port
// (see Config.Addr), configured by cfg (nil for the defaults). The caller
// should Close it. Like httptest.NewServer, it panics if it cannot listen or
// if cfg is invalid (a secret shorter than envelope.SecretSize, an
// unsupported KEM).
func NewServer(cfg *Config) *Server {
	s := NewUnstartedServer(cfg)
	s.Start()
	return s
}

// NewTLSServer starts and returns a new Server using TLS with a self-signed
// certificate that Client trusts. It panics as NewServer does.
func NewTLSServer(cfg *Config) *Server {
	s := NewUnstartedServer(cfg)
	s.StartTLS()
	return s
}

// NewUnstartedServer returns a new Server that is not listening. Call Start
// or StartTLS to listen, or use it as it is through Transport or Handler, for
// instance inside a testing/synctest bubble where loopback sockets would
// never let fake time advance. The caller should Close it. It panics if cfg
// is invalid.
func NewUnstartedServer(cfg *Config) *Server {
	c := withDefaults(cfg)
	s := &Server{
		URL:    unstartedURL,
		cfg:    c,
		store:  newStore(c.Match, c.TokenRotation, c.RefusalTexts),
		faults: &faultState{endpoints: make(map[string]settings), lastSealed: make(map[string][]byte)},
		reqlog: &requestLog{max: c.MaxRequests, counts: make(map[string]int)},
		conns:  make(map[net.Conn]http.ConnState),
		flight: inflight{cancels: make(map[*context.CancelCauseFunc]struct{})},
	}
	hpkeOpener, err := envelope.NewOpener(c.PrivateKey)
	must(err)
	secretOpener, err := envelope.NewSharedSecretOpener(c.Secret)
	must(err)
	s.opener = envelope.MultiOpener(hpkeOpener, secretOpener)
	s.guard = envelope.NewGuard(envelope.GuardConfig{Window: c.FreshnessWindow, MaxEntries: c.ReplayCache})
	// Carried (offline) requests (FORMAT.md "Carried requests") are accepted
	// up to envelope.CarriedWindow old, so their ids are remembered for that
	// whole window, partitioned as the ordinary ones; the mock keeps them for
	// its life, a real server in its database.
	s.carried = envelope.NewGuard(envelope.GuardConfig{Window: envelope.CarriedWindow, PartitionEntries: 256})
	return s
}

// must panics with err, as the constructors document.
func must(err error) {
	if err != nil {
		panic("licensetest: " + err.Error())
	}
}

// Now returns the server's clock (see Config.Clock). Test clients that seal
// requests by hand use it as the request's timestamp when the server runs
// on a fake clock.
func (s *Server) Now() time.Time { return s.cfg.Clock() }

// Start starts a server from NewUnstartedServer on its address (Config.Addr,
// default a loopback port) and sets URL. It panics if the server was already
// started or closed, or if it cannot listen.
func (s *Server) Start() { s.start(false) }

// StartTLS starts a server from NewUnstartedServer with TLS, using a fresh
// self-signed ECDSA certificate for 127.0.0.1, ::1, localhost and the
// listening host, and sets URL. Client trusts the certificate; Info
// returns it for other clients. It panics as Start does.
func (s *Server) StartTLS() { s.start(true) }

func (s *Server) start(useTLS bool) {
	s.startLocked(useTLS)
	if down, _ := s.faults.isDown(); down {
		s.applyDown() // SetDown was called before Start
	}
}

func (s *Server) startLocked(useTLS bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil || s.closed {
		panic("licensetest: Server already started or closed")
	}
	g, err := newGate(s.cfg.Addr)
	if err != nil {
		panic(fmt.Sprintf("licensetest: failed to listen on %s: %v", s.cfg.Addr, err))
	}
	s.gate = g
	s.srv = &http.Server{
		Handler:   http.HandlerFunc(s.serveHTTP),
		ConnState: s.trackConn,
		ErrorLog:  slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
	}
	s.cfg.Timeouts.Apply(s.srv)
	var ln net.Listener = g
	scheme := "http"
	if useTLS {
		scheme = "https"
		tlsCert, err := selfSigned(g.Addr())
		if err != nil {
			g.Close()
			must(err)
		}
		s.cert = tlsCert.Leaf
		if s.client != nil { // Client was called before StartTLS
			s.client.Transport = s.clientTransport()
		}
		ln = tls.NewListener(g, &tls.Config{
			Certificates: []tls.Certificate{tlsCert},
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		})
	}
	s.URL = scheme + "://" + g.Addr().String() + BasePath
	s.serveDone = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		_ = srv.Serve(ln)
	}(s.srv, s.serveDone)
	s.cfg.Logger.Info("licensetest: server started", slog.String("url", s.URL))
}

// selfSigned makes a certificate for the loopback names and addr's host.
func selfSigned(addr net.Addr) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"licensetest"}},
		NotBefore:             time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2084, 1, 29, 16, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() && !slices.ContainsFunc(tmpl.IPAddresses, ta.IP.Equal) {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ta.IP)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, err
}

// Close shuts the server down and blocks until every request in flight has
// been answered. Added latency (SetLatency) is cut short so that Close does
// not wait for it; those requests are processed and answered normally. After
// Close, connections are refused and Transport fails as a refused dial.
// Close is idempotent and safe for concurrent use: every call, concurrent
// or later, returns only after the first has finished.
func (s *Server) Close() { s.once.Do(s.close) }

func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	g, srv, serveDone, client := s.gate, s.srv, s.serveDone, s.client
	s.mu.Unlock()

	if g != nil {
		g.Close()
		<-serveDone // no new connections from here on
		s.connMu.Lock()
		s.closing = true // trackConn closes the connections that go idle from here on
		for c, st := range s.conns {
			if st == http.StateIdle || st == http.StateNew {
				c.Close()
			}
		}
		s.connMu.Unlock()
	}
	s.flight.close()
	if g != nil {
		s.connWG.Wait()
		_ = srv.Close()
	}
	if client != nil {
		client.CloseIdleConnections()
	}
	s.cfg.Logger.Info("licensetest: server closed")
}

// trackConn follows connections so that Close can wait for them and SetDown
// can drop idle ones.
func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	switch st {
	case http.StateNew, http.StateActive, http.StateIdle:
		if st == http.StateNew {
			s.connWG.Add(1)
		}
		s.conns[c] = st
		if st == http.StateIdle && s.closing {
			c.Close()
		}
	case http.StateHijacked, http.StateClosed:
		if _, ok := s.conns[c]; ok {
			delete(s.conns, c)
			s.connWG.Done()
		}
	}
}

// applyDown makes the listener match the down state and mode.
func (s *Server) applyDown() {
	s.downMu.Lock()
	defer s.downMu.Unlock()
	down, mode := s.faults.isDown()
	s.mu.Lock()
	g, client, closed := s.gate, s.client, s.closed
	s.mu.Unlock()
	if g == nil || closed {
		return
	}
	g.reset.Store(down && mode == DownReset)
	if err := g.setOpen(!down || mode != DownRefuse); err != nil {
		s.cfg.Logger.Error("licensetest: cannot bring the server back up", slog.Any("error", err))
	}
	if down {
		s.connMu.Lock()
		for c, st := range s.conns {
			if st == http.StateIdle {
				abort(c)
			}
		}
		s.connMu.Unlock()
		if client != nil {
			client.CloseIdleConnections()
		}
	}
	if down != s.appliedDown || mode != s.appliedMode {
		s.appliedDown, s.appliedMode = down, mode
		s.cfg.Logger.Info("licensetest: server state", slog.Bool("down", down), slog.String("mode", mode.String()))
	}
}

// Client returns an HTTP client for the server: it trusts the certificate of
// a TLS server and uses no proxy. Close closes its idle connections. The
// same client is returned on every call; do not change it.
func (s *Server) Client() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = &http.Client{Transport: s.clientTransport()}
	}
	return s.client
}

// clientTransport returns a transport for Client that trusts the server's
// certificate, if any. The caller holds mu.
func (s *Server) clientTransport() *http.Transport {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	if s.cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(s.cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// InFlight returns the number of requests being handled right now, through
// the listener, Handler or Transport: for instance those waiting out added
// latency. Tests use it to know a request has reached the server.
func (s *Server) InFlight() int {
	f := &s.flight
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cancels)
}

// Handler returns the server's HTTP handler, for mounting the mock elsewhere.
// It serves the API below BasePath and honours every fault; while the server
// is down in DownRefuse or DownReset mode it aborts each request's
// connection (it cannot refuse the dial of a listener it does not own).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// ServerInfo is what a client needs to talk to a Server, secrets included,
// as Info returns it.
type ServerInfo struct {
	// Addr is the host:port the server listens on, or "" before Start. It
	// stays the same while the server is down.
	Addr string
	// APIKey is the API key clients must send (Config.APIKey).
	APIKey string
	// PublicKey is the server's public key for public-key (HPKE) mode; its
	// KeyID is the key id requests are addressed to.
	PublicKey *envelope.PublicKey
	// Secret is a copy of the server's secret for shared-secret mode.
	Secret []byte
	// SealedReplies reports Config.SealedReplies: every request must ask
	// for a sealed reply.
	SealedReplies bool
	// Certificate is the certificate of a TLS server, or nil.
	Certificate *x509.Certificate
}

// Info returns what a client needs to talk to s, secrets included. It is
// the server's one source of its identity: the URL is s.URL.
func (s *Server) Info() ServerInfo {
	in := ServerInfo{
		APIKey:        s.cfg.APIKey,
		PublicKey:     s.cfg.PrivateKey.Public(),
		Secret:        slices.Clone(s.cfg.Secret),
		SealedReplies: s.cfg.SealedReplies,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		in.Addr = s.gate.Addr().String()
	}
	in.Certificate = s.cert
	return in
}

// errClosing cancels the latency waits of requests in flight at Close.
var errClosing = errors.New("licensetest: server closing")

// inflight tracks the requests being handled, real or in memory, so that
// Close can cut their latency short and wait for them. It uses no
// sync.WaitGroup: a WaitGroup used inside a testing/synctest bubble belongs
// to it, and the server may be built and closed outside the bubble its
// in-memory requests come from.
type inflight struct {
	mu      sync.Mutex
	closed  bool
	idle    chan struct{} // made by close when it must wait; closed by the last request
	cancels map[*context.CancelCauseFunc]struct{}
}

// begin registers a request. It reports false once Close has begun.
func (f *inflight) begin(parent context.Context) (context.Context, func(), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancelCause(parent)
	key := &cancel
	f.cancels[key] = struct{}{}
	return ctx, func() {
		cancel(nil)
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.cancels, key)
		if f.closed && len(f.cancels) == 0 && f.idle != nil {
			close(f.idle)
			f.idle = nil
		}
	}, true
}

// close refuses new requests, cuts latency short and waits for the rest. It
// must be called once.
func (f *inflight) close() {
	f.mu.Lock()
	f.closed = true
	if len(f.cancels) == 0 {
		f.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	f.idle = idle
	for c := range f.cancels {
		(*c)(errClosing)
	}
	f.mu.Unlock()
	<-idle
}

// wait sleeps d on a timer. It reports false if ctx ended first for any
// reason but Close, in which case the request is abandoned.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return errors.Is(context.Cause(ctx), errClosing)
	}
}
