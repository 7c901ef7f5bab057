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

// command is one thing a tester can do to the server.
type command struct {
	name string
	// accepted lists the parameter names, in the order they are documented.
	accepted []string
	// bare is the parameter a scenario's bare word sets ("down refuse").
	bare string
	// parse checks the parameters and returns the change to make.
	parse func(p params) (func(c *controller) error, error)
}

// commands are every command, by name. It is never changed.
var commands = buildCommands()

func buildCommands() map[string]*command {
	m := make(map[string]*command)
	for _, c := range []*command{
		{name: "down", accepted: []string{"on", "mode", "for"}, bare: "mode", parse: parseDown},
		{name: "up", parse: func(params) (func(*controller) error, error) { return up, nil }},
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
		{name: "clear", parse: func(params) (func(*controller) error, error) { return (*controller).clear, nil }},
	} {
		m[c.name] = c
	}
	return m
}

// commandNames returns the command names, sorted.
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
func (cmd *command) prepare(p params) (func(*controller) error, error) {
	if err := cmd.check(p); err != nil {
		return nil, err
	}
	apply, err := cmd.parse(p)
	if err != nil {
		return nil, prefixErr(cmd.name, err)
	}
	return apply, nil
}

// prefixErr puts the command's name before each message of err.
func prefixErr(name string, err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []error
	for _, e := range errs {
		out = append(out, fmt.Errorf("%s: %w", name, e))
	}
	return errors.Join(out...)
}

// option is an accepted value of a parameter and what it stands for.
type option[T any] struct {
	name string
	v    T
}

// names lists the options' names, for messages.
func names[T any](opts []option[T]) string {
	var out []string
	for _, o := range opts {
		out = append(out, o.name)
	}
	return strings.Join(out, ", ")
}

// pick returns what p[name] stands for among opts or, when p has no name,
// what def stands for (the zero T when no option is named def).
func pick[T any](p params, name, def string, opts []option[T]) (T, error) {
	v, given := p[name]
	if !given {
		v = def
	}
	for _, o := range opts {
		if o.name == v {
			return o.v, nil
		}
	}
	var zero T
	if !given {
		return zero, nil
	}
	return zero, fmt.Errorf("%s: unknown value %q (accepted: %s)", name, v, names(opts))
}

// duration parses p[name]. A required parameter must be present.
func (p params) duration(name string, required, negativeOK bool) (time.Duration, error) {
	v, ok := p[name]
	if !ok {
		if required {
			return 0, fmt.Errorf("%s is required (a duration such as 30s, 5m or 1h30m)", name)
		}
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration (such as 30s, 5m or 1h30m)", name, v)
	}
	if d < 0 && !negativeOK {
		return 0, fmt.Errorf("%s: %s is negative", name, v)
	}
	return d, nil
}

// integer parses p[name] within lo..hi (def when absent).
func (p params) integer(name string, def, lo, hi int) (int, error) {
	v, ok := p[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: %q is not an integer in %d..%d", name, v, lo, hi)
	}
	return n, nil
}

// endpoints are the accepted values of an endpoint parameter and the v2
// endpoint each names ("" = all four).
var endpoints = []option[string]{{"all", ""}, {"register", licensetest.Register}, {"begin", licensetest.Begin},
	{"extend", licensetest.Extend}, {"end", licensetest.End}, {licensetest.Register, licensetest.Register},
	{licensetest.Begin, licensetest.Begin}, {licensetest.Extend, licensetest.Extend}, {licensetest.End, licensetest.End}}

func (p params) endpoint() (string, error) { return pick(p, "endpoint", "all", endpoints) }

// licenseID returns the product and key a licence command names.
func (p params) licenseID() (string, string, error) {
	var errs []error
	for _, name := range []string{"product", "key"} {
		if p[name] == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	return p["product"], p["key"], errors.Join(errs...)
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

func parseDown(p params) (func(*controller) error, error) {
	down, err1 := pick(p, "on", "1", onOff)
	mode, err2 := pick(p, "mode", "refuse", downModes)
	d, err3 := p.duration("for", false, false)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	return func(c *controller) error { c.setDown(down, mode, d); return nil }, nil
}

func parseLicenseState(st licensetest.LicenseState) func(params) (func(*controller) error, error) {
	return func(p params) (func(*controller) error, error) {
		product, key, err := p.licenseID()
		if err != nil {
			return nil, err
		}
		return func(c *controller) error { return c.s.SetLicenseState(product, key, st) }, nil
	}
}

func parseAddLicense(p params) (func(*controller) error, error) {
	product, key, err0 := p.licenseID()
	l := licensetest.License{ProductGUID: product, Key: key, Features: p["features"]}
	var errs [6]error
	errs[0] = err0
	l.Seats, errs[1] = p.integer("seats", 0, 0, 1<<30)
	l.SessionDuration, errs[2] = p.duration("session", false, false)
	l.GracePeriod, errs[3] = p.duration("grace", false, false)
	l.MaxDuration, errs[4] = p.duration("max", false, false)
	l.State, errs[5] = pick(p, "state", "active", licenseStates)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	if err := hook.CheckDurations(product, key, l.SessionDuration, l.GracePeriod, l.MaxDuration); err != nil {
		return nil, fmt.Errorf("%v", err) // one error, so prefixErr prefixes it once
	}
	return func(c *controller) error { return c.s.AddLicense(l) }, nil
}

func parseControl(p params) (func(*controller) error, error) {
	product, key, err0 := p.licenseID()
	session, err1 := p.duration("session", true, false)
	grace, err2 := p.duration("grace", false, false)
	if err := errors.Join(err0, err1, err2); err != nil {
		return nil, err
	}
	if err := hook.CheckDurations(product, key, session, grace, 0); err != nil {
		return nil, fmt.Errorf("%v", err)
	}
	return func(c *controller) error { return c.s.SetControlOptions(product, key, session, grace) }, nil
}

func parseFail(p params) (func(*controller) error, error) {
	ep, err1 := p.endpoint()
	n, err2 := p.integer("n", 1, -1, 1<<30)
	status, err3 := p.integer("status", http.StatusServiceUnavailable, 100, 599)
	ra, err4 := p.duration("retry_after", false, false)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("n: 0 fails nothing (want a count, or -1 for every request)")
	}
	f := licensetest.Fault{Endpoint: ep, Kind: licensetest.FaultFail, Count: n, Status: status, Message: p["message"], RetryAfter: ra}
	return func(c *controller) error { c.s.Inject(f); return nil }, nil
}

func parseFault(p params) (func(*controller) error, error) {
	ep, err1 := p.endpoint()
	kind, err2 := pick(p, "kind", "", faultKinds)
	if err2 == nil && kind == 0 {
		err2 = fmt.Errorf("kind is required (accepted: %s)", names(faultKinds))
	}
	n, err3 := p.integer("n", 1, -1, 1<<30)
	status, err4 := p.integer("status", 0, 0, 599)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("n: 0 injects nothing (want a count, or -1 for every request)")
	}
	if status != 0 && status < 100 {
		return nil, fmt.Errorf("status: %d is not an HTTP status (100..599)", status)
	}
	f := licensetest.Fault{Endpoint: ep, Kind: kind, Count: n, Status: status, Message: p["message"]}
	return func(c *controller) error { c.s.Inject(f); return nil }, nil
}

func parsePerEndpoint(set func(*licensetest.Server, string, time.Duration)) func(params) (func(*controller) error, error) {
	return func(p params) (func(*controller) error, error) {
		ep, err1 := p.endpoint()
		d, err2 := p.duration("d", true, false)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		return func(c *controller) error { set(c.s, ep, d); return nil }, nil
	}
}

func parseContentType(p params) (func(*controller) error, error) {
	ep, err := p.endpoint()
	if err != nil {
		return nil, err
	}
	ct := p["ct"]
	return func(c *controller) error { c.s.SetContentType(ep, ct); return nil }, nil
}

func parseSkew(p params) (func(*controller) error, error) {
	d, err := p.duration("d", true, true)
	if err != nil {
		return nil, err
	}
	return func(c *controller) error { c.s.SetClockSkew(d); return nil }, nil
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

// clear removes every fault and cancels a timed outage.
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
