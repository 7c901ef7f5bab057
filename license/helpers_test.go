package license

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/internal/testhome"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	if os.Getenv(sharedChildEnv) != "" {
		os.Exit(sharedChildMain())
	}
	// Anti-rollback records default to the user's configuration directory:
	// point it at a scratch directory so that tests never touch the real one.
	goleak.VerifyTestMain(testhome.M(m))
}

const (
	testProduct = "prod-7d1c"
	testLicense = "LK-TEST-4242"
)

// stateBase is the state file name of the test licence.
var stateBase = statefile.BaseName(testProduct, testLicense)

// testFingerprint is the shared test machine with a CPU id and a host name
// of its own (long enough for the leak checks to look for), an IP address
// and a board serial.
func testFingerprint() *fingerprint.Fingerprint {
	fp := testkit.Fingerprint()
	fp.CPUID.Value = "genuineintel-000906ea"
	fp.HostName.Value = "build-box"
	fp.IPAddress = fingerprint.Component{Name: fingerprint.NameIPAddress, Value: "192.0.2.10", Strength: fingerprint.Weak}
	fp.Extra = append([]fingerprint.Component{{Name: fingerprint.NameBoardSerial, Value: "board-0001", Strength: fingerprint.Strong}}, fp.Extra...)
	return fp
}

func fixedFingerprint(fp *fingerprint.Fingerprint) Option {
	return WithFingerprintSource(func(context.Context) (*fingerprint.Fingerprint, error) { return fp, nil })
}

// wallClock is an injectable wall clock: the bubble's time plus an offset
// a test can move, to simulate a suspend or a clock set back.
type wallClock struct{ offset atomic.Int64 }

func (w *wallClock) now() time.Time       { return time.Now().Add(time.Duration(w.offset.Load())) }
func (w *wallClock) jump(d time.Duration) { w.offset.Add(int64(d)) }
func (w *wallClock) option() Option       { return WithTestHooks(TestHooks{WallClock: w.now}) }

// recorder collects events in order.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) handle(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// all returns the events so far. It first lets the bubble settle, so that
// the dispatcher has delivered what was emitted; it must be called from
// inside the synctest bubble.
func (r *recorder) all() []Event {
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// transitions returns the StateChanged events.
func (r *recorder) transitions() []Event {
	return slices.DeleteFunc(r.all(), func(e Event) bool { return e.Type != EventStateChanged })
}

func (r *recorder) states() []State {
	var out []State
	for _, e := range r.transitions() {
		out = append(out, e.State)
	}
	return out
}

func (r *recorder) count(t EventType) int {
	n := 0
	for _, e := range r.all() {
		if e.Type == t {
			n++
		}
	}
	return n
}

// env is a mock server and what a client needs to talk to it in memory.
type env struct {
	t     *testing.T
	srv   *licensetest.Server
	store *MemoryStateStore
	wall  *wallClock
	rec   *recorder
	fp    *fingerprint.Fingerprint
	seed  uint64
	// insecure sets InsecureUnsealedReplies in config.
	insecure bool
}

type envConfig struct {
	session, grace time.Duration
	seats          int
	features       string
	serverCfg      *licensetest.Config
}

// newEnv builds a server that is never started (in-memory only), so that
// it works inside a synctest bubble.
func newEnv(t *testing.T, ec envConfig) *env {
	t.Helper()
	if ec.session == 0 {
		ec.session = 10 * time.Minute
	}
	srv := licensetest.NewUnstartedServer(ec.serverCfg)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{
		ProductGUID: testProduct, Key: testLicense, Seats: ec.seats,
		SessionDuration: ec.session, GracePeriod: ec.grace, Features: ec.features,
	}))
	return &env{t: t, srv: srv, store: &MemoryStateStore{}, wall: &wallClock{}, rec: &recorder{}, fp: testFingerprint(), seed: 1}
}

func (e *env) config() Config {
	return Config{
		ServerURL:       e.srv.URL,
		APIKey:          e.srv.Info().APIKey,
		ServerPublicKey: e.srv.Info().PublicKey.EncodeBase64(),
		ProductGUID:     testProduct,
		LicenseKey:      testLicense,
		UserName:        "Ada",
		UserEmail:       "ada@example.com",
		UserAttributes:  map[string]string{"team": "core"},

		InsecureUnsealedReplies: e.insecure,
	}
}

// options are the in-memory defaults; extra options come last and win.
func (e *env) options(extra ...Option) []Option {
	rng := rand.New(rand.NewPCG(e.seed, 2))
	e.seed++
	return append([]Option{
		WithRoundTripper(e.srv.Transport()),
		WithStateStore(e.store),
		WithEventHandler(e.rec.handle),
		WithTestHooks(TestHooks{Rand: rng.Float64}),
		e.wall.option(),
		fixedFingerprint(e.fp),
		WithRetry(Retry{MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second}),
		bubbleFloor,
	}, extra...)
}

func (e *env) newClient(cfg Config, extra ...Option) *Client {
	e.t.Helper()
	c, err := New(cfg, e.options(extra...)...)
	require.NoError(e.t, err)
	return c
}

// start creates and starts a client, closing it at cleanup.
func (e *env) start(extra ...Option) *Client {
	e.t.Helper()
	c := e.newClient(e.config(), extra...)
	require.NoError(e.t, c.Start(context.Background()))
	e.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// tryStart starts a new client, as the next run of the program would, and
// returns it with Start's error. The client is closed at cleanup.
func (e *env) tryStart(extra ...Option) (*Client, error) {
	e.t.Helper()
	c, _, err := e.timedStart(context.Background(), extra...)
	return c, err
}

// timedStart is tryStart under ctx; it also returns how long Start took.
func (e *env) timedStart(ctx context.Context, extra ...Option) (*Client, time.Duration, error) {
	e.t.Helper()
	c := e.newClient(e.config(), extra...)
	e.t.Cleanup(func() { _ = c.Close(context.Background()) })
	begun := time.Now()
	err := c.Start(ctx)
	return c, time.Since(begun), err
}

// withDir returns a config using a real state directory.
func (e *env) withDir(dir string) Config {
	cfg := e.config()
	cfg.StateDir = dir
	return cfg
}

// startIn starts a client on a state directory (no memory store).
func (e *env) startIn(dir string, extra ...Option) (*Client, error) {
	c, err := New(e.withDir(dir), append(e.options(), append([]Option{WithStateStore(nil)}, extra...)...)...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, c.Start(context.Background())
}

// newDirEnv returns an env, a new state directory and the option that
// keeps anti-rollback records in another new directory.
func newDirEnv(t *testing.T, ec envConfig) (*env, string, Option) {
	return newEnv(t, ec), t.TempDir(), WithRollbackRecordDir(t.TempDir())
}

// mustStartIn is startIn for a start that must succeed.
func (e *env) mustStartIn(dir string, extra ...Option) *Client {
	e.t.Helper()
	c, err := e.startIn(dir, extra...)
	require.NoError(e.t, err)
	return c
}

// sharedIn returns the options of a shared-mode client whose
// anti-rollback records live in records.
func sharedIn(records string) []Option {
	return []Option{WithSharedSession(SharedSession{}), WithRollbackRecordDir(records)}
}

// newSharedEnv returns an env (10-minute sessions, an hour of grace), a new
// state directory and the options of a client sharing its session there
// (sharedIn a new record directory, then extra).
func newSharedEnv(t *testing.T, extra ...Option) (*env, string, []Option) {
	e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
	return e, t.TempDir(), append(sharedIn(t.TempDir()), extra...)
}

// isDone reports whether c's Done channel is closed.
func isDone(c *Client) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// crash stops a client's renewal without ending its session, as a process
// crash would. The state store keeps the live token.
func crash(c *Client) {
	c.life.Lock()
	c.closing.Store(true)
	done := c.loopDone
	c.life.Unlock()
	c.closeNow()
	if done != nil {
		<-done
	}
	c.events.close()
	c.tr.CloseIdleConnections()
	c.store.release()  // the OS drops a dead process's locks
	close(c.closeDone) // a later Close returns at once
}

// sleepUntil sleeps until bubble time reaches start+at.
func sleepUntil(start time.Time, at time.Duration) {
	time.Sleep(time.Until(start.Add(at)))
}

// bubbleFloor lowers the earliest plausible request time to the year
// before a synctest bubble's clock starts (2000-01-01).
func bubbleFloor(o *options) { o.timeFloor = time.Date(1999, time.January, 1, 0, 0, 0, 0, time.UTC) }
