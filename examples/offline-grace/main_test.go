package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/license"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// stateLine matches a state change in the timeline.
var stateLine = regexp.MustCompile(`(?m)^\S+\s+\[(\d)\]\s+state\s+(\w+) → (\w+)`)

// transitions returns the state changes printed in out, as "[n] From → To".
func transitions(out string) []string {
	var got []string
	for _, m := range stateLine.FindAllStringSubmatch(out, -1) {
		got = append(got, "["+m[1]+"] "+m[2]+" → "+m[3])
	}
	return got
}

// TestRunWithRestart runs the whole script at speed 4 and checks the
// state sequence, the restart and the feature gate.
func TestRunWithRestart(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-speed", "4"}, &out))
	s := out.String()
	assert.Equal(t, []string{
		"[1] Idle → Active",
		"[1] Active → Grace",
		"[1] Grace → Active",
		"[1] Active → Grace",
		"[1] Grace → Ended", // the process stops while offline
		"[2] Idle → Grace",  // and starts again, in Grace
		"[2] Grace → Expired",
		"[2] Expired → Ended",
	}, transitions(s), s)

	// The restarted process resumes the old grace deadline.
	deadlines := regexp.MustCompile(`grace deadline (?:before|after) the restart:\s+(\S+)\s+\((\S+)\)`).FindAllStringSubmatch(s, -1)
	require.Len(t, deadlines, 2, s)
	assert.Equal(t, deadlines[0][1:], deadlines[1][1:])
	assert.Contains(t, s, "same grace deadline: yes")

	// The feature gate is open until Expired, then closed.
	expired := strings.Index(s, "Grace → Expired")
	require.Positive(t, expired)
	assert.NotContains(t, s[:expired], "CLOSED")
	assert.Contains(t, s[expired:], `HasFeature("pro")=false Valid()=false: CLOSED`)
	assert.Contains(t, s[expired:], "Done() stays open (Expired can recover); Status().Reason = "+license.ErrGraceExpired.Error())

	// Piped output is plain: no carriage returns.
	assert.NotContains(t, s, "\r")
}

// TestRunWithoutRestart keeps one client through the second outage.
func TestRunWithoutRestart(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-speed", "4", "-restart=false"}, &out))
	s := out.String()
	assert.Equal(t, []string{
		"[1] Idle → Active",
		"[1] Active → Grace",
		"[1] Grace → Active",
		"[1] Active → Grace",
		"[1] Grace → Expired",
		"[1] Expired → Ended",
	}, transitions(s), s)
	assert.NotContains(t, s, "[2]")
}

// TestRunRejectsBadFlags checks flag validation.
func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-speed", "3"}, {"-nope"}, {"extra"}} {
		assert.Error(t, run(context.Background(), args, &bytes.Buffer{}), "run(%q)", args)
	}
}

// TestRunStopsWhenInterrupted ends ctx mid-script and expects its error.
func TestRunStopsWhenInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := run(ctx, []string{"-speed", "4"}, &bytes.Buffer{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestIsTerminal checks that buffers and regular files are not terminals.
func TestIsTerminal(t *testing.T) {
	t.Parallel()
	assert.False(t, isTerminal(&bytes.Buffer{}))
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f), "a regular file is not a terminal")
}

// TestTimelineRedrawsOnTerminal checks the terminal mode: the status line is
// redrawn in place and erased before the next full line.
func TestTimelineRedrawsOnTerminal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	tl := newTimeline(&out)
	tl.tty = true
	tl.status("Grace: 7.9s left")
	tl.status("Grace: 7.8s left")
	tl.line(0, "server", "up again")
	s := out.String()
	assert.Equal(t, 2, strings.Count(s, "status   Grace:"), s)
	assert.Regexp(t, `\r\+\S+\s+status\s+Grace: 7\.8s left\r {10,}\r\+\S+\s+server\s+up again\n$`, s)
	assert.Equal(t, 1, strings.Count(s, "\n"))
}
