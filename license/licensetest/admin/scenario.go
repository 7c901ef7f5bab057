package admin

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/hook"
)

// A scenario is a script of timed steps that a Server plays against its own
// clock, such as:
//
//	# Outage within grace: the client rides it out in Grace.
//	at 0s    license product=app key=K-1 session=2m grace=10m seats=1
//	at 5m    down refuse
//	at 5m30s up
//	at 2h    revoke product=app key=K-1
//
// Each line is "at DURATION COMMAND [name=value ...]", where DURATION (Go
// syntax: 90s, 5m30s, 2h) is counted from the start of the run and never
// goes down from one line to the next. Blank lines and lines starting with #
// are ignored; a # that starts a word begins a comment. A value with spaces
// is written in double quotes (features="pro export"). The commands are
// those of the admin API, with the same parameters and values:
//
//	license product= key= [seats=] [session=] [grace=] [max=] [state=] [features=]
//	revoke|expire|reinstate product= key=
//	control product= key= session= [grace=]
//	down [refuse|reset|503] [for=D]   (for=D adds an "up" at D later)
//	up
//	fail [endpoint=] [n=] [status=] [retry_after=] [message=]
//	fault KIND [endpoint=] [n=] [status=] [message=]
//	latency D [endpoint=]    retry_after D [endpoint=]    content_type CT [endpoint=]
//	skew D
//	clear
//
// A bare word fills the command's main parameter (down's mode, fault's
// kind, latency's d). endpoint is register, begin, extend, end (or the full
// v2 names) or all.
type Scenario struct {
	// Name names the scenario in errors, logs and the console.
	Name string
	// Steps are the steps in the order they run.
	Steps []Step
}

// Step is one step of a Scenario.
type Step struct {
	// Line is the line of the scenario text the step comes from.
	Line int
	// At is when the step runs, from the start of the run.
	At time.Duration
	// Command is the command's name, such as "down".
	Command string
	// Text is the step's words after "at DURATION", joined by single
	// spaces, quotes removed; the "up" a down for=D adds reads
	// "up (end of down for=D)".
	Text string

	apply change
}

// ScenarioError is a problem with one line of a scenario: a parse error
// from ParseScenario, or a step that failed when it ran.
type ScenarioError struct {
	Name string
	Line int
	Err  error
}

func (e *ScenarioError) Error() string {
	msg := strings.ReplaceAll(strings.TrimPrefix(e.Err.Error(), "licensetest: "), "\n", "; ")
	return fmt.Sprintf("licensetest: scenario %s line %d: %s", e.Name, e.Line, msg)
}

func (e *ScenarioError) Unwrap() error { return e.Err }

const maxScenarioLines = 10000

// ParseScenario reads a scenario (see Scenario for the format). It reports
// the bad lines at once (the first 100), each as a *ScenarioError with its
// line number, joined with errors.Join. name names the scenario (a file name, say).
func ParseScenario(name string, r io.Reader) (*Scenario, error) {
	sc := &Scenario{Name: name}
	var errs []error
	lineErr := func(line int, err error) {
		if len(errs) < 100 {
			errs = append(errs, &ScenarioError{Name: name, Line: line, Err: err})
		}
	}
	var last time.Duration
	var ends []Step
	in := bufio.NewScanner(r)
	in.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for in.Scan() {
		line++
		if line > maxScenarioLines {
			lineErr(line, fmt.Errorf("more than %d lines", maxScenarioLines))
			break
		}
		words, err := splitWords(in.Text())
		if err == nil && len(words) == 0 {
			continue
		}
		var step Step
		var end time.Duration
		if err == nil {
			step, end, err = parseStep(words, &last)
		}
		if err != nil {
			lineErr(line, err)
			continue
		}
		step.Line = line
		sc.Steps = append(sc.Steps, step)
		if end > 0 {
			ends = append(ends, Step{Line: line, At: step.At + end, Command: "up", Text: "up (end of down for=" + end.String() + ")",
				apply: up})
		}
	}
	if err := in.Err(); err != nil {
		lineErr(line+1, fmt.Errorf("cannot read: %v", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(sc.Steps) == 0 {
		return nil, &ScenarioError{Name: name, Line: max(line, 1), Err: errors.New("no steps")}
	}
	sc.Steps = append(sc.Steps, ends...)
	slices.SortStableFunc(sc.Steps, func(a, b Step) int { return cmp.Compare(a.At, b.At) })
	return sc, nil
}

// parseStep parses "at DURATION COMMAND [word ...]", a step that may not
// come before *last, which it moves to DURATION once that parses. A down
// with for=D returns D, for the caller to add the "up".
func parseStep(words []string, last *time.Duration) (Step, time.Duration, error) {
	if words[0] != "at" || len(words) < 3 {
		return Step{}, 0, errors.New(`want "at DURATION COMMAND [name=value ...]"`)
	}
	at, err := time.ParseDuration(words[1])
	switch {
	case err != nil:
		return Step{}, 0, fmt.Errorf("%q is not a duration (such as 0s, 5m30s or 2h)", words[1])
	case at < 0:
		return Step{}, 0, fmt.Errorf("at %s is negative", words[1])
	case at < *last:
		return Step{}, 0, fmt.Errorf("at %s comes before the previous step (at %s)", words[1], *last)
	}
	*last = at
	cmd := commands[words[2]]
	if cmd == nil {
		return Step{}, 0, fmt.Errorf("unknown command %q (accepted: %s)", words[2], strings.Join(commandNames(), ", "))
	}
	p := params{}
	for _, w := range words[3:] {
		name, value, ok := strings.Cut(w, "=")
		if !ok {
			if cmd.bare == "" || p[cmd.bare] != "" {
				return Step{}, 0, fmt.Errorf("%s: unexpected word %q (parameters are name=value)", cmd.name, w)
			}
			name, value = cmd.bare, w
		}
		if _, dup := p[name]; dup {
			return Step{}, 0, fmt.Errorf("%s: %s given twice", cmd.name, name)
		}
		p[name] = value
	}
	var end time.Duration
	if cmd.name == "down" && p["for"] != "" {
		a := &args{cmd: cmd.name, p: p}
		if end = a.duration("for", false, false); a.err() != nil {
			return Step{}, 0, a.err()
		}
		delete(p, "for")
	}
	apply, err := cmd.prepare(p)
	if err != nil {
		return Step{}, 0, err
	}
	return Step{At: at, Command: cmd.name, Text: strings.Join(words[2:], " "), apply: apply}, end, nil
}

// splitWords splits a line into words at spaces, honouring double quotes
// (with backslash escapes) and dropping a comment that starts with #.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quoted && r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
			inWord = true
		case quoted:
			cur.WriteRune(r)
		case r == ' ' || r == '\t' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '#' && !inWord:
			return words, nil
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ScenarioProgress is where a scenario run stands, as LatestScenario and the
// console report it.
type ScenarioProgress struct {
	Name string `json:"name"`
	// Started is the server's clock at the start of the run.
	Started time.Time `json:"started"`
	// Running is true until the run ends (all steps done, a step failed,
	// or the run was stopped).
	Running bool `json:"running"`
	// Next is the index in Steps of the step that runs next (len(Steps)
	// once all have run).
	Next  int            `json:"next"`
	Steps []StepProgress `json:"steps"`
	// Error says why the run ended early, if it did.
	Error string `json:"error,omitempty"`
}

// StepProgress is a step of a ScenarioProgress.
type StepProgress struct {
	Line int    `json:"line"`
	At   string `json:"at"`
	Text string `json:"text"`
	// Done is set once the step has run; Ran is the server's clock then.
	Done  bool      `json:"done"`
	Ran   time.Time `json:"ran,omitzero"`
	Error string    `json:"error,omitempty"`
}

// update calls f unless a later run than prog's took over the server's
// hook.Slot, which holds the progress of its latest run.
func update(slot *hook.Slot, prog *ScenarioProgress, f func()) {
	slot.Mu.Lock()
	defer slot.Mu.Unlock()
	if slot.V == prog {
		f()
	}
}

// LatestScenario returns the progress of the latest scenario run on s (the
// one running, or the last one), or nil if none has run. It is a copy.
func LatestScenario(s *licensetest.Server) *ScenarioProgress {
	slot := hook.Of(s).Slot
	slot.Mu.Lock()
	defer slot.Mu.Unlock()
	prog, _ := slot.V.(*ScenarioProgress)
	if prog == nil {
		return nil
	}
	p := *prog
	p.Steps = slices.Clone(p.Steps)
	return &p
}

// RunScenario plays sc against the clock of s (Config.Clock, default
// time.Now) and returns when every step has run, when a step fails (a
// *ScenarioError naming its line), or when ctx ends (ctx's error). Step
// times count from the call. It waits on timers of at most a second and
// rereads the clock after each, so it follows a clock that jumps; inside a
// testing/synctest bubble, with the server used through Transport, the
// steps run on the bubble's fake time. A timed outage left pending is
// cancelled when it returns; the faults the steps set stay. Runs may
// overlap; LatestScenario reports the latest.
func RunScenario(ctx context.Context, s *licensetest.Server, sc *Scenario) error {
	ctl := &controller{s: s}
	defer ctl.stop()
	in := hook.Of(s)
	start := s.Now()
	prog := &ScenarioProgress{Name: sc.Name, Started: start, Running: true, Steps: make([]StepProgress, len(sc.Steps))}
	for i, st := range sc.Steps {
		prog.Steps[i] = StepProgress{Line: st.Line, At: st.At.String(), Text: st.Text}
	}
	in.Slot.Mu.Lock()
	in.Slot.V = prog
	in.Slot.Mu.Unlock()
	in.Logger.Info("licensetest: scenario started", slog.String("scenario", sc.Name), slog.Int("steps", len(sc.Steps)))
	finish := func(err error) error {
		update(in.Slot, prog, func() {
			prog.Running = false
			if err != nil {
				prog.Error = err.Error()
			}
		})
		if err != nil {
			in.Logger.Info("licensetest: scenario ended", slog.String("scenario", sc.Name), slog.String("error", err.Error()))
		} else {
			in.Logger.Info("licensetest: scenario done", slog.String("scenario", sc.Name))
		}
		return err
	}
	for i, st := range sc.Steps {
		if err := waitUntil(ctx, s.Now, start.Add(st.At)); err != nil {
			return finish(err)
		}
		err := st.apply(ctl)
		ran := s.Now()
		update(in.Slot, prog, func() {
			prog.Steps[i].Done, prog.Steps[i].Ran, prog.Next = true, ran, i+1
			if err != nil {
				prog.Steps[i].Error = err.Error()
			}
		})
		if err != nil {
			return finish(&ScenarioError{Name: sc.Name, Line: st.Line, Err: err})
		}
		in.Logger.Info("licensetest: scenario step", slog.String("scenario", sc.Name), slog.Int("line", st.Line),
			slog.String("command", st.Command))
	}
	return finish(nil)
}

// waitUntil waits until clock reaches due, on timers of at most a second.
func waitUntil(ctx context.Context, clock func() time.Time, due time.Time) error {
	for {
		d := due.Sub(clock())
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(min(d, time.Second))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// startScenario runs the scenario in the body, replacing one started
// earlier through the admin API.
func (a *Handler) startScenario(w http.ResponseWriter, r *http.Request) {
	text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminReply{Error: "licensetest admin: cannot read the scenario: " + err.Error()})
		return
	}
	name := cmp.Or(r.URL.Query().Get("name"), "console")
	sc, err := ParseScenario(name, strings.NewReader(string(text)))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminReply{Error: err.Error()})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		cancel()
		writeJSON(w, http.StatusServiceUnavailable, adminReply{Error: "licensetest admin: closed"})
		return
	}
	stopOld := a.stopRun
	a.stopRun = func() { cancel(); <-done }
	a.mu.Unlock()
	if stopOld != nil {
		stopOld()
	}
	go func() {
		defer close(done)
		_ = RunScenario(ctx, a.s, sc)
	}()
	a.addAction("scenario "+name+" started", "admin")
	writeJSON(w, http.StatusOK, adminReply{OK: true})
}

func (a *Handler) stopScenario(w http.ResponseWriter, _ *http.Request) {
	if a.stopScenarioRun() {
		a.addAction("scenario stopped", "admin")
	}
	writeJSON(w, http.StatusOK, adminReply{OK: true})
}

// stopScenarioRun calls and clears stopRun, reporting whether it was set.
func (a *Handler) stopScenarioRun() bool {
	a.mu.Lock()
	stop := a.stopRun
	a.stopRun = nil
	a.mu.Unlock()
	if stop != nil {
		stop()
	}
	return stop != nil
}
