package license

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/statefile"
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
	return slices.DeleteFunc(p.all(), func(l string) bool { return !strings.HasPrefix(l, "state ") })
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

// Shared mode with the integrity features of the state: the anti-rollback
// record, persisted refusals and clock-rollback detection. The clients are
// in-process (one synctest bubble, real files and real OS locks), so that
// hours pass in milliseconds; the tests above run real processes.

// TestSharedRestoredStateAndClockSetBack: with grace used up, restoring an
// older copy of the state directory (shared file included) and setting the
// clock back grants nothing, neither to the process that would renew nor to
// a follower: the shared file's anti-rollback record is ahead of it. An
// online start still works and brings the record and the state together.
func TestSharedRestoredStateAndClockSetBack(t *testing.T) {
	t.Run("record-dir", func(t *testing.T) { sharedRestoredStateAndClockSetBack(t, true) })
	t.Run("default-location", func(t *testing.T) { sharedRestoredStateAndClockSetBack(t, false) })
}

func sharedRestoredStateAndClockSetBack(t *testing.T, recordDir bool) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, backup, records := t.TempDir(), t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opts := sharedIn(records)
		if !recordDir {
			opts = []Option{WithSharedSession(SharedSession{})} // under os.UserConfigDir, which TestMain sets
		}

		r := e.mustStartIn(dir, opts...)
		f := e.mustStartIn(dir, opts...)
		require.Equal(t, Renewer, r.Shared().Role)
		require.Equal(t, Follower, f.Shared().Role)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = f.Close(ctx)
		_ = r.Close(ctx)
		copyDir(t, dir, backup) // the copy a restore brings back
		if recordDir {
			files, _ := filepath.Glob(filepath.Join(records, "rb-*[0-9a-f]"))
			require.Len(t, files, 1, "one record for the shared file")
		}

		// Offline until grace is used up.
		time.Sleep(2 * time.Hour)
		c, err := e.startIn(dir, opts...)
		require.ErrorIs(t, err, ErrGraceExpired)
		_ = c.Close(ctx)

		// The attack: restore the copy, set the clock back into the copy's
		// session.
		copyDir(t, backup, dir)
		e.wall.jump(-2 * time.Hour)
		begins := e.srv.Count(wire.Begin)
		r, err = e.startIn(dir, opts...)
		require.Error(t, err, "a restored shared state plus a clock set back was usable")
		assert.ErrorIs(t, err, ErrStateRollback)
		assert.False(t, r.Valid())
		assert.Equal(t, Follower, r.Shared().Role, "a failed Start gives up the renewer lock")
		_ = r.Close(ctx)

		// A follower: another process holds the renewer lock (one still
		// starting, say), and this one checks the record too.
		copyDir(t, backup, dir)
		holder, err := statefile.JoinShared(ctx, dir, statefile.SharedName(testProduct, testLicense))
		require.NoError(t, err)
		lead, err := holder.TryLead()
		require.NoError(t, err)
		require.True(t, lead)
		f, err = e.startIn(dir, opts...)
		require.Error(t, err, "a follower of a restored shared state was usable")
		assert.ErrorIs(t, err, ErrStateRollback)
		assert.False(t, f.Valid())
		assert.Equal(t, Follower, f.Shared().Role)
		// The same copy written again (a new file): still restored.
		copyDir(t, backup, dir)
		require.NoError(t, f.lock(ctx))
		f.refreshSharedLocked(false)
		allowed, why := f.offlineAllowanceLocked()
		f.unlock()
		assert.False(t, allowed, "a re-read of the restored copy made it current")
		assert.ErrorIs(t, why, ErrStateRollback)
		_ = f.Close(ctx)
		require.NoError(t, holder.Release())

		// Saves after the detection do not make the copy current: a
		// second offline start without a new restore grants nothing.
		r, err = e.startIn(dir, opts...)
		require.Error(t, err)
		assert.False(t, r.Valid())
		_ = r.Close(ctx)
		assert.Equal(t, begins, e.srv.Count(wire.Begin), "the server is down")

		// Online start still works; afterwards the state is current again.
		e.wall.jump(2 * time.Hour)
		e.srv.SetDown(false)
		r = e.mustStartIn(dir, opts...)
		assert.Equal(t, Active, r.Status().State)
		assert.Equal(t, StartBegan, r.Shared().Start)
		f = e.mustStartIn(dir, opts...)
		assert.Equal(t, StartFollowed, f.Shared().Start)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = f.Close(ctx)
		_ = r.Close(ctx)
		r, err = e.startIn(dir, opts...)
		require.NoError(t, err, "after an online start the shared state is current again")
		assert.True(t, r.Valid())
		_ = r.Close(ctx)
	})
}

// TestSharedStateRestoredWhileFollowing: a copy restored under running
// processes is not taken by a follower (it keeps the newer state it
// follows).
func TestSharedStateRestoredWhileFollowing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		e, dir, opts := newSharedEnv(t)
		r := e.mustStartIn(dir, opts...)
		f := e.mustStartIn(dir, opts...)
		path := r.Shared().Path
		old, err := os.ReadFile(path)
		require.NoError(t, err)
		time.Sleep(8 * time.Minute) // the renewer extends at least once
		synctest.Wait()
		require.Greater(t, e.srv.Count(wire.Extend), 0)
		want := f.Status().SessionExpiry
		require.True(t, r.Status().SessionExpiry.Equal(want))

		require.NoError(t, os.WriteFile(path, old, 0o600))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.True(t, want.Equal(f.Status().SessionExpiry), "the follower took the restored copy: %v, want %v",
			f.Status().SessionExpiry, want)
		assert.Equal(t, Active, f.Status().State)
		_ = f.Close(ctx)
		_ = r.Close(ctx)
	})
}

// TestSharedRefusalReachesEveryProcess: when the renewer is finally refused
// (its extend refused, then its one fresh begin), the refusal is written to
// the shared state; every follower reaches Refused within its refresh
// interval, with Done closed. A process started meanwhile asks the server
// itself (the refused renewer no longer holds the renewer lock) and is
// refused at once. After Close, no offline restart of any process is
// usable.
func TestSharedRefusalReachesEveryProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		e, dir, opts := newSharedEnv(t, WithSharedSession(SharedSession{RefreshInterval: 2 * time.Second}))
		r := e.mustStartIn(dir, opts...)
		followers := make([]*Client, 3)
		for i := range followers {
			followers[i] = e.mustStartIn(dir, opts...)
			require.Equal(t, Follower, followers[i].Shared().Role)
		}

		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		<-r.Done()
		require.ErrorIs(t, r.Err(), ErrRevoked)
		require.Equal(t, Refused, r.Status().State)
		time.Sleep(2*time.Second + time.Millisecond)
		synctest.Wait()
		for i, f := range followers {
			assert.Equal(t, Refused, f.Status().State, "follower %d", i)
			assert.False(t, f.Valid(), "follower %d", i)
			select {
			case <-f.Done():
				assert.ErrorIs(t, f.Err(), ErrRefused, "follower %d", i)
			default:
				t.Errorf("follower %d: Done still open after the renewer's refusal", i)
			}
		}
		assert.Equal(t, 2, e.srv.Count(wire.Begin), "the first begin and the renewer's fresh begin only")

		// A process started now: it asks the server once, and is refused.
		late, err := e.startIn(dir, opts...)
		assert.ErrorIs(t, err, ErrRevoked)
		assert.False(t, late.Valid())
		assert.Equal(t, 3, e.srv.Count(wire.Begin))
		_ = late.Close(ctx)

		for _, f := range followers {
			_ = f.Close(ctx)
		}
		_ = r.Close(ctx)

		// Offline restarts of two processes: neither is usable.
		e.srv.SetDown(true)
		for i := range 2 {
			c, err := e.startIn(dir, opts...)
			require.Error(t, err, "offline restart %d after a refusal was usable", i)
			assert.ErrorIs(t, err, ErrRefused, "restart %d", i)
			assert.False(t, c.Valid())
		}
	})
}

// TestRestoredStateStaysRestoredAfterSave: a copy from before a refusal is
// restored (the clock is not touched). It is found behind its record and
// then saved again (Close saves, moving the generation past the record),
// yet the next offline start still grants nothing: the restored deadlines
// were not kept.
func TestRestoredStateStaysRestoredAfterSave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, backup, records := t.TempDir(), t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opt := WithRollbackRecordDir(records)
		c := e.mustStartIn(dir, opt)
		e.srv.SetDown(true)
		_ = c.Close(ctx)
		copyDir(t, dir, backup)
		e.srv.SetDown(false)
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		c, err := e.startIn(dir, opt)
		require.ErrorIs(t, err, ErrRevoked)
		_ = c.Close(ctx)

		copyDir(t, backup, dir)
		e.srv.SetDown(true)
		c, err = e.startIn(dir, opt)
		require.Error(t, err)
		// The licence's refusal is kept outside StateDir: it outlives the
		// restored copy, which is also found behind its record.
		assert.ErrorIs(t, err, ErrRefused)
		assert.True(t, c.store.restored, "the copy is found behind its record")
		_ = c.Close(ctx) // saves
		c, err = e.startIn(dir, opt)
		require.Error(t, err, "the restored copy became current through a save")
		assert.False(t, c.Valid())
		_ = c.Close(ctx)
	})
}

// TestSharedClockSetBack: the shared state's high-water mark guards every
// process: with the clock set back, neither the process that would renew
// nor a follower resumes the session or gets grace.
func TestSharedClockSetBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		e, dir, opts := newSharedEnv(t)
		r := e.mustStartIn(dir, opts...)
		time.Sleep(20 * time.Minute) // extends, and high-water saves
		e.srv.SetDown(true)
		_ = r.Close(ctx)
		e.wall.jump(-30 * time.Minute)

		holder, err := statefile.JoinShared(ctx, dir, statefile.SharedName(testProduct, testLicense))
		require.NoError(t, err)
		lead, err := holder.TryLead()
		require.NoError(t, err)
		require.True(t, lead)
		f, err := e.startIn(dir, opts...)
		assert.ErrorIs(t, err, ErrClockRollback, "follower")
		assert.False(t, f.Valid())
		_ = f.Close(ctx)
		require.NoError(t, holder.Release())

		r, err = e.startIn(dir, opts...)
		assert.ErrorIs(t, err, ErrClockRollback, "renewer")
		assert.False(t, r.Valid())
		_ = r.Close(ctx)
	})
}

// The child process: TestMain runs childMain when childEnv is set.
const (
	childEnv   = "LICENSEKIT_TEST_CHILD" // "close" or "crash"
	childURL   = "LICENSEKIT_TEST_CHILD_URL"
	childKey   = "LICENSEKIT_TEST_CHILD_KEY"
	childPub   = "LICENSEKIT_TEST_CHILD_PUB"
	childState = "LICENSEKIT_TEST_CHILD_DIR"
	childLic   = "LICENSEKIT_TEST_CHILD_LICENSE" // default testLicense
)

// childMain starts a client on the state directory it is given, reports
// its slot, waits for its standard input to close, then either closes the
// client or exits at once, as a crashed process would.
func childMain() int {
	lic := os.Getenv(childLic)
	if lic == "" {
		lic = testLicense
	}
	c, err := New(Config{ServerURL: os.Getenv(childURL), APIKey: os.Getenv(childKey),
		ServerPublicKey: os.Getenv(childPub), ProductGUID: testProduct, LicenseKey: lic,
		StateDir: os.Getenv(childState)}, fixedFingerprint(testFingerprint()))
	if err == nil {
		err = c.Start(context.Background())
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("started", filepath.Base(c.store.slot.Path()))
	_, _ = io.Copy(io.Discard, os.Stdin)
	if os.Getenv(childEnv) == "crash" {
		return 0 // no Close: the session stays live, the OS drops the lock
	}
	if err := c.Close(context.Background()); err != nil {
		return 1
	}
	return 0
}

// child starts the test binary as a second process running childMain.
func child(t *testing.T, mode string, srv *licensetest.Server, dir string, env ...string) (slot string, stop func() error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childURL+"="+srv.URL, childKey+"="+srv.Info().APIKey,
		childPub+"="+srv.Info().PublicKey.EncodeBase64(), childState+"="+dir)
	cmd.Env = append(cmd.Env, env...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "started "), "child said %q", line)
	return strings.TrimSpace(strings.TrimPrefix(line, "started ")), func() error {
		stdin.Close()
		return cmd.Wait()
	}
}

// TestTwoProcessesShareStateDir runs a second OS process on the same state
// directory: each gets its own slot and its own session, neither corrupts
// the other's state, and a crashed process's slot and session are taken
// over and cleaned up by the next client.
func TestTwoProcessesShareStateDir(t *testing.T) {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Hour, GracePeriod: time.Hour}))
	dir := t.TempDir()
	newClient := func() *Client {
		c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}, fixedFingerprint(testFingerprint()))
		require.NoError(t, err)
		return c
	}

	// A live child holds the first slot; this process gets the second.
	slot, stop := child(t, "close", srv, dir)
	assert.Equal(t, stateBase, slot)
	c := newClient()
	require.NoError(t, c.Start(context.Background()))
	assert.Equal(t, stateBase+"-1", filepath.Base(c.store.slot.Path()))
	assert.Equal(t, 2, srv.SeatsInUse(testProduct, testLicense), "two processes, two sessions")
	require.NoError(t, stop())
	require.NoError(t, c.Close(context.Background()))
	assert.Equal(t, 0, srv.SeatsInUse(testProduct, testLicense))
	for _, name := range []string{stateBase, stateBase + "-1"} {
		_, err := os.Stat(filepath.Join(dir, name))
		assert.NoError(t, err, "both slots keep their state")
	}

	// A child that crashes leaves a live session in the first slot; the next
	// client takes the slot over and ends the orphan.
	_, stop = child(t, "crash", srv, dir)
	require.NoError(t, stop())
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense), "the crashed process's session is still live")
	ends := srv.Count(wire.End)
	c = newClient()
	require.NoError(t, c.Start(context.Background()))
	assert.Equal(t, stateBase, filepath.Base(c.store.slot.Path()), "a dead process's lock is gone")
	assert.Equal(t, ends+1, srv.Count(wire.End), "the orphan was ended")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense))
	require.NoError(t, c.Close(context.Background()))
}

// TestSharedReloadKeepsTheNewerWord: a follower refuses a shared state with
// a lower generation than one it has seen (a copy restored under running
// processes), but not when that state carries newer news: a later send (a
// renewer that started its state afresh) or a newer refusal. Otherwise a
// follower would keep an old session while the licence moved on, or miss a
// refusal.
func TestSharedReloadKeepsTheNewerWord(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	later := &refusalRecord{At: t0.Add(2 * time.Hour), Endpoint: wire.Begin}
	for _, tc := range []struct {
		name string
		p    persisted
		want bool
	}{
		{"restored copy", persisted{Generation: 5, Sent: t0}, false},
		{"restored copy, older refusal", persisted{Generation: 5, Sent: t0, Refusal: &refusalRecord{At: t0.Add(-time.Hour)}}, false},
		{"renewer started afresh", persisted{Generation: 2, Sent: t0.Add(time.Hour)}, true},
		{"newer refusal", persisted{Generation: 2, Sent: t0.Add(-time.Hour), Refusal: later}, true},
		{"newer generation", persisted{Generation: 11, Sent: t0}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh, err := statefile.JoinShared(context.Background(), t.TempDir(), "s")
			require.NoError(t, err)
			defer sh.Release()
			lead, err := sh.TryLead()
			require.NoError(t, err)
			require.True(t, lead)
			key := make([]byte, 32)
			blob, err := sealState(key, &tc.p)
			require.NoError(t, err)
			require.NoError(t, sh.Write(blob))

			s := &store{shared: sh, keys: [][]byte{key}, log: slog.New(slog.DiscardHandler),
				rb: &rollbackGuard{seen: 10, sent: t0}}
			cur := &persisted{Generation: 10, Sent: t0, Refusal: &refusalRecord{At: t0.Add(-time.Hour)}}
			got := s.reload(true, cur)
			if !tc.want {
				assert.Nil(t, got, "a state behind what was seen was taken")
				return
			}
			require.NotNil(t, got, "a state with newer news was refused")
			assert.Equal(t, tc.p.Generation, got.Generation)
			assert.Equal(t, uint64(max(10, tc.p.Generation)), s.rb.seen)
		})
	}
}

// TestFollowerNeverWritesTheRecord: in shared mode only the renewer writes,
// and locks, the anti-rollback record. A follower that took the lock (say,
// on finding the record missing) would leave the renewer unable to write
// it, and the renewer's saves would then grant no offline time.
func TestFollowerNeverWritesTheRecord(t *testing.T) {
	sh, err := statefile.JoinShared(context.Background(), t.TempDir(), "s")
	require.NoError(t, err)
	defer sh.Release()
	recDir := t.TempDir()
	s := &store{shared: sh, keys: [][]byte{make([]byte, 32)}, log: slog.New(slog.DiscardHandler),
		rb: &rollbackGuard{dir: recDir, name: "record"}}
	p := &persisted{Generation: 3}

	s.writeRecord(p)
	assert.Nil(t, s.rb.f, "a follower took the record's lock")
	assert.False(t, p.Unanchored)
	entries, err := os.ReadDir(recDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "a follower wrote the record")

	lead, err := sh.TryLead()
	require.NoError(t, err)
	require.True(t, lead)
	s.writeRecord(p)
	require.NotNil(t, s.rb.f, "the renewer did not take the record's lock")
	defer s.releaseSharedRecord()
	assert.False(t, p.Unanchored)
	entries, err = os.ReadDir(recDir)
	require.NoError(t, err)
	assert.NotEmpty(t, entries, "the renewer did not write the record")
}
