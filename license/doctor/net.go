package doctor

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// proxyFailure is a proxy that would not tunnel to the server.
type proxyFailure struct {
	status int
	err    error
}

func (e *proxyFailure) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return "proxy answered CONNECT with " + statusText(e.status)
}

// dialAddrs connects to the first of addrs that answers.
func (d *doctor) dialAddrs(ctx context.Context, addrs []string, port string) (net.Conn, error) {
	var dialer net.Dialer
	first := errors.New("no address to connect to")
	for i, a := range addrs {
		conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(a, port))
		if err == nil {
			return conn, nil
		}
		if i == 0 {
			first = err
		}
	}
	return nil, first
}

// dialProxy connects to the proxy, resolving its name with the resolver.
func (d *doctor) dialProxy(ctx context.Context) (net.Conn, error) {
	host := d.proxy.Hostname()
	port := cmp.Or(d.proxy.Port(), map[string]string{"https": "443", "socks5": "1080"}[d.proxy.Scheme], "80")
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		var err error
		if addrs, err = d.o.resolver(ctx, host); err != nil {
			return nil, fmt.Errorf("the proxy name %s does not resolve: %w", host, err)
		}
	}
	conn, err := d.dialAddrs(ctx, addrs, port)
	if err != nil {
		return nil, err
	}
	if d.proxy.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: d.roots(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS to the proxy: %w", err)
		}
		return tc, nil
	}
	return conn, nil
}

// tunnel asks the proxy on conn for a tunnel to the server (CONNECT).
func (d *doctor) tunnel(ctx context.Context, conn net.Conn) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{})
	}
	hostport := net.JoinHostPort(d.host, d.port)
	req := "CONNECT " + hostport + " HTTP/1.1\r\nHost: " + hostport + "\r\n"
	if u := d.proxy.User; u != nil {
		pw, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)) + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		return &proxyFailure{err: err}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		return &proxyFailure{err: fmt.Errorf("no valid answer to CONNECT: %w", err)}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &proxyFailure{status: resp.StatusCode}
	}
	return nil
}

// connect opens the first hop to the server: a TCP connection, or a
// tunnel through the proxy for https. The string says how.
func (d *doctor) connect(ctx context.Context) (net.Conn, string, error) {
	if d.proxy == nil {
		conn, err := d.dialAddrs(ctx, d.addrs, d.port)
		if err != nil {
			return nil, "", err
		}
		return conn, "direct to " + conn.RemoteAddr().String(), nil
	}
	conn, err := d.dialProxy(ctx)
	if err != nil {
		return nil, "", &proxyFailure{err: err}
	}
	if d.target.Scheme == "https" {
		if err := d.tunnel(ctx, conn); err != nil {
			conn.Close()
			return nil, "", err
		}
		return conn, "tunnel through proxy " + d.proxy.Host, nil
	}
	return conn, "to proxy " + d.proxy.Host, nil
}

// checkTCP opens a TCP connection to the server, or to its proxy.
func (d *doctor) checkTCP(ctx context.Context) Check {
	switch {
	case d.target == nil:
		return skipped(CheckTCP, "the server URL does not parse")
	case len(d.addrs) == 0 && d.proxy == nil:
		return skipped(CheckTCP, "the server name does not resolve")
	}
	cctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	defer cancel()
	start := time.Now()
	conn, how, err := d.connect(cctx)
	took := time.Since(start)
	c := Check{ID: CheckTCP, Evidence: []Fact{{"target", net.JoinHostPort(d.host, d.port)}, {"connect_time", roundDur(took)}}}
	var pf *proxyFailure
	switch {
	case errors.As(err, &pf):
		pc := Check{ID: CheckProxy}
		if pf.status != 0 {
			pc.Evidence = []Fact{{"status", statusText(pf.status)}}
			pc = pc.judged(Fail, gatewayFinding+": the proxy answered CONNECT with "+statusText(pf.status), gatewayFix(pf.status))
		} else {
			pc = pc.judged(Fail, "the proxy "+d.proxy.Host+" does not answer: "+errText(pf.err),
				"check the proxy settings ("+d.proxySource+") and that the proxy is up")
		}
		d.proxyCheck = &pc
		return c.judged(Skipped, notCheckedProxy, "")
	case err != nil:
		c.Evidence = append(c.Evidence, Fact{"error", errText(err)})
		return c.judged(Fail, fmt.Sprintf("cannot connect to %s: %s", net.JoinHostPort(d.host, d.port), errText(err)),
			"check that the server is up and that no firewall blocks this machine from its port "+d.port)
	}
	conn.Close()
	return c.judged(OK, "connected "+how+" in "+roundDur(took), "")
}

// roots is the pool the client verifies the server with; nil means the
// system roots.
func (d *doctor) roots() *x509.CertPool {
	if d.o.roots != nil {
		return d.o.roots
	}
	if hc := d.o.httpClient; hc != nil {
		if t, ok := hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
			return t.TLSClientConfig.RootCAs
		}
	}
	return nil
}

// checkTLS shakes hands with the server and examines its chain.
func (d *doctor) checkTLS(ctx context.Context) Check {
	switch {
	case d.target == nil:
		return skipped(CheckTLS, "the server URL does not parse")
	case d.target.Scheme != "https":
		return skipped(CheckTLS, "the server URL is http: no TLS")
	case d.proxyCheck != nil:
		return skipped(CheckTLS, notCheckedProxy)
	case d.checks[CheckTCP].Verdict != OK: // run sets the tcp check first
		return skipped(CheckTLS, "no TCP connection: see the tcp check")
	}
	cctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	defer cancel()
	conn, _, err := d.connect(cctx)
	if err != nil {
		return Check{ID: CheckTLS, Verdict: Fail, Finding: "cannot connect for the handshake: " + errText(err)}
	}
	defer conn.Close()
	// Verification is done below, step by step, so that the report can
	// say which part failed; this connection carries no request.
	tc := tls.Client(conn, &tls.Config{ServerName: d.host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec
	if err := tc.HandshakeContext(cctx); err != nil {
		return Check{ID: CheckTLS, Verdict: Fail, Finding: "the TLS handshake failed: " + errText(err),
			Fix: "a server that speaks TLS 1.2 or later must answer on this port; a gateway that does not suggests interception"}
	}
	st := tc.ConnectionState()
	return d.judgeChain(st.PeerCertificates, tls.VersionName(st.Version))
}

// judgeChain examines the server's chain against the configured roots,
// the clock, the host name and any expected issuer or pin.
func (d *doctor) judgeChain(certs []*x509.Certificate, version string) Check {
	c := Check{ID: CheckTLS}
	if len(certs) == 0 {
		return c.judged(Fail, "the server sent no certificate", "")
	}
	now := d.o.clock()
	leaf := certs[0]
	issuer := issuerName(leaf)
	pool, roots := d.roots(), "system roots"
	if pool != nil {
		roots = "configured roots (WithRootCAs)"
	}
	c.Evidence = []Fact{
		{"tls_version", version},
		{"subject", leaf.Subject.CommonName},
		{"names", strings.Join(limit(leaf.DNSNames, 4), ", ")},
		{"issuer", issuer},
		{"valid_from", leaf.NotBefore.UTC().Format(time.RFC3339)},
		{"valid_until", leaf.NotAfter.UTC().Format(time.RFC3339)},
		{"chain_length", fmt.Sprint(len(certs))},
		{"verified_against", roots},
	}
	for i, cert := range certs {
		what := "the server's certificate"
		if i > 0 {
			what = "an intermediate certificate (" + cert.Subject.CommonName + ")"
		}
		switch {
		case now.After(cert.NotAfter):
			return c.judged(Fail, fmt.Sprintf("%s expired on %s", what, cert.NotAfter.UTC().Format("2006-01-02 15:04 MST")),
				"the vendor must renew the server's certificate; if this machine's clock is wrong, correct it")
		case now.Before(cert.NotBefore):
			return c.judged(Fail, fmt.Sprintf("%s is not valid until %s: this machine's clock may be wrong", what, cert.NotBefore.UTC().Format("2006-01-02 15:04 MST")),
				"turn on automatic time (NTP) on this machine")
		}
	}
	if err := leaf.VerifyHostname(d.host); err != nil {
		return c.judged(Fail, fmt.Sprintf("the certificate is for %s, not for %s", certNames(leaf), d.host),
			"use the host name the certificate names in the server URL; a certificate for another name suggests interception or a wrong address")
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now})
	intercepted, why := d.intercepted(certs, issuer)
	switch {
	case verr != nil && intercepted:
		return c.judged(Fail, "the chain is not trusted and looks intercepted: "+why, interceptFix)
	case verr != nil:
		c.Evidence = append(c.Evidence, Fact{"error", errText(verr)})
		return c.judged(Fail, "the certificate chain is not trusted by the "+roots+": issued by "+issuer,
			"if the vendor uses a private CA, pass it with WithRootCAs; otherwise something on the path presents its own certificate")
	case intercepted:
		return c.judged(Fail, "the chain looks intercepted: "+why, interceptFix)
	}
	if left := leaf.NotAfter.Sub(now); left < 14*24*time.Hour {
		return c.judged(Warn, fmt.Sprintf("the certificate is valid but expires in %s", left.Round(time.Hour)),
			"tell the vendor: the server's certificate needs renewing")
	}
	return c.judged(OK, fmt.Sprintf("verified: issued by %s for %s, valid until %s", issuer, d.host, leaf.NotAfter.UTC().Format("2006-01-02")), "")
}

const interceptFix = "a TLS-inspecting firewall or antivirus re-signs the server's certificate: ask IT to exempt the licence server's host from TLS inspection"

// intercepted reports whether the chain misses every expected issuer or
// pin, or names a known TLS-inspection product.
func (d *doctor) intercepted(certs []*x509.Certificate, issuer string) (bool, string) {
	pinned := slices.ContainsFunc(certs, func(cert *x509.Certificate) bool {
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		pin := base64.StdEncoding.EncodeToString(sum[:])
		return slices.ContainsFunc(d.o.pins, func(p string) bool { return strings.TrimPrefix(p, "sha256/") == pin })
	})
	if len(d.o.pins) > 0 && !pinned {
		return true, "no certificate in the chain has a pinned key (issued by " + issuer + ")"
	}
	expected := slices.ContainsFunc(certs, func(cert *x509.Certificate) bool {
		names := strings.ToLower(cert.Issuer.CommonName + " " + strings.Join(cert.Issuer.Organization, " "))
		return slices.ContainsFunc(d.o.issuers, func(want string) bool { return strings.Contains(names, strings.ToLower(want)) })
	})
	if len(d.o.issuers) > 0 && !expected {
		return true, fmt.Sprintf("issued by %s, not by the expected %s", issuer, strings.Join(d.o.issuers, " or "))
	}
	lower := strings.ToLower(issuer)
	if slices.ContainsFunc(inspectors, func(m string) bool { return strings.Contains(lower, m) }) {
		return true, "issued by " + issuer + ", a TLS-inspection product"
	}
	return false, ""
}

// inspectors are name fragments of CAs that TLS-inspecting firewalls and
// antivirus products sign with.
var inspectors = []string{"zscaler", "fortinet", "fortigate", "palo alto", "blue coat", "bluecoat", "netskope",
	"sophos", "forcepoint", "websense", "mcafee web gateway", "check point", "checkpoint", "barracuda",
	"watchguard", "cisco umbrella", "kaspersky", "avast", "eset ssl", "bitdefender", "mitmproxy",
	"charles proxy", "fiddler", "untangle", "lightspeed", "securly"}

func issuerName(c *x509.Certificate) string {
	name := c.Issuer.CommonName
	if len(c.Issuer.Organization) > 0 && !strings.Contains(name, c.Issuer.Organization[0]) {
		if name != "" {
			name += ", "
		}
		name += c.Issuer.Organization[0]
	}
	return cmp.Or(name, "an unnamed issuer")
}

func certNames(c *x509.Certificate) string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{c.Subject.CommonName}
	}
	return joinOr(limit(names, 4), "no name")
}
