package fingerprint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// task collects one group of components from one source.
type task struct {
	name string
	// fills lists the components the task produces (Name, Source, Strength); they are reported as
	// TimedOut when the task misses its deadline. inline tasks are cheap (one syscall), run on the
	// calling goroutine and so never miss it: they need no fills.
	fills  []Component
	inline bool
	run    taskFunc
}

type taskResult struct {
	comps []Component
	env   envFacts
}

// Collect gathers the machine's fingerprint. Sources run concurrently under one shared deadline, the
// shorter of WithComponentTimeout (default 1 s) and WithTimeout (default 2 s), so 1 s by default,
// and Collect never waits past it or the caller's context. A source that misses the deadline is
// reported with reason TimedOut; a source that is still running is abandoned, not waited for.
//
// A partial fingerprint is normal: each missing component carries its reason. Collect returns the
// fingerprint together with an error matching ErrNoUsableComponent only when no component other
// than ip_address has a value. It returns a nil fingerprint and an error when ctx is already done,
// when WithHashedIdentifiers was given an empty key, or when WithServerAddress is not "host:port".
// Collect does not cache; see Cached. It is safe for concurrent use.
func Collect(ctx context.Context, opts ...Option) (*Fingerprint, error) {
	fp, _, err := collect(ctx, newOptions(opts))
	return fp, err
}

// collect runs Collect and also reports whether the caller's context ended during the collection
// (a result degraded by the caller is not cached).
func collect(ctx context.Context, o *options) (*Fingerprint, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, true, fmt.Errorf("fingerprint: %w", err)
	}
	if o.hashed && len(o.key) == 0 {
		return nil, false, errors.New("fingerprint: empty product key for hashed identifiers")
	}
	if o.server != "" {
		if host, port, err := net.SplitHostPort(o.server); err != nil || host == "" || port == "" {
			return nil, false, fmt.Errorf("fingerprint: server address %q is not host:port", o.server)
		}
	}
	tasks := o.tasks()
	deadline := min(o.compTimeout, o.timeout)
	tctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()

	type done struct {
		i   int
		res taskResult
	}
	results := make([]taskResult, len(tasks))
	finished := make([]bool, len(tasks))
	ch := make(chan done, len(tasks))
	pending := 0
	for i, t := range tasks {
		if o.wrap != nil {
			tasks[i].run = o.wrap(t.name, t.run)
		}
		if !t.inline {
			pending++
			go func() { ch <- done{i, tasks[i].run(tctx)} }()
		}
	}
	for i, t := range tasks {
		if t.inline {
			results[i], finished[i] = t.run(tctx), true
		}
	}
wait:
	for pending > 0 {
		select {
		case d := <-ch:
			results[d.i], finished[d.i] = d.res, true
			pending--
		case <-tctx.Done():
			break wait
		}
	}
	// A task is unfinished only when tctx ended, so its cause is set.
	fp := assemble(tasks, results, finished, context.Cause(tctx))
	if o.hashed {
		hashAll(fp, o.key)
	}
	callerDone := ctx.Err() != nil
	if !fp.usable() {
		return fp, callerDone, fmt.Errorf("%w: %s", ErrNoUsableComponent, fp.missingSummary())
	}
	return fp, callerDone, nil
}

// tasks selects the sources: the Linux ones below a root or test filesystem, else the platform's.
func (o *options) tasks() []task {
	switch {
	case o.fsys != nil:
		return linuxTasks(o.fsys, o)
	case o.root != "":
		return linuxTasks(newOSFS(o.root), o)
	}
	return platformTasks(o)
}

// assemble places the task results into a Fingerprint. Components of unfinished tasks are TimedOut;
// wire fields no task produced are Unsupported.
func assemble(tasks []task, results []taskResult, finished []bool, timeoutErr error) *Fingerprint {
	fp := &Fingerprint{}
	var env envFacts
	set := map[string]bool{}
	put := func(c Component) {
		set[c.Name] = true
		if p := fp.field(c.Name); p != nil {
			*p = c
		} else {
			fp.Extra = append(fp.Extra, c)
		}
	}
	for i, t := range tasks {
		if !finished[i] {
			for _, c := range t.fills {
				put(missing(c.Name, c.Source, c.Strength, TimedOut, timeoutErr))
			}
			continue
		}
		for _, c := range results[i].comps {
			put(c)
		}
		env.merge(results[i].env)
	}
	for _, w := range wireFields {
		if !set[w.name] {
			put(missing(w.name, "", w.s, Unsupported, errors.New("no source on this platform")))
		}
	}
	slices.SortStableFunc(fp.Extra, func(a, b Component) int {
		if d := extraRank(a.Name) - extraRank(b.Name); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	fp.Environment = env.environment()
	return fp
}

func hashAll(fp *Fingerprint, key []byte) {
	h := func(c *Component) {
		if c.Value != "" {
			c.Value = hmacHex(key, c.Name, c.Value)
		}
		if len(c.Values) > 0 {
			vs := make([]string, len(c.Values))
			for i, v := range c.Values {
				vs[i] = hmacHex(key, c.Name, v)
			}
			c.Values = sortUnique(vs)
		}
	}
	for _, p := range fp.wire() {
		h(p)
	}
	for i := range fp.Extra {
		h(&fp.Extra[i])
	}
	fp.Hashed = true
}

func (f *Fingerprint) usable() bool {
	return slices.ContainsFunc(f.Components(), func(c Component) bool {
		return c.Name != NameIPAddress && c.Present()
	})
}

// missingSummary lists each missing component with its reason, e.g. "cpu_id: timed out, ...".
func (f *Fingerprint) missingSummary() string {
	var parts []string
	for _, c := range f.Components() {
		if c.Missing != nil {
			parts = append(parts, c.Name+": "+c.Missing.Reason.String())
		}
	}
	return strings.Join(parts, ", ")
}
