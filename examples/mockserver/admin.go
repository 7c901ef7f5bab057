package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// admin is the admin API. It owns the timer of a timed outage; Close stops
// it.
type admin struct {
	s    *licensetest.Server
	info info
	mux  *http.ServeMux

	mu     sync.Mutex // guards the fields below
	down   bool
	mode   licensetest.DownMode
	timer  *time.Timer
	closed bool
}

func newAdmin(s *licensetest.Server, in info) *admin {
	a := &admin{s: s, info: in, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /admin/stats", a.stats)
	a.mux.HandleFunc("GET /admin/config", a.config)
	post := func(path string, f func(r *http.Request) error) {
		a.mux.HandleFunc("POST /admin/"+path, func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				reply(w, http.StatusBadRequest, err)
				return
			}
			reply(w, http.StatusOK, f(r))
		})
	}
	post("down", a.setDown)
	post("revoke", a.licenseState(licensetest.Revoked))
	post("expire", a.licenseState(licensetest.Expired))
	post("reinstate", a.licenseState(licensetest.Active))
	post("license", a.addLicense)
	post("control", a.control)
	post("fail", a.fail)
	post("fault", a.fault)
	post("latency", a.perEndpoint(s.SetLatency))
	post("retry_after", a.perEndpoint(s.SetRetryAfter))
	post("content_type", func(r *http.Request) error {
		ep, err := endpoint(r.Form.Get("endpoint"))
		if err != nil {
			return err
		}
		s.SetContentType(ep, r.Form.Get("ct"))
		return nil
	})
	post("skew", func(r *http.Request) error {
		d, err := duration(r, "d", true)
		if err == nil {
			s.SetClockSkew(d)
		}
		return err
	})
	post("clear", func(*http.Request) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.stopTimer()
		a.down = false
		s.ClearFaults()
		return nil
	})
	return a
}

func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Close stops a pending timed outage. It is idempotent.
func (a *admin) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.stopTimer()
}

// stopTimer cancels a timed outage. The caller holds mu.
func (a *admin) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}

// errBadRequest marks errors caused by the admin request.
var errBadRequest = errors.New("bad request")

func badParam(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

func reply(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"ok": err == nil}
	if err != nil {
		if status == http.StatusOK {
			status = http.StatusBadRequest
			if errors.Is(err, licensetest.ErrUnknownLicense) {
				status = http.StatusNotFound
			}
		}
		body["error"] = err.Error()
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// endpoint maps an admin endpoint name to a v2 endpoint ("" = all).
func endpoint(name string) (string, error) {
	switch strings.ToLower(name) {
	case "", "all":
		return "", nil
	case "register", licensetest.Register:
		return licensetest.Register, nil
	case "begin", licensetest.Begin:
		return licensetest.Begin, nil
	case "extend", licensetest.Extend:
		return licensetest.Extend, nil
	case "end", licensetest.End:
		return licensetest.End, nil
	}
	return "", badParam("unknown endpoint %q (want register, begin, extend, end or all)", name)
}

func duration(r *http.Request, name string, required bool) (time.Duration, error) {
	v := r.Form.Get(name)
	if v == "" {
		if required {
			return 0, badParam("%s is required", name)
		}
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, badParam("%s: %v", name, err)
	}
	return d, nil
}

func integer(r *http.Request, name string, def int) (int, error) {
	v := r.Form.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badParam("%s: not an integer", name)
	}
	return n, nil
}

func boolean(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "on", "yes", "":
		return true, nil
	case "0", "false", "off", "no":
		return false, nil
	}
	return false, badParam("on: want 1 or 0")
}

func (a *admin) setDown(r *http.Request) error {
	on, err := boolean(r.Form.Get("on"))
	if err != nil {
		return err
	}
	mode := licensetest.DownRefuse
	switch r.Form.Get("mode") {
	case "", "refuse":
	case "reset":
		mode = licensetest.DownReset
	default:
		return badParam("mode: want refuse or reset")
	}
	d, err := duration(r, "for", false)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("shutting down")
	}
	a.stopTimer()
	a.down, a.mode = on, mode
	a.s.SetDownMode(mode)
	a.s.SetDown(on)
	if on && d > 0 {
		var t *time.Timer
		t = time.AfterFunc(d, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.timer != t || a.closed {
				return // cancelled or replaced
			}
			a.timer = nil
			a.down = false
			a.s.SetDown(false)
		})
		a.timer = t
	}
	return nil
}

func (a *admin) licenseState(st licensetest.LicenseState) func(*http.Request) error {
	return func(r *http.Request) error {
		return a.s.SetLicenseState(r.Form.Get("product"), r.Form.Get("key"), st)
	}
}

func (a *admin) addLicense(r *http.Request) error {
	l := licensetest.License{ProductGUID: r.Form.Get("product"), Key: r.Form.Get("key"), Features: r.Form.Get("features")}
	var errs [5]error
	l.Seats, errs[0] = integer(r, "seats", 0)
	l.SessionDuration, errs[1] = duration(r, "session", false)
	l.GracePeriod, errs[2] = duration(r, "grace", false)
	l.MaxDuration, errs[3] = duration(r, "max", false)
	if st := r.Form.Get("state"); st != "" {
		l.State, errs[4] = parseState(st)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	if err := a.s.AddLicense(l); err != nil {
		return badParam("%v", err)
	}
	return nil
}

func (a *admin) control(r *http.Request) error {
	session, err := duration(r, "session", true)
	if err != nil {
		return err
	}
	grace, err := duration(r, "grace", false)
	if err != nil {
		return err
	}
	return a.s.SetControlOptions(r.Form.Get("product"), r.Form.Get("key"), session, grace)
}

func (a *admin) fail(r *http.Request) error {
	ep, err := endpoint(r.Form.Get("endpoint"))
	if err != nil {
		return err
	}
	n, err := integer(r, "n", 1)
	if err != nil {
		return err
	}
	status, err := integer(r, "status", http.StatusServiceUnavailable)
	if err != nil {
		return err
	}
	if status < 100 || status > 599 {
		return badParam("status: want 100..599")
	}
	ra, err := duration(r, "retry_after", false)
	if err != nil {
		return err
	}
	a.s.Inject(licensetest.Fault{Endpoint: ep, Kind: licensetest.FaultFail, Count: n, Status: status,
		Message: r.Form.Get("message"), RetryAfter: ra})
	return nil
}

func (a *admin) fault(r *http.Request) error {
	ep, err := endpoint(r.Form.Get("endpoint"))
	if err != nil {
		return err
	}
	kind, ok := licensetest.ParseFaultKind(r.Form.Get("kind"))
	if !ok {
		return badParam("kind: want fail, truncate, garbage, drop, cut_body, replay or bad_seal")
	}
	n, err := integer(r, "n", 1)
	if err != nil {
		return err
	}
	status, err := integer(r, "status", 0)
	if err != nil {
		return err
	}
	if status != 0 && (status < 100 || status > 599) {
		return badParam("status: want 100..599")
	}
	a.s.Inject(licensetest.Fault{Endpoint: ep, Kind: kind, Count: n, Status: status, Message: r.Form.Get("message")})
	return nil
}

func (a *admin) perEndpoint(set func(string, time.Duration)) func(*http.Request) error {
	return func(r *http.Request) error {
		ep, err := endpoint(r.Form.Get("endpoint"))
		if err != nil {
			return err
		}
		d, err := duration(r, "d", true)
		if err != nil {
			return err
		}
		if d < 0 {
			return badParam("d: negative")
		}
		set(ep, d)
		return nil
	}
}

// licenseStatus is a licence in the admin API's replies.
type licenseStatus struct {
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

func licenseStatuses(s *licensetest.Server) []licenseStatus {
	var out []licenseStatus
	for _, l := range s.Licenses() {
		ls := licenseStatus{
			ProductGUID: l.ProductGUID, Key: l.Key, Seats: l.Seats,
			SeatsInUse: s.SeatsInUse(l.ProductGUID, l.Key),
			Session:    l.SessionDuration.String(), Grace: l.GracePeriod.String(),
			State: l.State.String(), Features: l.Features,
		}
		if l.MaxDuration > 0 {
			ls.Max = l.MaxDuration.String()
		}
		out = append(out, ls)
	}
	return out
}

// sessionStatus is a live session in /admin/stats. The token is left out.
type sessionStatus struct {
	InstanceGUID string    `json:"instance_guid"`
	ProductGUID  string    `json:"product"`
	Started      time.Time `json:"started"`
	Expires      time.Time `json:"expires"`
	Extensions   int       `json:"extensions"`
}

type stats struct {
	Down      bool            `json:"down"`
	DownMode  string          `json:"down_mode"`
	Requests  map[string]int  `json:"requests"`
	Instances int             `json:"instances"`
	Sessions  []sessionStatus `json:"sessions"`
	Licenses  []licenseStatus `json:"licenses"`
}

func (a *admin) stats(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	st := stats{Down: a.down, DownMode: a.mode.String(), Requests: map[string]int{"all": a.s.Count("")}}
	a.mu.Unlock()
	for _, ep := range []string{licensetest.Register, licensetest.Begin, licensetest.Extend, licensetest.End} {
		st.Requests[ep] = a.s.Count(ep)
	}
	st.Instances = len(a.s.Instances())
	st.Sessions = []sessionStatus{}
	for _, s := range a.s.Sessions() {
		st.Sessions = append(st.Sessions, sessionStatus{
			InstanceGUID: s.InstanceGUID, ProductGUID: s.ProductGUID,
			Started: s.Started, Expires: s.Expires, Extensions: s.Extensions,
		})
	}
	st.Licenses = licenseStatuses(a.s)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

func (a *admin) config(w http.ResponseWriter, _ *http.Request) {
	in := a.info
	in.Licenses = licenseStatuses(a.s)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(in)
}
