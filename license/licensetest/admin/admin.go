package admin

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/hook"
)

// Path is the path below which a Handler serves the admin API and the
// console.
const Path = "/admin/"

// Options configure NewHandler. The zero value is ready to use: a random
// token and loopback host names only.
type Options struct {
	// Token is the secret every admin request must carry. Empty means a
	// random token (Handler.Token returns it).
	Token string
	// AllowedHosts are further host names (without port) the Host header of
	// an admin request may carry, for an admin listener reached by a name
	// other than localhost, a loopback address or the address it listens on.
	AllowedHosts []string
}

// Handler is the admin API and live console of a licensetest.Server, an
// http.Handler to mount at Path. Build it with NewHandler and Close it when
// the listener serving it is shut down.
//
// Every request must carry the admin token: as "Authorization: Bearer
// TOKEN" (scripts), as the cookie the console URL sets (ConsoleURL: opening
// it stores the token in an HttpOnly, SameSite=Strict cookie and redirects to
// Path without it), or as the query parameter token=TOKEN. The Host
// header must name localhost, a loopback address, the address the request
// arrived on or one of Options.AllowedHosts, which defeats DNS
// rebinding. State-changing requests (POST) from another origin are refused
// (Origin and Sec-Fetch-Site are checked), and no CORS header is ever sent.
// The token is never logged and never appears in a reply.
//
// Endpoints (docs/mockserver.md has a curl example for each):
//
//	GET  /admin/            the console (HTML, no external fetches)
//	GET  /admin/state       licences, instances, sessions, faults, request log, scenario
//	GET  /admin/events      the same, live, as Server-Sent Events ("state" events)
//	GET  /admin/requests    the request log (?n=100); never keys, tokens or payloads
//	GET  /admin/config      what a client needs, secrets included
//	GET  /admin/scenario    the latest scenario's timeline (running or ended)
//	POST /admin/scenario    run the scenario in the body (text); POST /admin/scenario/stop
//	GET  /admin/offline     the offline activation page; POST /admin/offline/exchange
//	                        answers the request file in the body with its reply file
//	POST /admin/COMMAND     down, up, revoke, expire, reinstate, license, control,
//	                        fail, fault, latency, retry_after, content_type, skew, clear
//
// Commands take their parameters as query or form values and are parsed
// strictly: an unknown parameter or value is answered 400 with a message
// naming the accepted ones. Replies are JSON: {"ok":true} or
// {"ok":false,"error":"..."}.
type Handler struct {
	s        *licensetest.Server
	in       hook.Internals
	token    string
	tokenSum [32]byte
	hosts    []string
	mux      *http.ServeMux
	ctl      *controller
	cop      *http.CrossOriginProtection
	done     chan struct{}
	once     sync.Once

	mu      sync.Mutex // guards the fields below
	closed  bool
	actions []adminAction
	seq     int
	stopRun func() // stops the scenario started through the admin API and waits for it
}

const maxActions = 50 // admin actions the console lists

// NewHandler returns the admin API and console of s. Each call returns a
// new, independent handler; Close it when done.
func NewHandler(s *licensetest.Server, opts Options) *Handler {
	a := &Handler{
		s:     s,
		in:    hook.Of(s),
		token: opts.Token,
		mux:   http.NewServeMux(),
		ctl:   &controller{s: s},
		cop:   http.NewCrossOriginProtection(),
		done:  make(chan struct{}),
	}
	if a.token == "" {
		a.token = hook.RandomToken(24)
	}
	a.tokenSum = sha256.Sum256([]byte(a.token))
	for _, h := range opts.AllowedHosts {
		a.hosts = append(a.hosts, normaliseHost(h))
	}
	a.mux.HandleFunc("GET /admin/{$}", a.page("index.html"))
	a.mux.HandleFunc("GET /admin/console/{file}", a.serveAsset)
	a.mux.HandleFunc("GET /admin/offline", a.page("offline.html"))
	a.mux.HandleFunc("POST /admin/offline/exchange", a.serveOfflineExchange)
	a.mux.HandleFunc("GET /admin/state", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.state())
	})
	a.mux.HandleFunc("GET /admin/events", a.serveEvents)
	a.mux.HandleFunc("GET /admin/requests", a.serveRequests)
	a.mux.HandleFunc("GET /admin/config", a.serveConfig)
	a.mux.HandleFunc("GET /admin/scenario", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, LatestScenario(a.s))
	})
	a.mux.HandleFunc("POST /admin/scenario", a.startScenario)
	a.mux.HandleFunc("POST /admin/scenario/stop", a.stopScenario)
	a.mux.HandleFunc("POST /admin/{command}", a.serveCommand)
	return a
}

// Token returns the admin token.
func (a *Handler) Token() string { return a.token }

// ConsoleURL returns the URL that opens the console with the token, for a
// listener whose base URL is base (such as "http://127.0.0.1:8081"). Treat
// it as a secret: it carries the token.
func (a *Handler) ConsoleURL(base string) string {
	return strings.TrimSuffix(base, "/") + Path + "?token=" + url.QueryEscape(a.token)
}

// Close stops a pending timed outage, ends the live streams and stops a
// scenario started through the admin API, waiting for it. The server is
// left as it is. Close is idempotent; after it, the handler still answers
// but starts no scenario.
func (a *Handler) Close() {
	a.once.Do(func() { close(a.done) })
	a.ctl.stop()
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.stopScenarioRun()
}

// ServeHTTP implements http.Handler.
func (a *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	refused := func(reason string, status int, msg string) {
		a.in.Logger.Warn("licensetest: admin request refused", slog.String("reason", reason), slog.String("path", r.URL.Path))
		writeJSON(w, status, adminReply{Error: "licensetest admin: " + msg})
	}
	if !a.hostAllowed(r) {
		refused("host", http.StatusForbidden, "host not allowed (use localhost, a loopback address or the listening address)")
		return
	}
	fromQuery, ok := a.authorised(r)
	if !ok {
		h.Set("WWW-Authenticate", `Bearer realm="licensetest admin"`)
		refused("token", http.StatusUnauthorized, "token required: send \"Authorization: Bearer TOKEN\", or open the console URL printed at start")
		return
	}
	if a.cop.Check(r) != nil {
		refused("origin", http.StatusForbidden, "cross-origin request refused")
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == Path && r.URL.Query().Has("token") {
		// The console URL: keep the token in a cookie, for the page's own
		// requests (EventSource cannot send headers), and take it out of
		// the address bar and the history.
		if fromQuery {
			http.SetCookie(w, &http.Cookie{
				Name: cookieName(r), Value: a.token, Path: Path,
				HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
			})
		}
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	a.in.Logger.Debug("licensetest: admin request", slog.String("method", r.Method), slog.String("path", r.URL.Path))
	a.mux.ServeHTTP(w, r)
}

// cookieName is the console cookie's name. Cookies do not keep ports apart,
// so the port is part of the name: two mock servers on one host keep their
// own tokens.
func cookieName(r *http.Request) string {
	_, port, _ := net.SplitHostPort(r.Host)
	return "licensetest_admin_" + port
}

// authorised reports whether r carries the token, and whether it came in
// the query.
func (a *Handler) authorised(r *http.Request) (fromQuery, ok bool) {
	if v, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && a.tokenIs(strings.TrimSpace(v)) {
		return false, true
	}
	if vs := r.URL.Query()["token"]; len(vs) == 1 && a.tokenIs(vs[0]) {
		return true, true
	}
	if c, err := r.Cookie(cookieName(r)); err == nil && a.tokenIs(c.Value) {
		return false, true
	}
	return false, false
}

// tokenIs compares in constant time, whatever the lengths.
func (a *Handler) tokenIs(v string) bool {
	sum := sha256.Sum256([]byte(v))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

func normaliseHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// hostAllowed checks the Host header against the loopback names, the
// address the request arrived on and AllowedHosts.
func (a *Handler) hostAllowed(r *http.Request) bool {
	host := normaliseHost(r.Host)
	if host == "" {
		return false
	}
	if host == "localhost" || slices.Contains(a.hosts, host) {
		return true
	}
	ip := net.ParseIP(host)
	la, _ := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return ip != nil && (ip.IsLoopback() || la != nil && la.IP.Equal(ip))
}

// adminReply is the body of a command's reply.
type adminReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"ok":false,"error":"licensetest admin: cannot encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// maxAdminBody bounds the body of an admin request (a scenario's text).
const maxAdminBody = 256 << 10

// formParams returns a command's parameters from the query and a form body,
// without the token. A parameter given twice is an error.
func formParams(w http.ResponseWriter, r *http.Request) (params, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("cannot parse the parameters: %v", err)
	}
	p := make(params, len(r.Form))
	var errs []error
	for name, vs := range r.Form {
		if name == "token" {
			continue
		}
		if len(vs) != 1 {
			errs = append(errs, fmt.Errorf("%s: given %d times", name, len(vs)))
			continue
		}
		p[name] = vs[0]
	}
	return p, errors.Join(errs...)
}

func (a *Handler) serveCommand(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("command")
	cmd := commands[name]
	if cmd == nil {
		quoted, _ := json.Marshal(name)
		writeJSON(w, http.StatusNotFound, adminReply{Error: "licensetest admin: unknown command " + string(quoted) + " (accepted: " + strings.Join(commandNames(), ", ") + ")"})
		return
	}
	p, err := formParams(w, r)
	var apply change
	if err == nil {
		apply, err = cmd.prepare(p)
	}
	if err == nil {
		err = apply(a.ctl)
	}
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, licensetest.ErrUnknownLicense) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, adminReply{Error: err.Error()})
		return
	}
	a.in.Logger.Info("licensetest: admin command", slog.String("command", name))
	// The console lists the command, with the licence key and the message
	// left out.
	text := name
	for _, k := range slices.Sorted(maps.Keys(p)) {
		v := p[k]
		if k == "key" || k == "message" {
			v = "…"
		}
		text += " " + k + "=" + v
	}
	a.addAction(text, "admin")
	writeJSON(w, http.StatusOK, adminReply{OK: true})
}

// adminAction is a command the console lists.
type adminAction struct {
	Seq     int       `json:"seq"`
	Time    time.Time `json:"time"`
	Command string    `json:"command"`
	Source  string    `json:"source"`
}

func (a *Handler) addAction(text, source string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	a.actions = append(a.actions, adminAction{Seq: a.seq, Time: a.s.Now(), Command: text, Source: source})
	if len(a.actions) > maxActions {
		a.actions = slices.Delete(a.actions, 0, len(a.actions)-maxActions)
	}
}

func (a *Handler) serveRequests(w http.ResponseWriter, r *http.Request) {
	p, err := formParams(w, r)
	if err == nil {
		err = (&command{name: "requests", accepted: []string{"n"}}).check(p)
	}
	q := &args{p: p}
	n := q.integer("n", 100, 1, 10000)
	if err = cmp.Or(err, q.err()); err != nil {
		writeJSON(w, http.StatusBadRequest, adminReply{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, recentRequests(a.in, n))
}

func (a *Handler) serveConfig(w http.ResponseWriter, r *http.Request) {
	in := ClientConfigOf(a.s)
	in.AdminURL = "http://" + r.Host + Path
	if r.TLS != nil {
		in.AdminURL = "https://" + r.Host + Path
	}
	writeJSON(w, http.StatusOK, in)
}

// serveEvents streams the state as Server-Sent Events: a "state" event at
// once, then whenever something changes (checked four times a second), and
// at least every five seconds.
func (a *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The stream outlives the listener's read and write timeouts: lift the
	// read deadline (a GET has no body) and set a write deadline per event.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last []byte
	var lastSent time.Time
	for {
		st := a.state()
		now := st.Time
		st.Time = time.Time{}
		cmp, _ := json.Marshal(st)
		if !slices.Equal(cmp, last) || time.Since(lastSent) >= 5*time.Second {
			st.Time = now
			full, _ := json.Marshal(st)
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(w, "event: state\ndata: "+string(full)+"\n\n"); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			last, lastSent = cmp, time.Now()
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-a.done:
			return
		}
	}
}

// adminState is what GET /admin/state and the console's live stream report.
type adminState struct {
	Time      time.Time         `json:"time"`
	Down      bool              `json:"down"`
	DownMode  string            `json:"down_mode"`
	Requests  map[string]int    `json:"requests"`
	Licenses  []LicenseInfo     `json:"licenses"`
	Instances []adminInstance   `json:"instances"`
	Sessions  []adminSession    `json:"sessions"`
	Faults    hook.Faults       `json:"faults"`
	Log       []RequestInfo     `json:"log"`
	Actions   []adminAction     `json:"actions"`
	Scenario  *ScenarioProgress `json:"scenario"`
}

type adminInstance struct {
	GUID              string    `json:"guid"`
	Product           string    `json:"product"`
	HostName          string    `json:"host_name"`
	Name              string    `json:"name"`
	FirstRegisteredAt time.Time `json:"first_registered_at"`
}

type adminSession struct {
	InstanceGUID string    `json:"instance_guid"`
	Product      string    `json:"product"`
	Started      time.Time `json:"started"`
	Expires      time.Time `json:"expires"`
	Duration     string    `json:"duration"`
	Extensions   int       `json:"extensions"`
}

func (a *Handler) state() adminState {
	s := a.s
	f := a.in.Faults()
	st := adminState{
		Time: s.Now(), Down: f.Down, DownMode: f.Mode, Faults: f,
		Requests:  map[string]int{"all": s.Count("")},
		Licenses:  licenseInfos(s),
		Instances: []adminInstance{},
		Sessions:  []adminSession{},
		Log:       recentRequests(a.in, 100),
		Scenario:  LatestScenario(s),
	}
	for _, ep := range []string{licensetest.Register, licensetest.Begin, licensetest.Extend, licensetest.End} {
		st.Requests[ep] = s.Count(ep)
	}
	for _, i := range s.Instances() {
		st.Instances = append(st.Instances, adminInstance{GUID: i.GUID, Product: i.ProductGUID,
			HostName: i.Machine.HostName, Name: i.Name, FirstRegisteredAt: i.FirstRegisteredAt})
	}
	for _, se := range s.Sessions() {
		st.Sessions = append(st.Sessions, adminSession{InstanceGUID: se.InstanceGUID, Product: se.ProductGUID,
			Started: se.Started, Expires: se.Expires, Duration: se.Duration.String(), Extensions: se.Extensions})
	}
	a.mu.Lock()
	st.Actions = append([]adminAction{}, a.actions...)
	a.mu.Unlock()
	return st
}

// RequestInfo is a request in the admin API's request log: what happened,
// never a key, a token or a payload.
type RequestInfo struct {
	Seq       int       `json:"seq"`
	Time      time.Time `json:"time"`
	Endpoint  string    `json:"endpoint"`
	Status    int       `json:"status"`
	LatencyMS float64   `json:"latency_ms"`
	Fault     string    `json:"fault,omitempty"`
	Down      bool      `json:"down,omitempty"`
	Sealed    bool      `json:"sealed"`
}

// recentRequests returns the last n requests of the log, newest last.
func recentRequests(in hook.Internals, n int) []RequestInfo {
	v, first := in.Requests(n)
	reqs := v.([]licensetest.Request)
	out := make([]RequestInfo, 0, len(reqs))
	for i, r := range reqs {
		fault := ""
		if r.Fault != 0 {
			fault = r.Fault.String()
		}
		out = append(out, RequestInfo{Seq: first + i, Time: r.Time, Endpoint: r.Endpoint, Status: r.Status,
			LatencyMS: float64(r.Latency.Microseconds()) / 1000, Fault: fault, Down: r.Down, Sealed: r.Sealed})
	}
	return out
}

// LicenseInfo is a licence as the admin API and ClientConfig report it.
type LicenseInfo struct {
	ProductGUID string `json:"product"`
	Key         string `json:"key"`
	Seats       int    `json:"seats"`
	SeatsInUse  int    `json:"seats_in_use"`
	Session     string `json:"session"`
	Grace       string `json:"grace"`
	Max         string `json:"max,omitempty"`
	State       string `json:"state"`
	Features    string `json:"features"`
}

func licenseInfos(s *licensetest.Server) []LicenseInfo {
	out := []LicenseInfo{}
	for _, l := range s.Licenses() {
		li := LicenseInfo{
			ProductGUID: l.ProductGUID, Key: l.Key, Seats: l.Seats,
			SeatsInUse: s.SeatsInUse(l.ProductGUID, l.Key),
			Session:    l.SessionDuration.String(), Grace: l.GracePeriod.String(),
			State: l.State.String(), Features: l.Features,
		}
		if l.MaxDuration > 0 {
			li.Max = l.MaxDuration.String()
		}
		out = append(out, li)
	}
	return out
}

// ClientConfig is what a client needs to talk to a Server, secrets
// included, as GET /admin/config and the mockserver banner report it.
type ClientConfig struct {
	URL            string        `json:"url"`
	AdminURL       string        `json:"admin_url,omitempty"`
	APIKey         string        `json:"api_key"`
	KeyID          string        `json:"key_id"`
	KEM            string        `json:"kem"`
	PublicKey      string        `json:"public_key"`
	PublicKeyPEM   string        `json:"public_key_pem"`
	SharedSecret   string        `json:"shared_secret"`
	SealedReplies  string        `json:"sealed_replies"`
	TLSCertificate string        `json:"tls_certificate_pem,omitempty"`
	Licenses       []LicenseInfo `json:"licenses"`
}

// ClientConfigOf returns what a client needs to talk to s, secrets
// included, in text form. AdminURL is left empty.
func ClientConfigOf(s *licensetest.Server) ClientConfig {
	info := s.Info()
	in := ClientConfig{
		URL:           s.URL,
		APIKey:        info.APIKey,
		KeyID:         info.PublicKey.KeyID(),
		KEM:           info.PublicKey.KEM().String(),
		PublicKey:     info.PublicKey.EncodeBase64(),
		PublicKeyPEM:  string(info.PublicKey.EncodePEM()),
		SharedSecret:  base64.StdEncoding.EncodeToString(info.Secret),
		SealedReplies: "on request",
		Licenses:      licenseInfos(s),
	}
	if info.SealedReplies {
		in.SealedReplies = "required"
	}
	if cert := info.Certificate; cert != nil {
		in.TLSCertificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	return in
}
