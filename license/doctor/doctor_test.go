package doctor_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/doctor"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// verdicts maps each check to its verdict.
func verdicts(rep *doctor.Report) map[string]doctor.Verdict {
	m := map[string]doctor.Verdict{}
	for _, c := range rep.Checks {
		m[c.ID] = c.Verdict
	}
	return m
}

// TestHealthy diagnoses a machine where everything works, and shows that
// the default checks take no seat and create nothing on the server: the
// licence check's register_instance returns the instance the product
// registered.
func TestHealthy(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	fp := strongFP(rawMAC)
	e.runProduct(t, fpSource(fp))
	registers, begins, instances := e.srv.Count(licensetest.Register), e.srv.Count(licensetest.Begin), e.srv.Instances()

	rep := e.run(t, fp)
	assert.Equal(t, map[string]doctor.Verdict{
		doctor.CheckConfig: doctor.OK, doctor.CheckDNS: doctor.OK, doctor.CheckProxy: doctor.OK,
		doctor.CheckTCP: doctor.OK, doctor.CheckTLS: doctor.Skipped, doctor.CheckHTTP: doctor.OK,
		doctor.CheckClock: doctor.OK, doctor.CheckState: doctor.OK, doctor.CheckFingerprint: doctor.OK,
		doctor.CheckLicense: doctor.OK, doctor.CheckRoundTrip: doctor.Skipped,
	}, verdicts(rep))
	assert.False(t, rep.Failed())
	assert.Contains(t, check(t, rep, doctor.CheckHTTP).Finding, "the licence server answered")
	assert.Equal(t, "unknown token", evidence(check(t, rep, doctor.CheckHTTP), "server_message"))
	st := check(t, rep, doctor.CheckState)
	assert.Contains(t, st.Finding, "the saved state opens")
	assert.Equal(t, "saved state, not in use", evidence(st, "slot 0"))
	assert.Equal(t, "none open", evidence(st, "session"))
	assert.Contains(t, check(t, rep, doctor.CheckFingerprint).Finding, "2 strong identifiers")

	assert.Contains(t, check(t, rep, doctor.CheckLicense).Finding, "the server knows the licence")
	assert.Equal(t, registers+1, e.srv.Count(licensetest.Register), "the licence check sends one register_instance")
	assert.Equal(t, begins, e.srv.Count(licensetest.Begin), "the doctor began a session")
	assert.Equal(t, instances, e.srv.Instances(), "the doctor created or changed an instance")
	assert.Equal(t, 0, e.srv.SeatsInUse(product, key))
}

// TestFullRoundTrip registers, begins and ends a real session, and leaves
// no seat taken.
func TestFullRoundTrip(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	rep := e.run(t, strongFP(rawMAC), doctor.Full())
	rt := check(t, rep, doctor.CheckRoundTrip)
	assert.Equal(t, doctor.OK, rt.Verdict, rt.Finding)
	assert.Contains(t, rt.Finding, "registered, began and ended a session")
	assert.Equal(t, "pro", evidence(rt, "features"))
	assert.Equal(t, 1, e.srv.Count(licensetest.Begin))
	assert.Equal(t, 1, e.srv.Count(licensetest.End))
	assert.Equal(t, 0, e.srv.SeatsInUse(product, key), "the round trip left its seat taken")
}

// TestFullRoundTripRevoked reports a revoked licence in plain words.
func TestFullRoundTripRevoked(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	require.NoError(t, e.srv.SetLicenseState(product, key, licensetest.Revoked))
	rt := check(t, e.run(t, strongFP(rawMAC), doctor.Full()), doctor.CheckRoundTrip)
	assert.Equal(t, doctor.Fail, rt.Verdict)
	assert.Contains(t, rt.Finding, "revoked")
}

// TestConfigEveryProblem reports every problem license.New finds, at once.
func TestConfigEveryProblem(t *testing.T) {
	t.Parallel()
	cfg := license.Config{ServerURL: "ftp://licensing.example.com/api/v2", SharedSecret: []byte("short")}
	rep, err := doctor.Run(context.Background(), cfg, doctor.WithClientOptions(fpSource(strongFP(rawMAC))),
		doctor.WithResolver(func(context.Context, string) ([]string, error) {
			return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
		}))
	require.NoError(t, err)
	c := check(t, rep, doctor.CheckConfig)
	assert.Equal(t, doctor.Fail, c.Verdict)
	for _, want := range []string{"ServerURL must be an absolute http or https URL", "APIKey is empty", "ProductGUID is empty",
		"LicenseKey is empty", "SharedSecret must be at least"} {
		assert.Contains(t, c.Finding, want)
	}
	assert.Equal(t, doctor.Skipped, check(t, rep, doctor.CheckHTTP).Verdict)
	assert.Equal(t, doctor.Skipped, check(t, rep, doctor.CheckState).Verdict)
}

// TestDNSDoesNotResolve uses the resolver hook: no real lookup happens.
func TestDNSDoesNotResolve(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	e.cfg.ServerURL = "https://licensing.doctor-test.invalid/api/v2"
	var asked []string
	rep := e.run(t, strongFP(rawMAC), doctor.WithResolver(func(_ context.Context, host string) ([]string, error) {
		asked = append(asked, host)
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}))
	c := check(t, rep, doctor.CheckDNS)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.Equal(t, "the server name licensing.doctor-test.invalid does not resolve", c.Finding)
	assert.Contains(t, evidence(c, "error"), "no such host")
	assert.Equal(t, []string{"licensing.doctor-test.invalid"}, asked)
	for _, id := range []string{doctor.CheckTCP, doctor.CheckTLS, doctor.CheckHTTP, doctor.CheckClock} {
		assert.Equal(t, doctor.Skipped, check(t, rep, id).Verdict, id)
	}
	assert.True(t, rep.Failed())
}

// TestProxy407 sends the client through a proxy that wants credentials.
func TestProxy407(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="corp"`)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusProxyAuthRequired)
		_, _ = w.Write([]byte("<html><body>Proxy authentication required</body></html>"))
	}))
	t.Cleanup(proxy.Close)
	pu, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	t.Cleanup(hc.CloseIdleConnections)

	rep := e.run(t, strongFP(rawMAC), doctor.WithHTTPClient(hc))
	p := check(t, rep, doctor.CheckProxy)
	assert.Equal(t, doctor.Fail, p.Verdict)
	assert.Equal(t, "a proxy or gateway answered instead of the licence server: the proxy requires authentication (HTTP 407)", p.Finding)
	assert.Equal(t, "http://"+pu.Host, evidence(p, "proxy"))
	assert.Equal(t, "the product's HTTP client", evidence(p, "selected_by"))
	assert.Contains(t, p.Fix, "HTTPS_PROXY=http://user:password@proxy:port")
	h := check(t, rep, doctor.CheckHTTP)
	assert.Equal(t, doctor.Skipped, h.Verdict, "one root cause, one failing check")
	assert.Equal(t, "not checked: proxy refused (see the proxy check)", h.Finding)
	assert.Equal(t, doctor.Skipped, check(t, rep, doctor.CheckClock).Verdict, "a proxy page's time must not count")
	assert.Equal(t, 1, rep.Count(doctor.Fail), "one root cause, one failing check")
}

// TestProxy407OnConnect: an https server behind a proxy that refuses to
// tunnel without credentials.
func TestProxy407OnConnect(t *testing.T) {
	t.Parallel()
	e := setup(t, true)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusProxyAuthRequired)
	}))
	t.Cleanup(proxy.Close)
	pu, _ := url.Parse(proxy.URL)
	pool := x509.NewCertPool()
	pool.AddCert(e.srv.Info().Certificate)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	t.Cleanup(hc.CloseIdleConnections)
	rep := e.run(t, strongFP(rawMAC), doctor.WithHTTPClient(hc), doctor.WithRootCAs(pool))
	p := check(t, rep, doctor.CheckProxy)
	assert.Equal(t, doctor.Fail, p.Verdict)
	assert.Equal(t, "a proxy or gateway answered instead of the licence server: the proxy answered CONNECT with 407 Proxy Authentication Required", p.Finding)
	for _, id := range []string{doctor.CheckTCP, doctor.CheckTLS, doctor.CheckHTTP, doctor.CheckClock, doctor.CheckLicense} {
		c := check(t, rep, id)
		assert.Equal(t, doctor.Skipped, c.Verdict, id)
		assert.Equal(t, "not checked: proxy refused (see the proxy check)", c.Finding, id)
	}
	assert.Equal(t, 1, rep.Count(doctor.Fail), "one root cause, one failing check")
}

// TestProxy407OnConnectProxyOnlyNetwork: on a network where only the proxy
// resolves names, an https server behind a loopback proxy that answers 407
// to CONNECT gives one failing check (the proxy, with the advice for 407);
// the server's name not resolving locally is no failure, and the checks
// that need the proxy say so instead of failing again.
func TestProxy407OnConnectProxyOnlyNetwork(t *testing.T) {
	t.Parallel()
	e := setup(t, true)
	connects := make(chan string, 16)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			select {
			case connects <- r.Host:
			default:
			}
		}
		w.Header().Set("Proxy-Authenticate", `Basic realm="corp"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
	}))
	t.Cleanup(proxy.Close)
	pu, _ := url.Parse(proxy.URL)
	su, _ := url.Parse(e.srv.URL)
	port := su.Port()
	e.cfg.ServerURL = "https://licensing.doctor-test.invalid:" + port + "/api/v2"
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	t.Cleanup(hc.CloseIdleConnections)
	rep := e.run(t, strongFP(rawMAC), doctor.WithHTTPClient(hc), doctor.WithResolver(func(_ context.Context, host string) ([]string, error) {
		if host == "licensing.doctor-test.invalid" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return []string{"127.0.0.1"}, nil
	}))
	d := check(t, rep, doctor.CheckDNS)
	assert.Equal(t, doctor.OK, d.Verdict, d.Finding)
	assert.NotContains(t, d.Fix, "set HTTPS_PROXY")
	p := check(t, rep, doctor.CheckProxy)
	assert.Equal(t, doctor.Fail, p.Verdict)
	assert.Contains(t, p.Finding, "CONNECT with 407")
	assert.Contains(t, p.Fix, "HTTPS_PROXY=http://user:password@proxy:port")
	for _, id := range []string{doctor.CheckTCP, doctor.CheckTLS, doctor.CheckHTTP, doctor.CheckClock, doctor.CheckLicense} {
		assert.Equal(t, "not checked: proxy refused (see the proxy check)", check(t, rep, id).Finding, id)
	}
	assert.Equal(t, 1, rep.Count(doctor.Fail), "one root cause, one failing check")
	require.NotEmpty(t, connects, "the proxy was never asked to tunnel")
	assert.Equal(t, "licensing.doctor-test.invalid:"+port, <-connects)
}

// TestLicenceUnknown: the default run never reports a licence as fine
// when the server does not know it. On a machine the server has not
// registered, the licence is reported as not checked (register_instance
// would create an instance there), and nothing is sent; on a machine it
// registered, the licence check asks and fails with the server's words.
func TestLicenceUnknown(t *testing.T) {
	t.Parallel()
	t.Run("fresh machine", func(t *testing.T) {
		t.Parallel()
		e := setup(t, false)
		e.cfg.LicenseKey = "NOT-A-LICENCE-0000"
		rep := e.run(t, strongFP(rawMAC))
		c := check(t, rep, doctor.CheckLicense)
		assert.Equal(t, doctor.Skipped, c.Verdict)
		assert.True(t, strings.HasPrefix(c.Finding, "licence not checked: this machine is not registered"), c.Finding)
		assert.Equal(t, 0, e.srv.Count(licensetest.Register), "register_instance would have created an instance")
		var out strings.Builder
		require.NoError(t, rep.WriteText(&out, false))
		assert.True(t, strings.HasSuffix(out.String(), "; the licence was not checked\n"), out.String())
	})
	t.Run("known machine, server no longer knows the licence", func(t *testing.T) {
		t.Parallel()
		e := setup(t, false)
		fp := strongFP(rawMAC)
		e.runProduct(t, fpSource(fp))
		// The vendor's database was reset: same keys, no licence.
		reset := licensetest.NewServer(&licensetest.Config{Secret: e.srv.Info().Secret, APIKey: e.srv.Info().APIKey})
		t.Cleanup(reset.Close)
		e.cfg.ServerURL = reset.URL
		rep := e.run(t, fp)
		c := check(t, rep, doctor.CheckLicense)
		assert.Equal(t, doctor.Fail, c.Verdict)
		assert.Contains(t, c.Finding, "unknown license")
		assert.Contains(t, c.Fix, "licence key")
		assert.Equal(t, "unknown license", evidence(c, "server_message"))
		assert.True(t, rep.Failed())
		assert.Equal(t, 0, reset.SeatsInUse(product, key))
		assert.Empty(t, reset.Instances())
	})
}

// TestWrongCredentials: a server that answers but does not authenticate
// the client is the doctor's verdict, in the words of a configuration
// fault that names the likely causes, for the mock and for a server that
// words its rejection otherwise.
func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		cfg    func(*env)
		status int
	}{
		"mock, wrong API key": {func(e *env) { e.cfg.APIKey = "nope" }, 401},
		"mock, wrong shared secret": {func(e *env) {
			e.cfg.SharedSecret = []byte(strings.Repeat("x", 32))
		}, 401},
		"other server, 403 plain failure": {func(e *env) {
			gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"success":false,"error":"API key not accepted"}`))
			}))
			t.Cleanup(gw.Close)
			e.cfg.ServerURL = gw.URL + "/api/v2"
		}, 403},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, false)
			tc.cfg(e)
			rep := e.run(t, strongFP(rawMAC))
			h := check(t, rep, doctor.CheckHTTP)
			assert.Equal(t, doctor.Fail, h.Verdict)
			assert.Equal(t, fmt.Sprintf("configuration fault: the server answered (HTTP %d) but did not authenticate this client", tc.status), h.Finding)
			for _, cause := range []string{"API key", "public key", "shared secret", "key id"} {
				assert.Contains(t, h.Fix, cause)
			}
			assert.Equal(t, doctor.Skipped, check(t, rep, doctor.CheckLicense).Verdict)
		})
	}
}

// TestGatewayPages: pages on the path that are not the licence server.
func TestGatewayPages(t *testing.T) {
	t.Parallel()
	for name, h := range map[string]http.HandlerFunc{
		"html 200": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>Welcome to the hotel Wi-Fi</html>"))
		},
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://portal.example/login", http.StatusFound)
		},
		"html 403": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("<html>Blocked by web filter</html>"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			gw := httptest.NewServer(h)
			t.Cleanup(gw.Close)
			e := setup(t, false)
			e.cfg.ServerURL = gw.URL + "/api/v2"
			c := check(t, e.run(t, strongFP(rawMAC)), doctor.CheckHTTP)
			assert.Equal(t, doctor.Fail, c.Verdict)
			assert.True(t, strings.HasPrefix(c.Finding, "a proxy or gateway answered instead of the licence server: "), c.Finding)
		})
	}
}

// TestServerDown: nothing listens.
func TestServerDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	e := setup(t, false)
	e.cfg.ServerURL = "http://" + addr + "/api/v2"
	rep := e.run(t, strongFP(rawMAC))
	c := check(t, rep, doctor.CheckTCP)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.Contains(t, c.Finding, "cannot connect to "+addr)
	assert.Equal(t, doctor.Fail, check(t, rep, doctor.CheckHTTP).Verdict)
	assert.Contains(t, check(t, rep, doctor.CheckHTTP).Finding, "no answer from the server")
}

// TestTLSTrusted verifies a chain against the configured roots.
func TestTLSTrusted(t *testing.T) {
	t.Parallel()
	e := setup(t, true)
	pool := x509.NewCertPool()
	pool.AddCert(e.srv.Info().Certificate)
	rep := e.run(t, strongFP(rawMAC), doctor.WithRootCAs(pool))
	c := check(t, rep, doctor.CheckTLS)
	assert.Equal(t, doctor.OK, c.Verdict, c.Finding)
	assert.Contains(t, c.Finding, "verified: issued by")
	assert.Equal(t, "configured roots (WithRootCAs)", evidence(c, "verified_against"))
	assert.Equal(t, doctor.OK, check(t, rep, doctor.CheckHTTP).Verdict)
}

// TestTLSUntrusted: the server's certificate is not in the roots.
func TestTLSUntrusted(t *testing.T) {
	t.Parallel()
	e := setup(t, true)
	other, _ := selfSigned(t, "Some Other CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	pool := x509.NewCertPool()
	pool.AddCert(other.Leaf)
	rep := e.run(t, strongFP(rawMAC), doctor.WithRootCAs(pool))
	c := check(t, rep, doctor.CheckTLS)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.True(t, strings.HasPrefix(c.Finding, "the certificate chain is not trusted by the configured roots (WithRootCAs): issued by "), c.Finding)
	h := check(t, rep, doctor.CheckHTTP)
	assert.Equal(t, doctor.Fail, h.Verdict)
	assert.Contains(t, h.Finding, "not trusted")
}

// TestTLSExpired: an httptest TLS server with a certificate that expired.
func TestTLSExpired(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	cert, leaf := selfSigned(t, "Expired Test CA", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	e.cfg.ServerURL = ts.URL + "/api/v2"
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	rep := e.run(t, strongFP(rawMAC), doctor.WithRootCAs(pool))
	c := check(t, rep, doctor.CheckTLS)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.Equal(t, "the server's certificate expired on "+leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST"), c.Finding)
	assert.Contains(t, c.Fix, "renew")
}

// TestTLSIntercepted: a trusted chain from an issuer other than the
// expected one, as a TLS-inspecting firewall would present.
func TestTLSIntercepted(t *testing.T) {
	t.Parallel()
	e := setup(t, true)
	pool := x509.NewCertPool()
	pool.AddCert(e.srv.Info().Certificate)
	rep := e.run(t, strongFP(rawMAC), doctor.WithRootCAs(pool), doctor.WithExpectedIssuer("DigiCert"))
	c := check(t, rep, doctor.CheckTLS)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.True(t, strings.HasPrefix(c.Finding, "the chain looks intercepted: issued by "), c.Finding)
	assert.Contains(t, c.Finding, "not by the expected DigiCert")
	assert.Contains(t, c.Fix, "TLS inspection")

	rep = e.run(t, strongFP(rawMAC), doctor.WithRootCAs(pool), doctor.WithPinnedKeys("sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
	c = check(t, rep, doctor.CheckTLS)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.Contains(t, c.Finding, "no certificate in the chain has a pinned key")
}

// TestClockSkew reads the server's time from the probe's reply.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		skew    time.Duration
		verdict doctor.Verdict
		finding string
	}{
		{time.Hour, doctor.Fail, "this machine's clock is 1h0m0s behind the server's, more than the 5m0s the SDK tolerates"},
		{-time.Hour, doctor.Fail, "this machine's clock is 1h0m0s ahead of the server's, more than the 5m0s the SDK tolerates"},
		{2 * time.Minute, doctor.Warn, "this machine's clock is 2m0s behind the server's"},
		{0, doctor.OK, "this machine's clock is within a second of the server's"},
	} {
		t.Run(tc.skew.String(), func(t *testing.T) {
			t.Parallel()
			e := setup(t, false)
			e.srv.SetClockSkew(tc.skew)
			c := check(t, e.run(t, strongFP(rawMAC)), doctor.CheckClock)
			assert.Equal(t, tc.verdict, c.Verdict, c.Finding)
			if tc.skew != 0 {
				assert.Equal(t, tc.finding, c.Finding)
			} else {
				assert.Contains(t, c.Finding, "the server's")
			}
		})
	}
}

// TestStateCorrupt: a state file that does not open.
func TestStateCorrupt(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	fp := strongFP(rawMAC)
	e.runProduct(t, fpSource(fp))
	path := stateFile(t, e.cfg.StateDir)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)-1] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o600))

	c := check(t, e.run(t, fp), doctor.CheckState)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.Equal(t, "the saved state in slot 0 does not open: damaged, edited, or sealed for other hardware or another licence", c.Finding)
	assert.Contains(t, evidence(c, "slot 0"), "does not open")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, b, after, "the doctor changed the state file")
}

// TestStateDirIsFile: StateDir names a file.
func TestStateDirIsFile(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	e.cfg.StateDir = file
	c := check(t, e.run(t, strongFP(rawMAC)), doctor.CheckState)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.Equal(t, "the state directory path is a file, not a directory: the product runs on memory-only state (no offline restart)", c.Finding)
}

// TestStateHeldByRunningProduct: a running client holds a slot; the doctor
// reports it, does not wait for it and does not take it over.
func TestStateHeldByRunningProduct(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	fp := strongFP(rawMAC)
	c := e.startProduct(t, fpSource(fp))
	t.Cleanup(func() { _ = c.Close(context.Background()) })

	st := check(t, e.run(t, fp), doctor.CheckState)
	assert.Equal(t, doctor.OK, st.Verdict, st.Finding)
	assert.Equal(t, "held by a running product", evidence(st, "slot 0"))
	assert.Equal(t, "1 of 4", evidence(st, "slots_in_use"))
	assert.Equal(t, "open on the server (begun, not ended)", evidence(st, "session"))

	// With one slot, the running product holds them all.
	st = check(t, e.run(t, fp, doctor.WithClientOptions(license.WithStateSlots(1))), doctor.CheckState)
	assert.Equal(t, doctor.Fail, st.Verdict)
	assert.Equal(t, "all 1 state slots are held by running products: another start fails with ErrStateLocked", st.Finding)

	// The product still holds its slot and renews normally.
	require.NoError(t, c.ExtendSession(context.Background()))
	assert.Equal(t, license.Active, c.Status().State)
}

// TestStateRollback: the clock is behind the saved high-water mark.
func TestStateRollback(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	fp := strongFP(rawMAC)
	e.runProduct(t, fpSource(fp))
	back := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	c := check(t, e.run(t, fp, doctor.WithClock(back)), doctor.CheckState)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.Contains(t, c.Finding, "behind the latest time this machine had seen: it was set back")
}

// TestFingerprintWeak uses the collector's container fixture: no strong
// identifier, and container markers.
func TestFingerprintWeak(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	fp := fixtureFP(t, "container")
	c := check(t, e.run(t, fp), doctor.CheckFingerprint)
	assert.Equal(t, doctor.Warn, c.Verdict)
	assert.Equal(t, "fewer than two strong identifiers (0): the SDK identifies this machine by an install id kept in the state directory", c.Finding)
	assert.Contains(t, c.Fix, "persistent volume")
	assert.Contains(t, evidence(c, "mb_serial"), "missing: not present")
	assert.Contains(t, evidence(c, "cpu_id"), "weak; from /proc/cpuinfo; id ")
	assert.NotEmpty(t, evidence(c, "container"))
}

// TestFingerprintChangedSinceRegistration names the component that changed.
func TestFingerprintChangedSinceRegistration(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	e.runProduct(t, fpSource(strongFP(rawMAC)))
	c := check(t, e.run(t, strongFP("3c:22:fb:99:99:99")), doctor.CheckFingerprint)
	assert.Equal(t, doctor.Warn, c.Verdict)
	assert.Equal(t, "the hardware identity changed since this machine registered (mac_addresses): the next start registers it again, which may take a new seat", c.Finding)
	assert.Equal(t, "mac_addresses", evidence(c, "changed_since_registration"))
}

// stateFile returns the path of the one saved state file in dir.
func stateFile(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var found []string
	for _, e := range entries {
		if !strings.Contains(e.Name(), ".") && e.Type().IsRegular() {
			found = append(found, filepath.Join(dir, e.Name()))
		}
	}
	require.Len(t, found, 1, "state files in %s", dir)
	return found[0]
}

// TestStateAfterCloseOffline: after a Close whose end_session could not
// reach the server, the state check says the session is still open on the
// server, and that an offline start runs Active on the saved deadlines,
// which is what the client then does; after a clean Close, no session is
// open, and an offline start still resumes the same deadlines.
func TestStateAfterCloseOffline(t *testing.T) {
	t.Parallel()
	for _, endReached := range []bool{true, false} {
		t.Run(fmt.Sprint("end_session reached: ", endReached), func(t *testing.T) {
			t.Parallel()
			e := setup(t, false)
			fp := strongFP(rawMAC)
			c := e.startProduct(t, fpSource(fp))
			if !endReached {
				e.srv.Inject(licensetest.Fault{Endpoint: licensetest.End, Kind: licensetest.FaultFail, Count: 100, Status: 503})
			}
			_ = c.Close(context.Background())
			e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 503}) // offline from here on

			st := check(t, e.run(t, fp), doctor.CheckState)
			wantSession := "none open"
			if !endReached {
				wantSession = "open on the server (begun, not ended)"
			}
			assert.Equal(t, wantSession, evidence(st, "session"))
			assert.True(t, strings.HasPrefix(evidence(st, "offline_start"), "Active until "), evidence(st, "offline_start"))

			next := e.startProduct(t, fpSource(fp))
			t.Cleanup(func() { _ = next.Close(context.Background()) })
			assert.Equal(t, license.Active, next.Status().State, "the client does what the doctor said")
			assert.Contains(t, evidence(st, "offline_start"), next.Status().SessionExpiry.UTC().Format(time.RFC3339))
		})
	}
}

// TestRecordLocationUnusable: a file where the anti-rollback record's
// directory belongs is named as the problem, with what it costs (no offline
// grace from the saved state) and what to do; the doctor changes nothing.
func TestRecordLocationUnusable(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	fp := strongFP(rawMAC)
	records := filepath.Join(t.TempDir(), "records")
	opt := license.WithRollbackRecordDir(records)
	e.runProduct(t, fpSource(fp), opt)

	c := check(t, e.run(t, fp, doctor.WithClientOptions(opt)), doctor.CheckState)
	assert.Equal(t, doctor.OK, c.Verdict, c.Finding)

	require.NoError(t, os.Rename(records, records+".aside"))
	require.NoError(t, os.WriteFile(records, []byte("x"), 0o600))
	c = check(t, e.run(t, fp, doctor.WithClientOptions(opt)), doctor.CheckState)
	assert.Equal(t, doctor.Fail, c.Verdict)
	assert.Equal(t, "the anti-rollback record's location exists but cannot be used (a file is where the record directory belongs): the saved state grants no offline grace; an online start works", c.Finding)
	assert.Contains(t, c.Fix, "WithRollbackRecordDir")
	b, err := os.ReadFile(records)
	require.NoError(t, err)
	assert.Equal(t, "x", string(b), "the doctor changed the record location")
}
