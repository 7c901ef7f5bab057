package admin_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/admin"
)

func TestParseScenario(t *testing.T) {
	t.Parallel()
	text := `# a comment

at 0s    license product=app key=K-1 session=2m grace=10m seats=1 features="pro export"  # trailing comment
at 5m    down refuse for=30s
at 5m10s fault drop endpoint=extend n=2
at 2h    revoke product=app key=K-1
`
	sc, err := admin.ParseScenario("t.txt", strings.NewReader(text))
	require.NoError(t, err)
	assert.Equal(t, "t.txt", sc.Name)
	type step struct {
		line int
		at   time.Duration
		cmd  string
		text string
	}
	var got []step
	for _, s := range sc.Steps {
		got = append(got, step{s.Line, s.At, s.Command, s.Text})
	}
	assert.Equal(t, []step{
		{3, 0, "license", "license product=app key=K-1 session=2m grace=10m seats=1 features=pro export"},
		{4, 5 * time.Minute, "down", "down refuse for=30s"},
		{5, 5*time.Minute + 10*time.Second, "fault", "fault drop endpoint=extend n=2"},
		{4, 5*time.Minute + 30*time.Second, "up", "up (end of down for=30s)"},
		{6, 2 * time.Hour, "revoke", "revoke product=app key=K-1"},
	}, got)
}

func TestParseScenarioErrors(t *testing.T) {
	t.Parallel()
	text := `at 0s up
at 5m dwn
at 1m up
after 2m up
at soon up
at 6m down on=yes
at 6m down refuse reset
at 6m fault
at 6m latency d=1s d=2s
at 6m license product="app
at 6m revoke product=app
at -1s up
`
	_, err := admin.ParseScenario("bad.txt", strings.NewReader(text))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`scenario bad.txt line 2: unknown command "dwn" (accepted: clear, content_type, control, down, expire, fail, fault, latency, license, reinstate, retry_after, revoke, skew, up)`,
		`line 3: at 1m comes before the previous step (at 5m0s)`,
		`line 4: want "at DURATION COMMAND [name=value ...]"`,
		`line 5: "soon" is not a duration`,
		`line 6: down: on: unknown value "yes" (accepted: 1, 0, true, false)`,
		`line 7: down: unexpected word "reset"`,
		`line 8: fault: kind is required (accepted: fail, truncate`,
		`line 9: latency: d given twice`,
		`line 10: unterminated quote`,
		`line 11: revoke: key is required`,
		`line 12: at -1s is negative`,
	} {
		assert.Contains(t, msg, want)
	}
	var se *admin.ScenarioError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 2, se.Line)

	_, err = admin.ParseScenario("empty.txt", strings.NewReader("# nothing\n"))
	assert.ErrorContains(t, err, "no steps")
}

// TestRunScenarioFollowsTheServerClock: steps wait for the server's clock
// (here an injected one that jumps), not for a timer's full length.
func TestRunScenarioFollowsTheServerClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var offset atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		s := licensetest.NewUnstartedServer(&licensetest.Config{Clock: clock})
		defer s.Close()
		sc, err := admin.ParseScenario("jump", strings.NewReader("at 0s license product=p key=k\nat 1h down 503\nat 1h revoke product=p key=nope\n"))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- admin.RunScenario(context.Background(), s, sc) }()
		synctest.Wait()
		p := admin.LatestScenario(s)
		require.NotNil(t, p)
		assert.True(t, p.Running)
		assert.Equal(t, 1, p.Next)
		_, ok := s.License("p", "k")
		assert.True(t, ok)

		time.Sleep(10 * time.Minute)
		assert.Equal(t, 1, admin.LatestScenario(s).Next, "the step at 1h has not run after 10 minutes")
		offset.Store(int64(time.Hour)) // the machine slept, say
		time.Sleep(time.Second)
		synctest.Wait()
		err = <-done
		var se *admin.ScenarioError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 3, se.Line)
		assert.ErrorIs(t, err, licensetest.ErrUnknownLicense)
		p = admin.LatestScenario(s)
		assert.False(t, p.Running)
		assert.Equal(t, 3, p.Next)
		assert.True(t, p.Steps[1].Done)
		assert.Contains(t, p.Steps[2].Error, "unknown license")
		assert.Contains(t, p.Error, "line 3")

		// The server is down in 503 mode: requests are answered 503 through
		// Transport too, and recorded.
		resp, err := (&httpClient{s}).post(licensetest.Begin)
		require.NoError(t, err)
		assert.Equal(t, 503, resp)
		reqs := s.Requests()
		require.Len(t, reqs, 1)
		assert.True(t, reqs[0].Down)

		// A run stops when its context ends.
		sc2, err := admin.ParseScenario("stop", strings.NewReader("at 0s up\nat 1h down\n"))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { done <- admin.RunScenario(ctx, s, sc2) }()
		time.Sleep(time.Minute)
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		assert.False(t, admin.LatestScenario(s).Running)
	})
}

// httpClient posts an empty request through the server's Transport.
type httpClient struct{ s *licensetest.Server }

func (c *httpClient) post(endpoint string) (int, error) {
	hc := &http.Client{Transport: c.s.Transport()}
	resp, err := hc.Post(c.s.URL+"/"+endpoint, "application/json", strings.NewReader(`{}`))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// reasonName names the category of a state change's reason.
func reasonName(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range []struct {
		err  error
		name string
	}{
		{license.ErrRevoked, "revoked"}, {license.ErrExpired, "licence expired"}, {license.ErrSeatLimit, "seat limit"},
		{license.ErrGraceExpired, "grace expired"}, {license.ErrUnreachable, "unreachable"},
		{license.ErrRefused, "refused"}, {license.ErrClosed, "closed"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "other"
}

// timeline collects scenario steps and client state changes, with their
// times from the start of the run.
type timeline struct {
	mu      sync.Mutex
	start   time.Time
	entries []entry
}

type entry struct {
	at   time.Duration
	step bool // steps come first at equal times
	text string
}

func (tl *timeline) add(at time.Time, step bool, format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.entries = append(tl.entries, entry{at.Sub(tl.start), step, fmt.Sprintf(format, args...)})
}

// String renders the entries in time order, steps before client changes
// at the same time.
func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	slices.SortStableFunc(tl.entries, func(a, b entry) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		switch {
		case a.step && !b.step:
			return -1
		case b.step && !a.step:
			return 1
		}
		return 0
	})
	var b strings.Builder
	for _, e := range tl.entries {
		fmt.Fprintf(&b, "%-10s %s\n", e.at.Round(time.Millisecond), e.text)
	}
	return b.String()
}

// TestScenarios runs a real license.Client through each scenario in
// testdata/scenarios, inside a synctest bubble, and compares the timeline
// of scenario steps and client state changes with the golden file beside
// it. go test -run TestScenarios -update rewrites the golden files.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			got := runScenario(t, file)
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), got, "timeline of %s (run with -update to accept)", file)
		})
	}
}

func runScenario(t *testing.T, file string) string {
	f, err := os.Open(file)
	require.NoError(t, err)
	sc, err := admin.ParseScenario(filepath.Base(file), f)
	f.Close()
	require.NoError(t, err)
	var out string
	synctest.Test(t, func(t *testing.T) {
		s := licensetest.NewUnstartedServer(nil)
		defer s.Close()
		tl := &timeline{start: time.Now()}
		done := make(chan error, 1)
		go func() { done <- admin.RunScenario(context.Background(), s, sc) }()
		synctest.Wait() // the steps at 0s have run: the licence exists

		c, err := license.New(license.Config{
			ServerURL: s.URL, APIKey: s.Info().APIKey, ServerPublicKey: s.Info().PublicKey.EncodeBase64(),
			ProductGUID: "app", LicenseKey: "K-1",
		},
			license.WithRoundTripper(s.Transport()),
			license.WithStateStore(&license.MemoryStateStore{}),
			license.WithFingerprintSource(func(context.Context) (*fingerprint.Fingerprint, error) { return testkit.Fingerprint(), nil }),
			license.WithTestHooks(license.TestHooks{Rand: func() float64 { return 0.5 }}),
			license.WithEventHandler(func(e license.Event) {
				if e.Type != license.EventStateChanged {
					return
				}
				line := fmt.Sprintf("client  %s → %s", e.Previous, e.State)
				if r := reasonName(e.Reason); r != "" {
					line += " (" + r + ")"
				}
				tl.add(e.Time, false, "%s", line)
			}),
		)
		require.NoError(t, err)
		startErr := c.Start(context.Background())
		if startErr != nil {
			tl.add(time.Now(), false, "client  Start: %s", reasonName(startErr))
		}
		require.NoError(t, <-done)
		last := sc.Steps[len(sc.Steps)-1].At
		time.Sleep(time.Until(tl.start.Add(last + 30*time.Minute)))
		synctest.Wait()
		_ = c.Close(context.Background())
		synctest.Wait()

		// Merge the steps, as the server ran them, into the timeline.
		for _, st := range admin.LatestScenario(s).Steps {
			tl.add(st.Ran, true, "step    line %d: %s", st.Line, st.Text)
		}
		out = "# " + sc.Name + ": the scenario's steps and the client's state changes\n" + tl.String()
		assert.Equal(t, 0, s.SeatsInUse("app", "K-1"), "no seat is left held")
	})
	return out
}

// FuzzParseScenario: any text parses or fails with line-numbered errors,
// never a panic, and a parsed scenario's steps are in time order.
func FuzzParseScenario(f *testing.F) {
	for _, seed := range []string{
		"at 0s license product=app key=K-1 session=2m grace=10m seats=1\nat 5m down refuse\nat 5m30s up\n",
		"at 1m down 503 for=30s\nat 2m fault drop endpoint=extend n=-1\n",
		`at 0s license product="a b" key=k features="x \"y\""`,
		"at 5m dwn\nat 1m up\nat -1s skew -1h\n# comment\n\tat 1h clear # trailing\n",
		"at 0s fail endpoint=begin n=3 status=503 retry_after=10s message=\"x\"\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		sc, err := admin.ParseScenario("fuzz", strings.NewReader(text))
		if err != nil {
			var se *admin.ScenarioError
			if !errors.As(err, &se) || se.Line < 1 {
				t.Fatalf("ParseScenario error %v is not a *ScenarioError with a line", err)
			}
			return
		}
		require.NotEmpty(t, sc.Steps)
		for i, st := range sc.Steps {
			require.GreaterOrEqual(t, st.At, time.Duration(0))
			if i > 0 {
				require.GreaterOrEqual(t, st.At, sc.Steps[i-1].At)
			}
		}
	})
}
