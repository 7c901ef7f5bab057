package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/licensekit/licensekit-go/license"
)

// record is one event and the process (1 or 2 in the outage demo, 0 in the
// healthy run) whose client sent it.
type record struct {
	client int
	e      license.Event
}

// timeline prints a client's events, and the program's own lines, one line
// each with the time since the start, plus a live status line, and keeps
// the events so that the program can wait for them. It is safe for
// concurrent use: the event handler and the main goroutine both print.
type timeline struct {
	start time.Time
	tty   bool // redraw the status line in place

	mu      sync.Mutex
	w       io.Writer
	recs    []record
	changed chan struct{} // closed and replaced at each event
	expired chan struct{} // closed at the first change to Expired
	shown   int           // width of the status line on screen (tty only)
}

// newTimeline starts a timeline now. It redraws the status line only when
// w is a terminal.
func newTimeline(w io.Writer) *timeline {
	return &timeline{start: time.Now(), tty: isTerminal(w), w: w,
		changed: make(chan struct{}), expired: make(chan struct{})}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// rel renders t relative to the start: "+4.05s" under a minute, else a
// duration to the second, such as "+24h10m0s".
func (tl *timeline) rel(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return relative(t.Sub(tl.start))
}

// relative renders an offset from the start for people.
func relative(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	if d < time.Minute {
		return fmt.Sprintf("%s%.2fs", sign, d.Seconds())
	}
	return sign + d.Round(time.Second).String()
}

// note prints an untimed header line.
func (tl *timeline) note(format string, args ...any) {
	tl.write(fmt.Sprintf("             "+format, args...))
}

// phase prints a phase heading.
func (tl *timeline) phase(title string) {
	tl.write(fmt.Sprintf("%-8s ---- %s", tl.rel(time.Now()), title))
}

// line prints a line timed now; client is 1 or 2 for a client's line in the
// outage demo, 0 otherwise.
func (tl *timeline) line(client int, kind, format string, args ...any) {
	tl.at(time.Now(), client, kind, format, args...)
}

// at prints a line timed at t.
func (tl *timeline) at(t time.Time, client int, kind, format string, args ...any) {
	tag := "   "
	if client > 0 {
		tag = fmt.Sprintf("[%d]", client)
	}
	tl.write(fmt.Sprintf("%-8s %s %-8s %s", tl.rel(t), tag, kind, fmt.Sprintf(format, args...)))
}

// write prints one full line, first erasing the status line on a terminal.
func (tl *timeline) write(s string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.shown > 0 {
		fmt.Fprintf(tl.w, "\r%s\r", strings.Repeat(" ", tl.shown))
		tl.shown = 0
	}
	fmt.Fprintln(tl.w, s)
}

// status shows the live status: redrawn in place on a terminal, a plain
// line otherwise.
func (tl *timeline) status(s string) {
	if !tl.tty {
		tl.line(0, "status", "%s", s)
		return
	}
	s = fmt.Sprintf("%-8s     status   %s", tl.rel(time.Now()), s)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := utf8.RuneCountInString(s)
	fmt.Fprintf(tl.w, "\r%s%s", s, strings.Repeat(" ", max(0, tl.shown-n)))
	tl.shown = max(n, tl.shown)
}

// handler returns the event handler of process n's client.
func (tl *timeline) handler(n int) license.EventHandler {
	return func(e license.Event) {
		tl.event(n, e)
		tl.mu.Lock()
		defer tl.mu.Unlock()
		tl.recs = append(tl.recs, record{client: n, e: e})
		close(tl.changed)
		tl.changed = make(chan struct{})
		if e.Type == license.EventStateChanged && e.State == license.Expired {
			select {
			case <-tl.expired:
			default:
				close(tl.expired)
			}
		}
	}
}

// event prints e.
func (tl *timeline) event(n int, e license.Event) {
	switch e.Type {
	case license.EventStateChanged:
		msg := e.Previous.String() + " → " + e.State.String()
		if e.Reason != nil && e.State != license.Ended {
			msg += " (" + why(e.Reason) + ")"
		}
		tl.at(e.Time, n, "state", "%s", msg)
	case license.EventRenewed:
		tl.at(e.Time, n, "renewed", "session until %s, next renewal at %s", tl.rel(e.SessionExpiry), tl.rel(e.NextTry))
	case license.EventRenewFailed:
		tl.at(e.Time, n, "failed", "renewal attempt %d in %s: %s; next try at %s, offline allowance left %s",
			e.Attempt, e.State, why(e.Reason), tl.rel(e.NextTry), e.GraceLeft.Round(10*time.Millisecond))
	case license.EventControlOptionsChanged:
		tl.at(e.Time, n, "options", "session %s, grace %s", e.SessionDuration, e.GracePeriod)
	case license.EventOrphanEnded:
		if e.Reason != nil {
			tl.at(e.Time, n, "orphan", "could not end the session a previous run left: %v", e.Reason)
		} else {
			tl.at(e.Time, n, "orphan", "ended the session a previous run left open")
		}
	case license.EventEnded:
		if e.Reason != nil {
			tl.at(e.Time, n, "closed", "end_session failed: %v (the next start ends it)", e.Reason)
		} else {
			tl.at(e.Time, n, "closed", "client closed; %s", e.Detail)
		}
	default:
		msg := e.Detail
		if e.Reason != nil {
			msg += " (" + e.Reason.Error() + ")"
		}
		tl.at(e.Time, n, strings.ToLower(e.Type.String()), "%s", msg)
	}
}

// why names the category of a state change's or failure's reason.
func why(err error) string {
	switch {
	case errors.Is(err, license.ErrUnreachable):
		return "server unreachable"
	case errors.Is(err, license.ErrGraceExpired):
		return "grace period spent"
	default:
		return err.Error()
	}
}

// count returns how many events matched pred.
func (tl *timeline) count(pred func(record) bool) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := 0
	for _, r := range tl.recs {
		if pred(r) {
			n++
		}
	}
	return n
}

// stateIs matches a change to state s.
func stateIs(s license.State) func(record) bool {
	return func(r record) bool { return r.e.Type == license.EventStateChanged && r.e.State == s }
}

// typeIs matches events of type t.
func typeIs(t license.EventType) func(record) bool {
	return func(r record) bool { return r.e.Type == t }
}

// errTimeout reports that an awaited event did not come in time.
var errTimeout = errors.New("timed out")

// await waits for the first event at index from or later that matches
// pred, showing the live status from show (if not nil) meanwhile. It
// returns the event and the index after it. what names the event in errors.
func (tl *timeline) await(ctx context.Context, from int, what string, pred func(record) bool, timeout time.Duration, show func() string) (license.Event, int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	every := time.Second
	if tl.tty {
		every = 100 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		tl.mu.Lock()
		for ; pred != nil && from < len(tl.recs); from++ {
			if r := tl.recs[from]; pred(r) {
				tl.mu.Unlock()
				return r.e, from + 1, nil
			}
		}
		changed := tl.changed
		tl.mu.Unlock()
		select {
		case <-changed:
		case <-tick.C:
			if show != nil {
				tl.status(show())
			}
		case <-deadline.C:
			return license.Event{}, from, fmt.Errorf("waiting for %s: %w after %s", what, errTimeout, timeout)
		case <-ctx.Done():
			return license.Event{}, from, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// sleep waits for d, showing the live status from show meanwhile.
func (tl *timeline) sleep(ctx context.Context, d time.Duration, show func() string) error {
	_, _, err := tl.await(ctx, 0, "", nil, d, show)
	if errors.Is(err, errTimeout) {
		return nil
	}
	return err
}
