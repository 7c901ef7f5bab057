package license

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/internal/verdict"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// Client holds one product instance's licence session. Create it with New,
// then call Start. All methods are safe for concurrent use; Status is
// lock-free and allocation-free.
//
// A Client is a few owned parts (store.go, schedule.go, events.go,
// verdicts.go); each field names its guard.
type Client struct {
	cfg    Config            // immutable after New
	opts   options           // immutable after New
	log    *slog.Logger      // immutable after New
	tr     *transport.Client // immutable after New; safe for concurrent use
	sealer envelope.Sealer   // immutable after New; safe for concurrent use
	fp     FingerprintSource // immutable after New
	events *dispatcher       // immutable after New; its own lock (events.go)
	store  *store            // pointer immutable after New; its state guarded by sem (store.go)
	sh     *shared           // nil in normal mode; pointer immutable after New; atomics inside (shared.go)

	verdictSetup // immutable after New, except its once-flags (atomic); verdicts.go

	snap   atomic.Pointer[snapshot] // atomic: what Status reads
	done   context.Context          // immutable after New: closed for good (Done), with why (Err)
	finish context.CancelCauseFunc  // immutable after New: closes done; the first cause stays

	lifeState // guarded by the mutex life, except closing (atomic): Start and Close

	// sem is a one-slot lock that serialises protocol calls and guards the
	// session below: unlike a mutex, waiting on it can be cancelled, and
	// counts as durably blocked under testing/synctest. The channel is
	// immutable after New.
	sem chan struct{}

	sessionState // guarded by sem
}

// verdictSetup is how replies are judged (verdicts.go); New sets it.
type verdictSetup struct {
	sealed           bool              // replies must open as sealed replies
	redact           *verdict.Redactor // knows the client's secrets; its own lock
	warnedInsecure   atomic.Bool
	warnedUnsealable atomic.Bool
}

// lifeState is Start's and Close's bookkeeping, guarded by life.
type lifeState struct {
	life     sync.Mutex
	starting bool
	closing  atomic.Bool // set by the first Close (under life too) before it cancels closeCtx
	// closeCtx, cancelled by Close, stops the loop and cancels a Start or an
	// explicit call in progress. closeCtx and closeNow are immutable.
	closeCtx context.Context
	closeNow context.CancelFunc
	loopDone chan struct{} // nil until a Start succeeds
	// closeDone closes when the first Close has finished; closeErr is its
	// result, written before closeDone closes and read after.
	closeDone chan struct{}
	closeErr  error
}

// sessionState is the licence session as this process knows it, guarded
// by the client's sem.
type sessionState struct {
	loaded  bool
	st      persisted // what the store saves and loads
	machine wire.Machine
	// anchor is the time.Now reading elapsed time is measured from (the
	// last successful send, or the load of the state); base is the budget
	// already used then (elapsedSince).
	anchor      time.Time
	base        time.Duration
	state       State
	reason      error
	rolledBack  bool
	lastErr     error
	skew        time.Duration
	integ       integrity
	deprec      bool
	firstRegRaw string // the FirstRegisteredAt text the snapshot last parsed
	// orphan is set while st.Token is a session a previous run left live:
	// the next successful contact ends it before beginning anew.
	orphan      bool
	attemptCap  int   // when positive, caps each call's HTTP attempts (offline Start)
	running     bool  // the renewal loop runs: a refusal closes Done
	configFault error // Status.ConfigFault
	// The schedule's (schedule.go) inputs and output.
	failures   int
	retryAfter time.Duration
	nextTry    time.Time
}

// New validates cfg and returns a client. It does no I/O and starts no
// goroutine. Every config problem is reported at once; the error matches
// ErrInvalidConfig.
func New(cfg Config, opts ...Option) (*Client, error) {
	o, err := newOptions(&cfg, opts)
	if err != nil {
		return nil, err
	}
	cfg.UserAttributes = maps.Clone(cfg.UserAttributes) // nil stays nil
	cfg.SharedSecret = append([]byte(nil), cfg.SharedSecret...)

	sealer := o.sealer
	if sealer == nil {
		sealer, err = newSealer(&cfg)
		if err != nil {
			return nil, &configError{errs: []error{err}}
		}
	}
	c := &Client{cfg: cfg, opts: o, sealer: sealer}
	c.sealed = !cfg.InsecureUnsealedReplies && (o.sealer == nil || authenticatesReplies(sealer))
	c.redact = verdict.NewRedactor(cfg.APIKey, cfg.LicenseKey)
	c.redact.AddSecret(cfg.SharedSecret)
	tr, err := transport.New(cfg.ServerURL,
		transport.WithLogger(o.logger),
		transport.WithRedactor(func(s string) string { return c.redact.Redact(s) }),
		transport.WithMaxAttempts(o.retry.Attempts),
		transport.WithAttemptTimeout(o.retry.AttemptTimeout),
		transport.WithBackoff(o.retry.MinBackoff, o.retry.MaxBackoff),
		transport.WithRand(o.rnd),
		// A nil or empty value keeps the transport's default.
		transport.WithHTTPClient(o.httpClient),
		transport.WithRoundTripper(o.roundTrip),
		transport.WithRootCAs(o.rootCAs),
		transport.WithUserAgent(o.userAgent),
	)
	if err != nil {
		return nil, &configError{errs: []error{err}}
	}
	c.log = o.logger
	c.tr = tr
	c.events = newDispatcher(o.onEvent, o.logger)
	c.fp = o.fingerprint
	if c.fp == nil {
		fopts := append([]fingerprint.Option{fingerprint.WithServerAddress(serverAddress(cfg.ServerURL))}, o.fpOpts...)
		c.fp = fingerprint.NewCached(10*time.Minute, fopts...).Collect
	}
	c.snap.Store(&snapshot{})
	c.done, c.finish = context.WithCancelCause(context.Background())
	c.sem = make(chan struct{}, 1)
	c.integ.lost = make(map[string]*lostRequest)
	c.closeCtx, c.closeNow = context.WithCancel(context.Background())
	c.closeDone = make(chan struct{})
	c.store = &store{cfg: &c.cfg, opts: &c.opts, log: c.log, emit: c.emit}
	if o.shared != nil { // shared mode: shared.go
		c.sh = &shared{cfg: *o.shared}
		c.sh.path.Store("")
		c.store.sharedName = statefile.SharedName(cfg.ProductGUID, cfg.LicenseKey)
	}
	return c, nil
}

func newSealer(cfg *Config) (envelope.Sealer, error) {
	var eo []envelope.Option // the built-in sealers: sealed replies unless the vendor opted out
	if !cfg.InsecureUnsealedReplies {
		eo = append(eo, envelope.WithSealedReplies())
	}
	if len(cfg.SharedSecret) > 0 {
		return envelope.NewSharedSecretSealer(cfg.SharedSecret, eo...)
	}
	pub, err := envelope.ParsePublicKey([]byte(cfg.ServerPublicKey))
	if err != nil {
		return nil, err
	}
	return envelope.NewSealer(pub, eo...)
}

// serverAddress is the licence server's host:port, at which the
// fingerprint's ip_address probe aims.
func serverAddress(raw string) string {
	u, _ := url.Parse(raw) // checkServerURL parsed it already
	if u.Port() != "" {
		return u.Host
	}
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Status returns a snapshot of the client. It is lock-free and does not
// allocate: one atomic load and one clock read. The state is computed from
// the stored deadlines at the time of the call, so it is right even while
// the renewal goroutine waits on the network.
func (c *Client) Status() Status {
	s := c.snap.Load()
	now := time.Now()
	wall := now // one clock read, unless a test hook sets the wall clock
	if c.opts.wall != nil {
		wall = c.opts.wall()
	}
	st := s.status
	st.State, st.Reason = s.at(now, wall)
	return st
}

// Valid reports whether the licence may be used now (Active or Grace).
func (c *Client) Valid() bool { return c.Status().Valid() }

// HasFeature reports whether the licence may be used now and its session
// grants feature name.
func (c *Client) HasFeature(name string) bool {
	s := c.Status()
	return s.Valid() && s.HasFeature(name)
}

// Done returns a channel that is closed when the client is finished for
// good, like context.Done: the server refused the licence while the client
// was running (after a successful Start), or Close was called. It closes
// once and never reopens, and Done always returns the same channel. Err
// then says why.
//
// Expired is not an end: the client keeps trying and returns to Active when
// the server answers, so Expired shows in Status, Valid and events, never
// in Done. A failed Start does not close Done either: its error says why,
// and Start may be retried. Once Done has closed, only a new Client can use
// the licence again.
func (c *Client) Done() <-chan struct{} { return c.done.Done() }

// Err returns nil while Done is open, and then the reason it closed: an
// error matching ErrRefused (and ErrRevoked, ErrSeatLimit or ErrExpired by
// the server's message), or ErrClosed. It never changes once set.
func (c *Client) Err() error {
	return context.Cause(c.done) // nil until done is cancelled
}

// Start loads the persisted state, ends a session orphaned by a previous
// run, registers this machine if it is new or its hardware changed, begins
// a session and starts background renewal.
//
// Start is bounded. When the persisted state still grants time without the
// server (a session the previous run left live, or grace), Start makes one
// HTTP attempt per call within StartBudget.Offline (2 s by default) and, if
// the server has not answered, returns nil in the state the persisted
// deadlines give (Active until the old session lapses, then Grace) and
// keeps trying in the background. Otherwise it is bounded by
// StartBudget.Online (15 s by default), retries and Retry-After included,
// and an unreachable server fails it with an error matching
// ErrUnreachable. ctx bounds Start too; the earlier limit wins.
//
// A refusal is returned as an error matching ErrRefused. A failed Start
// may be retried; a Start after a successful one, or during one, returns an
// error. ctx bounds only Start itself; the background loop lives until
// Close. Close cancels a Start in progress, which then returns ErrClosed.
// Call Close even after a failed Start: it releases the state slot.
func (c *Client) Start(ctx context.Context) error {
	c.life.Lock()
	switch {
	case c.closing.Load():
		c.life.Unlock()
		return ErrClosed
	case c.loopDone != nil || c.starting:
		c.life.Unlock()
		return errors.New("license: already started")
	case ctx.Err() != nil:
		c.life.Unlock()
		return &notSentError{op: "start", err: context.Cause(ctx)}
	}
	c.starting = true
	at := time.Now() // Start's budgets count from here
	c.life.Unlock()
	c.warnInsecure()

	err := c.locked(ctx, func(ctx context.Context) error { return c.startLocked(ctx, at) })

	c.life.Lock()
	defer c.life.Unlock()
	c.starting = false
	if c.closing.Load() {
		return ErrClosed // Close ran meanwhile and ended what Start began
	}
	if err != nil {
		return toCaller(err) // no loop runs: nothing retries it
	}
	c.loopDone = make(chan struct{})
	go c.run(c.closeCtx)
	return nil
}

// locked runs f holding the client's lock, with a context that Close
// cancels; so is the wait for the lock.
func (c *Client) locked(ctx context.Context, f func(context.Context) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.closeCtx, cancel)
	defer stop()
	if err := c.lock(cctx); err != nil {
		if c.closing.Load() {
			return ErrClosed
		}
		return err
	}
	defer c.unlock()
	if c.closing.Load() {
		return ErrClosed // Close may let the lock go while it waits (sharedMayEndLocked)
	}
	return f(cctx)
}

// lock takes the client's lock unless ctx ends first.
func (c *Client) lock(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) unlock() { <-c.sem }

// loadLocked reads the persisted state once, through the store, and
// anchors elapsed time at the budget it had already used.
func (c *Client) loadLocked(ctx context.Context) error {
	if c.loaded {
		return nil
	}
	fp, err := c.fingerprintLocked(ctx)
	if err != nil {
		return err
	}
	p, used, err := c.store.open(ctx, fp)
	if err != nil {
		return err
	}
	c.st = p
	c.orphan = p.Token != ""
	c.anchor, c.base = time.Now(), used
	if c.sharedOn() {
		c.sh.path.Store(c.store.shared.Path())
		c.noteRole(c.store.leading())
	}
	c.loaded = true
	return nil
}

// offlineAllowanceLocked reports whether the persisted deadlines still
// grant time without the server. A restart never resets or extends them.
func (c *Client) offlineAllowanceLocked() (bool, error) {
	if err := c.persistedRefusal(); err != nil {
		return false, err
	}
	if err := c.store.offlineErr(&c.st); err != nil {
		return false, err
	}
	if c.st.Sent.IsZero() || c.st.SessionSeconds <= 0 {
		return false, nil
	}
	wall := c.wallNow()
	if c.clockRolledBack(wall) || wall.Before(c.st.Sent) {
		c.rolledBack = true
		return false, ErrClockRollback
	}
	if c.elapsed(time.Now(), wall) >= c.session()+c.grace() {
		return false, ErrGraceExpired
	}
	return true, nil
}

func (c *Client) clockRolledBack(wall time.Time) bool {
	return !c.st.HighWater.IsZero() && wall.Before(c.st.HighWater.Add(-rollbackSlack))
}

func (c *Client) wallNow() time.Time {
	if c.opts.wall != nil {
		return c.opts.wall().Round(0)
	}
	return time.Now().Round(0)
}

func (c *Client) session() time.Duration { return time.Duration(c.st.SessionSeconds) * time.Second }
func (c *Client) grace() time.Duration   { return time.Duration(c.st.GraceSeconds) * time.Second }

// Close stops renewal, cancelling any request in flight, then ends the
// session with end_session within ctx (at most 10 s, and never past the
// session's lapse). An unknown token counts as already ended. Close is
// idempotent, waits for the client's goroutines to exit, and leaves no idle
// connection behind. The event handler is never called after Close
// returns. It returns the end_session error, if any; the client is closed
// either way. Close is one operation: every call, concurrent or later,
// returns only after the first has finished (session ended or given up,
// goroutines gone, event handler done) and returns the same result; the
// ctx of a later call is not used. Do not call Close from the event
// handler.
func (c *Client) Close(ctx context.Context) error {
	c.life.Lock()
	if c.closing.Load() {
		c.life.Unlock()
		<-c.closeDone
		return c.closeErr
	}
	c.closing.Store(true)
	loopDone := c.loopDone
	c.life.Unlock()
	c.closeErr = c.closeFirst(ctx, loopDone)
	close(c.closeDone)
	return c.closeErr
}

func (c *Client) closeFirst(ctx context.Context, loopDone chan struct{}) error {
	c.closeNow()
	if loopDone != nil {
		<-loopDone
	}

	_ = c.lock(context.Background()) // every holder was cancelled: this is quick
	var err error
	ended := false
	// In shared mode (shared.go) the session is handed over or left to
	// lapse unless this is the last process and it was asked to end it.
	if c.sharedMayEndLocked() && c.st.Token != "" {
		if left := c.anchorDeadline(c.session()); left > 0 {
			ectx, stop := context.WithTimeout(ctx, min(10*time.Second, left))
			err = c.endLocked(ectx)
			stop()
			ended = err == nil
		} else {
			// The session has lapsed on the server too.
			c.st.Token = ""
		}
	}
	prev := c.state
	if prev != Refused {
		// Refused is the server's verdict and stays: Close ends the client,
		// not the verdict (docs/lifecycle.md). Either way it is saved as
		// closed: no OfflineOpen.
		c.state, c.reason = Ended, ErrClosed
	}
	if !ended {
		// A successful end_session has just saved the only change (the
		// token gone); saving again would write the same state twice.
		c.saveLocked(context.WithoutCancel(ctx))
	}
	c.publishLocked()
	if prev != Ended && prev != Refused {
		c.emit(Event{Type: EventStateChanged, State: Ended, Previous: prev, Reason: ErrClosed})
		c.log.Info("licence state changed", "state", Ended, "previous", prev)
	}
	detail, msg := "no live session to end", "client closed; no live session to end"
	switch {
	case err != nil:
		detail = "end_session failed; the next start ends the session"
	case ended:
		detail, msg = "session ended", "licence session ended"
	}
	c.emit(Event{Type: EventEnded, State: c.state, Reason: err, Detail: detail})
	c.store.release()
	c.unlock()

	c.events.close()
	c.finish(ErrClosed)
	c.tr.CloseIdleConnections()
	if err != nil {
		c.log.Warn("end_session failed; the next start ends the orphaned session", "error", err)
	} else {
		c.log.Info(msg, "state", Ended)
	}
	return err
}

// anchorDeadline is the time left until anchor+d, measured as Status does.
func (c *Client) anchorDeadline(d time.Duration) time.Duration {
	if c.st.Sent.IsZero() {
		return 0
	}
	return d - c.elapsed(time.Now(), c.wallNow())
}

func (c *Client) elapsed(mono, wall time.Time) time.Duration {
	return elapsedSince(c.anchor, c.st.Sent, c.base, mono, wall)
}

// enterLocked moves to state st with reason, emitting a StateChanged event
// and closing Done on a running client's refusal.
func (c *Client) enterLocked(st State, reason error) {
	prev := c.state
	c.state, c.reason = st, reason
	c.publishLocked()
	if prev == st {
		return
	}
	// Done closes first, so that a handler sees Err agree with the event.
	if st == Refused && c.running {
		c.finish(reason)
	}
	c.emit(Event{Type: EventStateChanged, State: st, Previous: prev, Reason: reason,
		GraceLeft: c.graceLeft()})
	lvl := slog.LevelInfo
	if st != Active {
		lvl = slog.LevelWarn
	}
	c.log.Log(context.Background(), lvl, "licence state changed", "state", st, "previous", prev, "reason", reason)
}

// graceLeft is the offline allowance left now.
func (c *Client) graceLeft() time.Duration {
	return max(0, c.anchorDeadline(c.session()+c.grace()))
}

// publishLocked stores a fresh snapshot for Status.
func (c *Client) publishLocked() {
	prev := c.snap.Load()
	s := &snapshot{
		anchorMono: c.anchor,
		anchorWall: c.st.Sent,
		base:       c.base,
		session:    c.session(),
		grace:      c.grace(),
		rolledBack: c.rolledBack,
		timed:      (c.state == Active || c.state == Grace || c.state == Expired) && !c.st.Sent.IsZero(),
	}
	s.status = Status{
		State:             c.state,
		Reason:            c.reason,
		Renewing:          prev.status.Renewing,
		Features:          c.st.Features,
		FeatureSet:        prev.status.FeatureSet,
		SessionDuration:   c.session(),
		GracePeriod:       c.grace(),
		LastContact:       c.st.LastContact,
		LastError:         c.lastErr,
		ConfigFault:       c.configFault,
		InstanceGUID:      c.st.InstanceGUID,
		FirstRegisteredAt: prev.status.FirstRegisteredAt,
		ServerSkew:        c.skew,
		Deprecated:        c.deprec,
	}
	// Parse only what changed.
	if c.st.Features != prev.status.Features {
		s.status.FeatureSet = wire.ParseFeatures(c.st.Features)
	}
	if c.st.FirstRegisteredAt != c.firstRegRaw {
		s.status.FirstRegisteredAt = wire.ParseTimestamp(c.st.FirstRegisteredAt).Time
		c.firstRegRaw = c.st.FirstRegisteredAt
	}
	if !c.st.Sent.IsZero() {
		s.status.SessionExpiry = c.st.Sent.Add(c.session())
		s.status.GraceDeadline = s.status.SessionExpiry.Add(c.grace())
	}
	c.snap.Store(s)
}

func (c *Client) setRenewing(on bool) {
	s := *c.snap.Load()
	s.status.Renewing = on
	c.snap.Store(&s)
}

// saveLocked saves the state, with the offline budget used so far, through
// store.save.
func (c *Client) saveLocked(ctx context.Context) {
	now, wall := time.Now(), c.wallNow()
	c.st.Used = 0
	if !c.st.Sent.IsZero() {
		c.st.Used = c.elapsed(now, wall)
	}
	c.st.OfflineOpen = c.failures > 0 && c.state != Ended && !c.closing.Load()
	c.store.save(ctx, &c.st, c.rolledBack, wall)
}

// emit stamps e with the wall clock and, unless set, the current state.
func (c *Client) emit(e Event) {
	e.Time = c.wallNow()
	e.State = cmp.Or(e.State, c.state)
	c.events.emit(e)
}

// String describes the client without secrets.
func (c *Client) String() string {
	return fmt.Sprintf("license.Client{product=%s state=%s}", c.cfg.ProductGUID, c.Status().State)
}
