package license

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The shared-mode child process: TestMain runs sharedChildMain when
// sharedChildEnv is set ("shared", "shared-end" or "plain").
const (
	sharedChildEnv     = "LICENSEKIT_TEST_SHARED_CHILD"
	sharedChildLicense = "LICENSEKIT_TEST_SHARED_LICENSE"
)

// sharedChildMain starts a client (in shared mode unless the mode is
// "plain") and prints one line per fact the parent checks: "started", every
// state change with the deadlines it follows, and a change of role. It
// closes the client when its standard input closes.
func sharedChildMain() int {
	mode := os.Getenv(sharedChildEnv)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	var c *Client
	ready := make(chan struct{})
	opts := []Option{fixedFingerprint(testFingerprint()),
		WithRetry(Retry{Attempts: 1, AttemptTimeout: time.Second, MinBackoff: 50 * time.Millisecond,
			MaxBackoff: 100 * time.Millisecond, RenewBackoff: 200 * time.Millisecond}),
		WithEventHandler(func(e Event) {
			if e.Type != EventStateChanged || e.Previous == Idle {
				return // Start's own change is in the "started" line
			}
			<-ready
			st := c.Status()
			say("state %s expiry=%d grace=%d", e.State, st.SessionExpiry.UnixNano(), st.GraceDeadline.UnixNano())
		}),
	}
	if mode != "plain" {
		opts = append(opts, WithSharedSession(SharedSession{EndOnLastClose: mode == "shared-end"}))
	}
	lic := os.Getenv(sharedChildLicense)
	if lic == "" {
		lic = testLicense
	}
	var err error
	c, err = New(Config{ServerURL: os.Getenv(childURL), APIKey: os.Getenv(childKey),
		ServerPublicKey: os.Getenv(childPub), ProductGUID: testProduct, LicenseKey: lic,
		StateDir: os.Getenv(childState)}, opts...)
	close(ready)
	if err == nil {
		err = c.Start(context.Background())
	}
	if err != nil {
		say("error %v", err)
		return 1
	}
	sh := c.Shared()
	say("started role=%s start=%s state=%s", sh.Role, sh.Start, c.Status().State)

	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() { // report a change of role
		defer close(polled)
		role := sh.Role
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if r := c.Shared().Role; r != role {
				role = r
				say("role %s", r)
			}
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	close(stop)
	<-polled
	if err := c.Close(context.Background()); err != nil {
		say("close error %v", err)
		return 1
	}
	return 0
}

// proc is a running shared-mode child and what it has printed.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced at each new line
	eof   chan struct{}
}

// startProc starts a child in mode on dir, for licence lic ("" = the
// default test licence), and waits for its "started" line.
func startProc(t *testing.T, mode string, srv *licensetest.Server, dir, lic string) *proc {
	t.Helper()
	p := spawnProc(t, mode, srv, dir, lic)
	p.waitFor("started ", 20*time.Second)
	return p
}

// spawnProc starts a child without waiting for it.
func spawnProc(t *testing.T, mode string, srv *licensetest.Server, dir, lic string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sharedChildEnv+"="+mode, childURL+"="+srv.URL, childKey+"="+srv.Info().APIKey,
		childPub+"="+srv.Info().PublicKey.EncodeBase64(), childState+"="+dir, sharedChildLicense+"="+lic,
		// The race detector otherwise sleeps a second at every exit.
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{t: t, cmd: cmd, stdin: stdin, more: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		defer close(p.eof)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.eof
		_ = p.cmd.Wait()
	})
	return p
}

// waitFor waits up to d for a line starting with prefix and returns it.
// d = 0 means the line must be there already.
func (p *proc) waitFor(prefix string, d time.Duration) string {
	p.t.Helper()
	if d == 0 {
		d = time.Nanosecond
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for seen := 0; ; {
		p.mu.Lock()
		lines, more := p.lines, p.more
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if strings.HasPrefix(lines[seen], "error ") {
				p.t.Fatalf("child: %s", lines[seen])
			}
			if strings.HasPrefix(lines[seen], prefix) {
				return lines[seen]
			}
		}
		select {
		case <-more:
		case <-p.eof:
			p.t.Fatalf("child exited without %q; said %q", prefix, p.all())
		case <-timer.C:
			p.t.Fatalf("no %q from child within %s; said %q", prefix, d, p.all())
		}
	}
}

func (p *proc) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// states returns the "state ..." lines.
func (p *proc) states() []string {
	var out []string
	for _, l := range p.all() {
		if strings.HasPrefix(l, "state ") {
			out = append(out, l)
		}
	}
	return out
}

// close closes the child's standard input and waits for a clean exit.
func (p *proc) close() {
	p.t.Helper()
	require.NoError(p.t, p.stdin.Close())
	<-p.eof
	require.NoError(p.t, p.cmd.Wait(), "child said %q", p.all())
}

func sharedServer(t *testing.T, ls ...licensetest.License) *licensetest.Server {
	t.Helper()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	for _, l := range ls {
		require.NoError(t, srv.AddLicense(l))
	}
	return srv
}

// waitUntil polls cond every 20 ms for up to d.
func waitUntil(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, d, 20*time.Millisecond, what)
}

// TestSharedTenProcesses starts ten processes of one licence at once: one
// begin_session in total, one seat, all Active; the last to close ends the
// session (EndOnLastClose).
func TestSharedTenProcesses(t *testing.T) {
	srv := sharedServer(t, licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Minute, GracePeriod: time.Minute, Features: "pro"})
	dir := t.TempDir()
	procs := make([]*proc, 10)
	for i := range procs {
		procs[i] = spawnProc(t, "shared-end", srv, dir, "")
	}
	roles := map[string]int{}
	for _, p := range procs {
		line := p.waitFor("started ", 30*time.Second)
		assert.Contains(t, line, "state=Active")
		f := strings.Fields(line)
		roles[f[1]+" "+f[2]]++
	}
	assert.Equal(t, map[string]int{"role=Renewer start=Began": 1, "role=Follower start=Followed": 9}, roles)
	assert.Equal(t, 1, srv.Count(wire.Begin), "begin_session calls")
	assert.Equal(t, 1, srv.Count(wire.Register), "register_instance calls")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense), "seats")

	for _, p := range procs {
		p.close()
	}
	assert.Equal(t, 1, srv.Count(wire.End), "the last process ended the session")
	assert.Equal(t, 0, srv.SeatsInUse(testProduct, testLicense))
	assert.Equal(t, 1, srv.Count(wire.Begin))
}

// TestSharedRenewerKilled kills the renewer with SIGKILL: a follower takes
// over, extends continue, no session begins again and nobody lapses. Then
// the new renewer exits cleanly and hands over to the last process.
func TestSharedRenewerKilled(t *testing.T) {
	srv := sharedServer(t, licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: 3 * time.Second, GracePeriod: time.Minute})
	dir := t.TempDir()
	renewer := startProc(t, "shared", srv, dir, "")
	assert.Contains(t, renewer.waitFor("started ", 0), "role=Renewer start=Began")
	followers := []*proc{startProc(t, "shared", srv, dir, ""), startProc(t, "shared", srv, dir, "")}
	for _, f := range followers {
		assert.Contains(t, f.waitFor("started ", 0), "role=Follower start=Followed")
	}
	waitUntil(t, 10*time.Second, func() bool { return srv.Count(wire.Extend) >= 1 }, "the renewer extends")

	require.NoError(t, renewer.cmd.Process.Kill())
	<-renewer.eof
	_ = renewer.cmd.Wait()
	extends := srv.Count(wire.Extend)

	// One follower becomes the renewer and keeps extending.
	waitUntil(t, 10*time.Second, func() bool {
		n := 0
		for _, f := range followers {
			if slices.Contains(f.all(), "role Renewer") {
				n++
			}
		}
		return n == 1
	}, "one follower becomes the renewer")
	waitUntil(t, 10*time.Second, func() bool { return srv.Count(wire.Extend) >= extends+2 }, "extends continue")

	assert.Equal(t, 1, srv.Count(wire.Begin), "no second begin_session")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense))
	for _, f := range followers {
		assert.Empty(t, f.states(), "a follower never left Active")
	}

	// The new renewer exits cleanly: it hands over to the last process.
	next, last := followers[0], followers[1]
	if !slices.Contains(next.all(), "role Renewer") {
		next, last = last, next
	}
	next.close()
	last.waitFor("role Renewer", 10*time.Second)
	extends = srv.Count(wire.Extend)
	waitUntil(t, 10*time.Second, func() bool { return srv.Count(wire.Extend) > extends }, "extends continue after the hand-over")
	assert.Empty(t, last.states(), "the last process never left Active")
	last.close()
	assert.Equal(t, 1, srv.Count(wire.Begin), "no second begin_session")
	assert.Equal(t, 0, srv.Count(wire.End), "the session is left to lapse by default")
}

// TestSharedTwoLicences runs two licences of one product in one directory:
// they never share.
func TestSharedTwoLicences(t *testing.T) {
	const other = "LK-TEST-OTHER"
	srv := sharedServer(t,
		licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Minute},
		licensetest.License{ProductGUID: testProduct, Key: other, SessionDuration: time.Minute})
	dir := t.TempDir()
	a := startProc(t, "shared", srv, dir, "")
	b := startProc(t, "shared", srv, dir, other)
	assert.Contains(t, a.waitFor("started ", 0), "role=Renewer start=Began")
	assert.Contains(t, b.waitFor("started ", 0), "role=Renewer start=Began", "another licence's process is not a follower")
	assert.Equal(t, 2, srv.Count(wire.Begin))
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense))
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, other))
	a.close()
	b.close()
}

// TestSharedAndPlainCoexist runs a shared and a non-shared client of one
// licence in one directory. As documented, they coexist: the non-shared
// client keeps its own slot and session, the shared ones share theirs, and
// neither disturbs the other.
func TestSharedAndPlainCoexist(t *testing.T) {
	srv := sharedServer(t, licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Minute})
	dir := t.TempDir()
	s1 := startProc(t, "shared", srv, dir, "")
	plain := startProc(t, "plain", srv, dir, "")
	s2 := startProc(t, "shared", srv, dir, "")
	assert.Contains(t, s1.waitFor("started ", 0), "role=Renewer start=Began")
	assert.Contains(t, plain.waitFor("started ", 0), "role=NotShared start=None state=Active")
	assert.Contains(t, s2.waitFor("started ", 0), "role=Follower start=Followed")
	assert.Equal(t, 2, srv.Count(wire.Begin), "one shared session and one of its own")
	assert.Equal(t, 2, srv.SeatsInUse(testProduct, testLicense))

	plain.close()
	assert.Equal(t, 1, srv.Count(wire.End), "the plain client ends its own session only")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense))
	s3 := startProc(t, "shared", srv, dir, "")
	assert.Contains(t, s3.waitFor("started ", 0), "role=Follower start=Followed")
	for _, p := range []*proc{s1, s2, s3} {
		p.close()
	}
}

// TestSharedOffline takes the server down while three processes run: all
// reach Grace at the same deadline and Expired at the same deadline; a
// fourth process started meanwhile is usable on the shared allowance; when
// the server returns, the renewer brings all back to Active.
func TestSharedOffline(t *testing.T) {
	srv := sharedServer(t, licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: 2 * time.Second, GracePeriod: 4 * time.Second})
	dir := t.TempDir()
	procs := []*proc{startProc(t, "shared", srv, dir, "")}
	procs = append(procs, startProc(t, "shared", srv, dir, ""), startProc(t, "shared", srv, dir, ""))
	srv.SetDown(true)

	for _, p := range procs {
		p.waitFor("state Grace", 15*time.Second)
	}
	late := startProc(t, "shared", srv, dir, "")
	assert.Contains(t, late.waitFor("started ", 0), "role=Follower start=Offline state=Grace",
		"a process started offline uses the shared allowance")
	lateGrace, _ := strings.CutPrefix(procs[0].waitFor("state Grace", 0), "state Grace ")

	deadlines := map[string]map[string]int{} // state -> deadlines line -> processes
	for _, want := range []string{"Grace", "Expired"} {
		deadlines[want] = map[string]int{}
		for _, p := range procs {
			line := p.waitFor("state "+want, 15*time.Second)
			deadlines[want][strings.TrimPrefix(line, "state "+want+" ")]++
		}
	}
	for st, m := range deadlines {
		assert.Len(t, m, 1, "all three follow the same deadlines into %s: %v", st, m)
	}
	late.waitFor("state Expired "+lateGrace, 15*time.Second)
	begins := srv.Count(wire.Begin)

	srv.SetDown(false)
	late.waitFor("state Active", 15*time.Second)
	for _, p := range procs {
		var got []string
		waitUntil(t, 15*time.Second, func() bool {
			got = nil
			for _, l := range p.states() {
				got = append(got, strings.Fields(l)[1])
			}
			return len(got) >= 3 && got[len(got)-1] == "Active"
		}, "back to Active")
		assert.Equal(t, []string{"Grace", "Expired", "Active"}, got)
	}
	assert.LessOrEqual(t, srv.Count(wire.Begin)-begins, 1, "one renewer brings everyone back")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense))
	for _, p := range append(procs, late) {
		p.close()
	}
}

// TestSharedConfig checks New's checks of shared mode and that explicit
// session calls are refused in it.
func TestSharedConfig(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)
	cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense}
	_, err := New(cfg, WithSharedSession(SharedSession{}))
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "requires StateDir")
	cfg.StateDir = t.TempDir()
	_, err = New(cfg, WithSharedSession(SharedSession{RefreshInterval: -1}), WithStateStore(&MemoryStateStore{}))
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "WithStateStore")
	assert.ErrorContains(t, err, "RefreshInterval is negative")

	c, err := New(cfg, WithSharedSession(SharedSession{}))
	require.NoError(t, err)
	assert.Equal(t, SharedStatus{}, c.Shared(), "before Start")
	ctx := context.Background()
	assert.ErrorIs(t, c.BeginSession(ctx), errSharedManual)
	assert.ErrorIs(t, c.EndSession(ctx), errSharedManual)
	require.NoError(t, c.Close(ctx))
	assert.Equal(t, 0, srv.Count(""))
}

func TestSharedRefreshInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ set, session, want time.Duration }{
		{0, time.Hour, time.Second},
		{0, 3 * time.Second, 300 * time.Millisecond},
		{5 * time.Second, time.Hour, 5 * time.Second},
		{0, 50 * time.Millisecond, 10 * time.Millisecond},
		{time.Millisecond, time.Hour, 10 * time.Millisecond},
	} {
		s := &shared{cfg: SharedSession{RefreshInterval: tc.set}}
		assert.Equal(t, tc.want, s.refresh(tc.session), "refresh(%s) with %s", tc.session, tc.set)
	}
}

// TestSharedRefusalProcesses revokes the licence while three processes
// share its session: the renewer's extend and its one fresh begin are
// refused, and every process reaches Refused; a process started afterwards,
// with the server down, is not usable.
func TestSharedRefusalProcesses(t *testing.T) {
	srv := sharedServer(t, licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: 2 * time.Second, GracePeriod: time.Minute})
	dir := t.TempDir()
	procs := []*proc{startProc(t, "shared", srv, dir, "")}
	procs = append(procs, startProc(t, "shared", srv, dir, ""), startProc(t, "shared", srv, dir, ""))
	require.NoError(t, srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
	for _, p := range procs {
		p.waitFor("state Refused", 15*time.Second)
	}
	assert.Equal(t, 2, srv.Count(wire.Begin), "the first begin and the renewer's fresh begin only")
	for _, p := range procs {
		p.close()
	}

	srv.SetDown(true)
	late := spawnProc(t, "shared", srv, dir, "")
	<-late.eof
	require.Error(t, late.cmd.Wait(), "an offline start after the refusal succeeded: %q", late.all())
	assert.Contains(t, strings.Join(late.all(), "\n"), "refused this licence", "the error says why")
}
