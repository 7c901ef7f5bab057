package admin

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/hook"
)

// This file holds the commands that change a running server. The admin API
// (POST /admin/NAME?param=value) and scenarios ("at 5m NAME param=value")
// share them, so both accept exactly the same names and values.

// params are a command's name=value arguments.
type params map[string]string

// change is what a parsed command does to the server.
type change func(*controller) error

// command is one thing a tester can do to the server.
type command struct {
	name string
	// accepted lists the parameter names, in the order they are documented.
	accepted []string
	// bare is the parameter a scenario's bare word sets ("down refuse").
	bare  string
	parse func(a *args) (change, error)
}

// commands are every command, by name. It is never changed.
var commands = buildCommands()

func buildCommands() map[string]*command {
	m := make(map[string]*command)
	for _, c := range []*command{
		{name: "down", accepted: []string{"on", "mode", "for"}, bare: "mode", parse: parseDown},
		{name: "up", parse: func(*args) (change, error) { return up, nil }},
		{name: "revoke", accepted: []string{"product", "key"}, parse: parseLicenseState(licensetest.Revoked)},
		{name: "expire", accepted: []string{"product", "key"}, parse: parseLicenseState(licensetest.Expired)},
		{name: "reinstate", accepted: []string{"product", "key"}, parse: parseLicenseState(licensetest.Active)},
		{name: "license", accepted: []string{"product", "key", "seats", "session", "grace", "max", "state", "features"}, parse: parseAddLicense},
		{name: "control", accepted: []string{"product", "key", "session", "grace"}, parse: parseControl},
		{name: "fail", accepted: []string{"endpoint", "n", "status", "retry_after", "message"}, parse: parseFail},
		{name: "fault", accepted: []string{"endpoint", "kind", "n", "status", "message"}, bare: "kind", parse: parseFault},
		{name: "latency", accepted: []string{"endpoint", "d"}, bare: "d", parse: parsePerEndpoint((*licensetest.Server).SetLatency)},
		{name: "retry_after", accepted: []string{"endpoint", "d"}, bare: "d", parse: parsePerEndpoint((*licensetest.Server).SetRetryAfter)},
		{name: "content_type", accepted: []string{"endpoint", "ct"}, bare: "ct", parse: parseContentType},
		{name: "skew", accepted: []string{"d"}, bare: "d", parse: parseSkew},
		{name: "clear", parse: func(*args) (change, error) { return (*controller).clear, nil }},
	} {
		m[c.name] = c
	}
	return m
}

func commandNames() []string { return slices.Sorted(maps.Keys(commands)) }

// check rejects parameters the command does not accept.
func (cmd *command) check(p params) error {
	accepted := "it takes none"
	if len(cmd.accepted) > 0 {
		accepted = "accepted: " + strings.Join(cmd.accepted, ", ")
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(p)) {
		if !slices.Contains(cmd.accepted, name) {
			errs = append(errs, fmt.Errorf("%s: unknown parameter %q (%s)", cmd.name, name, accepted))
		}
	}
	return errors.Join(errs...)
}

// prepare checks p and parses it into the change to make.
func (cmd *command) prepare(p params) (change, error) {
	if err := cmd.check(p); err != nil {
		return nil, err
	}
	return cmd.parse(&args{cmd: cmd.name, p: p})
}

// option is an accepted value of a parameter and what it stands for.
type option[T any] struct {
	name string
	v    T
}

func names[T any](opts []option[T]) string {
	var out []string
	for _, o := range opts {
		out = append(out, o.name)
	}
	return strings.Join(out, ", ")
}

// args reads a command's parameters, keeping every problem met, each
// after the command's name (if any).
type args struct {
	cmd  string
	p    params
	errs []error
}

func (a *args) fail(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if a.cmd != "" {
		msg = a.cmd + ": " + msg
	}
	a.errs = append(a.errs, errors.New(msg))
}

func (a *args) err() error { return errors.Join(a.errs...) }

// pick returns what a.p[name] stands for among opts or, when a.p has no
// name, what def stands for (the zero T when no option is named def).
func pick[T any](a *args, name, def string, opts []option[T]) (zero T) {
	v, given := a.p[name]
	if !given {
		v = def
	}
	for _, o := range opts {
		if o.name == v {
			return o.v
		}
	}
	if given {
		a.fail("%s: unknown value %q (accepted: %s)", name, v, names(opts))
	}
	return zero
}

// duration parses a.p[name]. A required parameter must be present.
func (a *args) duration(name string, required, negativeOK bool) time.Duration {
	v, ok := a.p[name]
	if !ok {
		if required {
			a.fail("%s is required (a duration such as 30s, 5m or 1h30m)", name)
		}
		return 0
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		a.fail("%s: %q is not a duration (such as 30s, 5m or 1h30m)", name, v)
	case d < 0 && !negativeOK:
		a.fail("%s: %s is negative", name, v)
	default:
		return d
	}
	return 0
}

// integer parses a.p[name] within lo..hi (def when absent).
func (a *args) integer(name string, def, lo, hi int) int {
	v, ok := a.p[name]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		a.fail("%s: %q is not an integer in %d..%d", name, v, lo, hi)
		return 0
	}
	return n
}

// endpoints are the accepted values of an endpoint parameter and the v2
// endpoint each names ("" = all four).
var endpoints = []option[string]{{"all", ""}, {"register", licensetest.Register}, {"begin", licensetest.Begin},
	{"extend", licensetest.Extend}, {"end", licensetest.End}, {licensetest.Register, licensetest.Register},
	{licensetest.Begin, licensetest.Begin}, {licensetest.Extend, licensetest.Extend}, {licensetest.End, licensetest.End}}

func (a *args) endpoint() string { return pick(a, "endpoint", "all", endpoints) }

// licenseID returns the product and key a licence command names.
func (a *args) licenseID() (string, string) {
	for _, name := range []string{"product", "key"} {
		if a.p[name] == "" {
			a.fail("%s is required", name)
		}
	}
	return a.p["product"], a.p["key"]
}

// checkDurations records, once the parameters parse, what AddLicense would
// say of these durations, as one error so that it is prefixed once.
func (a *args) checkDurations(product, key string, session, grace, maxDur time.Duration) {
	if a.errs == nil {
		if err := hook.CheckDurations(product, key, session, grace, maxDur); err != nil {
			a.fail("%v", err)
		}
	}
}

var (
	onOff         = []option[bool]{{"1", true}, {"0", false}, {"true", true}, {"false", false}}
	downModes     = enumOptions(licensetest.DownRefuse, licensetest.DownUnavailable)
	licenseStates = enumOptions(licensetest.Active, licensetest.Expired)
	faultKinds    = enumOptions(licensetest.FaultFail, licensetest.FaultBadSeal)
)

// enumOptions are the values lo..hi, each named by its String.
func enumOptions[T interface {
	~int
	String() string
}](lo, hi T) (opts []option[T]) {
	for v := lo; v <= hi; v++ {
		opts = append(opts, option[T]{v.String(), v})
	}
	return opts
}

// The parsers below return their change with a.err(); the change is used
// only when that is nil.

func parseDown(a *args) (change, error) {
	down, mode, d := pick(a, "on", "1", onOff), pick(a, "mode", "refuse", downModes), a.duration("for", false, false)
	return func(c *controller) error { c.setDown(down, mode, d); return nil }, a.err()
}

func parseLicenseState(st licensetest.LicenseState) func(*args) (change, error) {
	return func(a *args) (change, error) {
		product, key := a.licenseID()
		return func(c *controller) error { return c.s.SetLicenseState(product, key, st) }, a.err()
	}
}

func parseAddLicense(a *args) (change, error) {
	product, key := a.licenseID()
	l := licensetest.License{ProductGUID: product, Key: key, Features: a.p["features"],
		Seats: a.integer("seats", 0, 0, 1<<30), SessionDuration: a.duration("session", false, false),
		GracePeriod: a.duration("grace", false, false), MaxDuration: a.duration("max", false, false),
		State: pick(a, "state", "active", licenseStates)}
	a.checkDurations(product, key, l.SessionDuration, l.GracePeriod, l.MaxDuration)
	return func(c *controller) error { return c.s.AddLicense(l) }, a.err()
}

func parseControl(a *args) (change, error) {
	product, key := a.licenseID()
	session, grace := a.duration("session", true, false), a.duration("grace", false, false)
	a.checkDurations(product, key, session, grace, 0)
	return func(c *controller) error { return c.s.SetControlOptions(product, key, session, grace) }, a.err()
}

func parseFail(a *args) (change, error) {
	f := licensetest.Fault{Endpoint: a.endpoint(), Kind: licensetest.FaultFail, Count: a.integer("n", 1, -1, 1<<30),
		Status:     a.integer("status", http.StatusServiceUnavailable, 100, 599),
		RetryAfter: a.duration("retry_after", false, false), Message: a.p["message"]}
	if a.errs == nil && f.Count == 0 {
		a.fail("n: 0 fails nothing (want a count, or -1 for every request)")
	}
	return func(c *controller) error { c.s.Inject(f); return nil }, a.err()
}

func parseFault(a *args) (change, error) {
	ep, kind := a.endpoint(), pick(a, "kind", "", faultKinds)
	if _, given := a.p["kind"]; !given {
		a.fail("kind is required (accepted: %s)", names(faultKinds))
	}
	f := licensetest.Fault{Endpoint: ep, Kind: kind, Count: a.integer("n", 1, -1, 1<<30),
		Status: a.integer("status", 0, 0, 599), Message: a.p["message"]}
	switch {
	case a.errs != nil:
	case f.Count == 0:
		a.fail("n: 0 injects nothing (want a count, or -1 for every request)")
	case f.Status != 0 && f.Status < 100:
		a.fail("status: %d is not an HTTP status (100..599)", f.Status)
	}
	return func(c *controller) error { c.s.Inject(f); return nil }, a.err()
}

func parsePerEndpoint(set func(*licensetest.Server, string, time.Duration)) func(*args) (change, error) {
	return func(a *args) (change, error) {
		ep, d := a.endpoint(), a.duration("d", true, false)
		return func(c *controller) error { set(c.s, ep, d); return nil }, a.err()
	}
}

func parseContentType(a *args) (change, error) {
	ep, ct := a.endpoint(), a.p["ct"]
	return func(c *controller) error { c.s.SetContentType(ep, ct); return nil }, a.err()
}

func parseSkew(a *args) (change, error) {
	d := a.duration("d", true, true)
	return func(c *controller) error { c.s.SetClockSkew(d); return nil }, a.err()
}

// controller applies commands to a server. It owns the timer of a timed
// outage ("down for=30s"); stop cancels it.
type controller struct {
	s *licensetest.Server

	mu      sync.Mutex // guards the fields below
	timer   *time.Timer
	stopped bool
}

// up brings the server up and cancels a timed outage.
func up(c *controller) error {
	c.setDown(false, 0, 0)
	return nil
}

// setDown takes the server down in mode, for d if d > 0, or brings it up.
func (c *controller) setDown(down bool, mode licensetest.DownMode, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopTimerLocked()
	if down {
		c.s.SetDownMode(mode)
	}
	c.s.SetDown(down)
	if !down || d <= 0 || c.stopped {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.timer != t || c.stopped {
			return // cancelled or replaced
		}
		c.timer = nil
		c.s.SetDown(false)
	})
	c.timer = t
}

func (c *controller) clear() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopTimerLocked()
	c.s.ClearFaults()
	return nil
}

// stop cancels a pending timed outage for good. It is idempotent.
func (c *controller) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.stopTimerLocked()
}

func (c *controller) stopTimerLocked() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}
