package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/verdict"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/internal/diag"
)

// doctor is the state of one Run.
type doctor struct {
	o      options
	cfg    license.Config
	rep    *Report
	checks map[string]Check
	// idValues maps each fingerprint component to its raw values, for
	// changedSince; they never enter the report.
	idValues map[string][]string

	client *license.Client
	diag   diag.Client // client's diagnosis surface
	target *url.URL    // the parsed ServerURL, nil when it does not parse
	host   string
	port   string
	addrs  []string // the server host's addresses, from the resolver; none when it did not resolve

	proxy       *url.URL // the proxy selected for the server, nil for none
	proxySource string
	proxyCheck  *Check // set by the TCP/TLS step when the proxy itself failed

	probe *diag.ProbeResult
	fp    *fingerprint.Fingerprint
	fpErr error
	state *diag.StateInspection
}

var checkOrder = []string{CheckConfig, CheckDNS, CheckProxy, CheckTCP, CheckTLS, CheckHTTP,
	CheckClock, CheckState, CheckFingerprint, CheckLicense, CheckRoundTrip}

func (d *doctor) set(c Check) { d.checks[c.ID] = c }

func skipped(id, why string) Check { return Check{ID: id, Verdict: Skipped, Finding: why} }

func (c Check) judged(v Verdict, finding, fix string) Check {
	c.Verdict, c.Finding, c.Fix = v, finding, fix
	return c
}

// run runs every check and fills the report in order.
func (d *doctor) run(ctx context.Context) {
	d.checks = make(map[string]Check, len(checkOrder))
	d.set(d.checkConfig())
	d.selectProxy()
	d.set(d.checkDNS(ctx))
	d.set(d.checkTCP(ctx))
	d.set(d.checkTLS(ctx))
	d.set(d.checkHTTP(ctx))
	d.set(d.checkProxy())
	d.set(d.checkClock())
	if d.client != nil { // the fingerprint the client's source gives, as the product sees it
		d.fp, d.fpErr = d.diag.Fingerprint(ctx)
	} else {
		d.fp, d.fpErr = fingerprint.Collect(ctx)
	}
	d.set(d.checkState(ctx))
	d.set(d.checkFingerprint())
	d.set(d.checkLicense(ctx))
	d.set(d.checkRoundTrip(ctx))
	if d.client != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.o.timeout)
		_ = d.client.Close(cctx)
		cancel()
	}
	for _, id := range checkOrder {
		d.rep.Checks = append(d.rep.Checks, d.checks[id]) // every check above sets its id
	}
}

// checkConfig builds the licence client as the product would and reports
// every problem license.New finds.
func (d *doctor) checkConfig() Check {
	c := Check{ID: CheckConfig, Evidence: configFacts(d.cfg)}
	if u, err := url.Parse(d.cfg.ServerURL); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		d.target = u
		d.host = u.Hostname()
		d.port = cmp.Or(u.Port(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	client, err := license.New(d.cfg, d.clientOptions()...)
	if err != nil {
		problems := configProblems(err)
		for _, p := range problems {
			c.Evidence = append(c.Evidence, Fact{"problem", p})
		}
		return c.judged(Fail, fmt.Sprintf("license.New rejects the configuration: %s", strings.Join(problems, "; ")),
			"correct every problem listed; the product cannot start a licence session until then")
	}
	d.client = client
	d.diag = client.Diagnostics(diag.NewKey())
	if d.target != nil && d.target.Scheme == "http" && !isLoopback(d.host) {
		return c.judged(Warn, "the server URL is plain http: anyone on the path can read and alter the exchange",
			"use the server's https URL")
	}
	return c.judged(OK, "license.New accepts the configuration", "")
}

// clientOptions are the options of the doctor's licence client: the
// caller's, then the doctor's own.
func (d *doctor) clientOptions() []license.Option {
	opts := append([]license.Option(nil), d.o.client...)
	if d.o.httpClient != nil {
		opts = append(opts, license.WithHTTPClient(d.o.httpClient))
	}
	if d.o.roots != nil {
		opts = append(opts, license.WithRootCAs(d.o.roots))
	}
	opts = append(opts, license.WithTestHooks(license.TestHooks{WallClock: d.o.clock})) // Run sets a default clock
	// One HTTP attempt per call: a diagnosis reports what happens, it does
	// not retry it away.
	return append(opts, license.WithRetry(license.Retry{Attempts: 1, AttemptTimeout: d.o.timeout}))
}

// configProblems lists the problems in a license.New error, one each.
func configProblems(err error) []string {
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok { // every error of license.New
		for _, e := range j.Unwrap() {
			out = append(out, strings.TrimPrefix(e.Error(), "license: "))
		}
	}
	return out
}

// configFacts is the configuration as evidence, secrets redacted: the
// same view as Config.LogValue.
func configFacts(cfg license.Config) []Fact {
	var out []Fact
	for _, a := range cfg.LogValue().Group() {
		if v := a.Value.Resolve().String(); v != "" && v != "false" && v != "0" && v != "0s" {
			out = append(out, Fact{a.Key, v})
		}
	}
	return out
}

func isLoopback(host string) bool {
	return host == "localhost" || net.ParseIP(host).IsLoopback() // a nil IP is not loopback
}

// checkDNS resolves the server's host through the resolver.
func (d *doctor) checkDNS(ctx context.Context) Check {
	if d.target == nil {
		return skipped(CheckDNS, "the server URL does not parse")
	}
	c := Check{ID: CheckDNS, Evidence: []Fact{{"host", d.host}}}
	if ip := net.ParseIP(d.host); ip != nil {
		d.addrs = []string{d.host}
		return c.judged(OK, d.host+" is an IP address; no lookup needed", "")
	}
	rctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	start := time.Now()
	addrs, err := d.o.resolver(rctx, d.host)
	cancel()
	c.Evidence = append(c.Evidence, Fact{"lookup_time", roundDur(time.Since(start))})
	if err != nil || len(addrs) == 0 {
		if err != nil || d.proxy == nil {
			c.Evidence = append(c.Evidence, Fact{"error", errText(cmp.Or(err, errors.New("no addresses")))})
		}
		if d.proxy != nil {
			// The proxy resolves the server's name, not this machine: on a
			// network that allows only a proxy the name need not resolve here.
			return c.judged(OK, fmt.Sprintf("%s does not resolve here, which does not matter: requests go through the proxy %s, which resolves it", d.host, d.proxy.Host), "")
		}
		return c.judged(Fail, fmt.Sprintf("the server name %s does not resolve", d.host),
			"check the server URL for typos, and this machine's DNS settings (or hosts file); on a network that allows only a proxy, set HTTPS_PROXY")
	}
	d.addrs = addrs
	return c.judged(OK, fmt.Sprintf("%s resolves to %s", d.host, strings.Join(limit(addrs, 4), ", ")), "")
}

// selectProxy finds the proxy the client's transport selects for the
// server URL, as the transport itself will.
func (d *doctor) selectProxy() {
	if d.target == nil {
		return
	}
	req := &http.Request{Method: http.MethodPost, URL: d.target.JoinPath("extend_session"), Header: http.Header{}}
	req.Host = d.target.Host
	pick := http.ProxyFromEnvironment
	d.proxySource = "environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)"
	if hc := d.o.httpClient; hc != nil && hc.Transport != nil {
		t, ok := hc.Transport.(*http.Transport)
		if !ok {
			d.proxySource = fmt.Sprintf("a custom %T; not inspected", hc.Transport)
			return
		}
		d.proxySource = "the product's HTTP client"
		pick = t.Proxy
	}
	if pick == nil {
		return
	}
	if p, err := pick(req); err == nil {
		d.proxy = p // nil for none
	}
}

// checkProxy reports the proxy selected and whether it passed the
// request on to the licence server. It runs after the TLS and HTTP checks,
// which go through the proxy.
func (d *doctor) checkProxy() Check {
	if d.target == nil {
		return skipped(CheckProxy, "the server URL does not parse")
	}
	c := Check{ID: CheckProxy, Evidence: []Fact{{"selected_by", d.proxySource}}}
	if d.proxy == nil {
		if isLoopback(d.host) {
			c.Evidence = append(c.Evidence, Fact{"note", "environment proxies never apply to loopback addresses"})
		}
		return c.judged(OK, "no proxy: the client connects to the server directly", "")
	}
	c.Evidence = append(c.Evidence, Fact{"proxy", d.proxy.Scheme + "://" + d.proxy.Host}) // never its credentials
	if d.proxy.User != nil {
		c.Evidence = append(c.Evidence, Fact{"proxy_credentials", "set (not shown)"})
	}
	switch {
	case d.proxyCheck != nil:
		pc := *d.proxyCheck
		pc.Evidence = append(c.Evidence, pc.Evidence...)
		return pc
	case d.probe != nil:
		cl := classify(d.probe.Err)
		if cl.gateway() {
			c.Evidence = append(c.Evidence, Fact{"status", statusText(cl.status)})
			// One root cause, one failure: the http check saw the proxy's
			// answer, not the server's.
			h := skipped(CheckHTTP, notCheckedProxy)
			h.Evidence = d.checks[CheckHTTP].Evidence
			d.set(h)
			return c.judged(Fail, gatewayFinding+": "+cl.detail, gatewayFix(cl.status))
		}
		if cl.answered {
			return c.judged(OK, "proxy "+d.proxy.Host+" passes requests on to the licence server", "")
		}
		return c.judged(Warn, "proxy "+d.proxy.Host+" answers, but no reply from the licence server came through it", "see the http check")
	}
	return c.judged(OK, "proxy "+d.proxy.Host+" answers", "")
}

// checkHTTP sends the harmless probe and reads the SDK's verdict on it.
func (d *doctor) checkHTTP(ctx context.Context) Check {
	switch {
	case d.client == nil:
		return skipped(CheckHTTP, "the configuration is rejected; fix it first")
	case len(d.addrs) == 0 && d.proxy == nil:
		return skipped(CheckHTTP, "the server name does not resolve")
	case d.proxyCheck != nil:
		return skipped(CheckHTTP, notCheckedProxy)
	}
	pctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	res := d.diag.Probe(pctx)
	cancel()
	d.probe = &res
	c := Check{ID: CheckHTTP, Evidence: []Fact{
		{"request", "extend_session for a token that names no session (no server effect)"},
		{"round_trip", roundDur(res.RTT)},
	}}
	cl := classify(res.Err)
	if cl.status != 0 {
		c.Evidence = append(c.Evidence, Fact{"status", statusText(cl.status)})
	}
	if cl.message != "" {
		c.Evidence = append(c.Evidence, Fact{"server_message", cl.message})
	}
	switch {
	case cl.answered && (res.Err == nil || expectedRefusal(cl.message)):
		return c.judged(OK, fmt.Sprintf("the licence server answered in %s", roundDur(res.RTT)), "")
	case cl.answered:
		return c.judged(Fail, fmt.Sprintf("the licence server answered but refused this client: %q", cl.message),
			"check APIKey and the server key (ServerPublicKey or SharedSecret) against the vendor's settings")
	case cl.fault:
		return c.judged(Fail, "the request failed on this machine: "+cl.detail,
			"check the server key (ServerPublicKey or SharedSecret) and any custom sealer")
	case cl.credentials:
		return c.judged(Fail, fmt.Sprintf("configuration fault: the server answered (HTTP %d) but did not authenticate this client", cl.status),
			verdict.CredentialsCauses+"; until then the product runs on its offline grace and then stops")
	case cl.gateway():
		return c.judged(Fail, gatewayFinding+": "+cl.detail, gatewayFix(cl.status))
	case cl.why == verdict.DetailUnauthenticated:
		return c.judged(Fail, "a reply came back that does not open with this client's keys: "+cl.detail,
			"check the server key (ServerPublicKey or SharedSecret); if the keys are right, something on the path answers in the server's place")
	case cl.why == verdict.DetailTransient:
		return c.judged(Fail, "the server, or a gateway in front of it, failed: "+cl.detail,
			"retry later; if it persists, the vendor's server or gateway needs attention (offline grace covers the outage)")
	case cl.why == verdict.DetailMalformed, cl.why == verdict.DetailTooLarge:
		return c.judged(Fail, "a reply came back that does not follow the v2 spec: "+cl.detail,
			"the server, or something answering in its place, is not a v2 licence server at this URL: check the URL's version path")
	case cl.why == verdict.DetailTLS:
		return c.judged(Fail, "the TLS connection to the server is not trusted: "+cl.detail, "see the tls check")
	}
	return c.judged(Fail, "no answer from the server: "+cl.detail,
		"check that the server is up and that a firewall lets this machine reach it")
}

// expectedRefusal reports whether a refusal of the probe is the expected
// one: the server looked at the token, so it opened the envelope and
// accepted the key.
func expectedRefusal(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "token") || strings.Contains(m, "session")
}

const gatewayFinding = "a proxy or gateway answered instead of the licence server"

// notCheckedProxy is the finding of a check that depends on a proxy that
// failed: the proxy check reports the one failure.
const notCheckedProxy = "not checked: proxy refused (see the proxy check)"

func gatewayFix(status int) string {
	switch {
	case status == http.StatusProxyAuthRequired:
		return "the proxy requires authentication: give the product a proxy URL with credentials (HTTPS_PROXY=http://user:password@proxy:port) or ask IT to allow the licence server without authentication"
	case status >= 300 && status < 400:
		return "the server URL is redirected: use the URL the redirect points to, or ask IT why a gateway redirects it (captive portal, web filter)"
	}
	return "ask IT to let this machine reach the licence server unfiltered (allow-list its host), or configure the proxy that does"
}

// checkClock compares the server's time in the probe's reply with this
// machine's.
func (d *doctor) checkClock() Check {
	if pc, ok := d.checks[CheckProxy]; ok && pc.Verdict == Fail {
		return skipped(CheckClock, notCheckedProxy)
	}
	if d.probe == nil || d.probe.ServerTime.IsZero() {
		return skipped(CheckClock, "no reply from the licence server carried its time")
	}
	skew := d.probe.Skew
	c := Check{ID: CheckClock, Evidence: []Fact{
		{"server_time", d.probe.ServerTime.UTC().Format(time.RFC3339)},
		{"local_time", d.o.clock().UTC().Format(time.RFC3339)},
		{"skew", skew.Round(time.Second).String() + " (server minus local)"},
		{"rollback_slack", diag.RollbackSlack.String()},
	}}
	finding := fmt.Sprintf("this machine's clock is %s the server's", skewText(skew))
	switch {
	case skew.Abs() > diag.RollbackSlack:
		return c.judged(Fail, finding+fmt.Sprintf(", more than the %s the SDK tolerates", diag.RollbackSlack),
			"turn on automatic time (NTP) on this machine; setting the clock back also voids offline grace until the server is reached")
	case skew.Abs() > time.Minute:
		return c.judged(Warn, finding, "turn on automatic time (NTP) on this machine")
	}
	return c.judged(OK, finding, "")
}

// skewText renders how the local clock stands against the server's, from
// skew = server minus local: "1h0m0s behind", "2m0s ahead of" or "within
// a second of".
func skewText(skew time.Duration) string {
	s := skew.Round(time.Second)
	if s.Abs() >= time.Minute {
		// A reply's time has whole seconds: do not pretend to more.
		s = skew.Round(10 * time.Second)
	}
	switch {
	case s > time.Second:
		return s.String() + " behind"
	case s < -time.Second:
		return (-s).String() + " ahead of"
	}
	return "within a second of"
}

func roundDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// statusText is "407 Proxy Authentication Required", or "599" for a status
// without a text.
func statusText(status int) string {
	return strings.TrimSpace(fmt.Sprintf("%d %s", status, http.StatusText(status)))
}

// errText is an error's text for evidence, without repeated prefixes.
func errText(err error) string {
	s := err.Error()
	for _, p := range []string{"license: ", "transport: ", "doctor: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

func limit(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string(nil), s[:n]...), fmt.Sprintf("(+%d more)", len(s)-n))
}
