package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) {
	// The tests use the in-process mock.
	os.Unsetenv("LICENSEKIT_SERVER")
	goleak.VerifyTestMain(m)
}

// logLine is the part of a JSON log line the tests look at.
type logLine struct {
	Msg       string    `json:"msg"`
	Level     string    `json:"level"`
	Event     string    `json:"event"`
	State     any       `json:"state"`
	Previous  any       `json:"previous"`
	Component string    `json:"component"`
	Cause     string    `json:"cause"`
	Unit      int       `json:"unit"`
	Time      time.Time `json:"time"`
}

// parseLog parses every line of out as JSON, failing the test on any that
// is not.
func parseLog(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l logLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "line %q is not JSON", sc.Text())
		lines = append(lines, l)
	}
	return lines
}

// stateChanges returns the state changes the client logged, in order. It
// fails the test if a state change is logged by the service's event
// handler too (each must appear once) or if the lines are out of
// timestamp order.
func stateChanges(t *testing.T, lines []logLine) []string {
	t.Helper()
	var got []string
	var last time.Time
	for _, l := range lines {
		assert.False(t, l.Msg == "licence event" && l.Event == "StateChanged", "a state change logged twice")
		if l.Msg == "licence state changed" && l.Component == "license" {
			got = append(got, l.Previous.(string)+" → "+l.State.(string))
			assert.False(t, l.Time.Before(last), "state changes out of timestamp order")
			last = l.Time
		}
	}
	return got
}

// TestRunHealthy runs the service against a healthy mock and checks the
// JSON log.
func TestRunHealthy(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-for", "2500ms", "-work", "200ms"}, &out))
	lines := parseLog(t, out.String())
	require.NotEmpty(t, lines)
	assert.Equal(t, []string{"Idle → Active", "Active → Ended"}, stateChanges(t, lines), out.String())

	var worked, skipped, renewed int
	for _, l := range lines {
		switch {
		case l.Msg == "work unit done":
			worked++
		case l.Msg == "skipping work":
			skipped++
		case l.Event == "Renewed":
			renewed++
		}
	}
	assert.Positive(t, worked)
	assert.Zero(t, skipped)
	assert.Positive(t, renewed)

	last := lines[len(lines)-1]
	assert.Equal(t, "stopped", last.Msg)
	assert.Equal(t, "Ended", last.State)
	assert.Contains(t, out.String(), `"cause":"-for has passed"`)
	assert.Contains(t, out.String(), `"msg":"licence event","event":"Ended"`)
	assert.Contains(t, out.String(), `"component":"license"`, "the client logs through WithLogger")
	assert.Contains(t, out.String(), `"api_key":"[redacted]"`)
}

// TestRunOutage takes the mock down: the licence goes through Grace to
// Expired, and the work gate closes.
func TestRunOutage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-for", "6500ms", "-work", "250ms", "-mock-outage", "300ms"}, &out))
	lines := parseLog(t, out.String())
	assert.Equal(t, []string{"Idle → Active", "Active → Grace", "Grace → Expired", "Expired → Ended"},
		stateChanges(t, lines), out.String())

	// Work runs while the licence is usable, and is skipped once it expired.
	var states []string
	for _, l := range lines {
		switch l.Msg {
		case "work unit done":
			states = append(states, "work:"+l.State.(string))
		case "skipping work":
			states = append(states, "skip:"+l.State.(string))
		}
	}
	require.NotEmpty(t, states)
	first := 0
	for first < len(states) && strings.HasPrefix(states[first], "work:") {
		first++
	}
	require.Less(t, first, len(states), "no work was skipped: %v", states)
	for _, s := range states[:first] {
		assert.Contains(t, []string{"work:Active", "work:Grace"}, s)
	}
	for _, s := range states[first:] {
		assert.Equal(t, "skip:Expired", s)
	}
	assert.Contains(t, states, "work:Grace", "work goes on during grace")
}

// TestRunRejectsBadFlags checks that bad flags fail before any I/O.
func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-work", "0s"},
		{"-server", "https://h/api/v2"}, {"-server", "https://h/api/v2", "-shared-secret", "@/nonexistent"}} {
		assert.Error(t, run(context.Background(), args, &bytes.Buffer{}), "run(%q)", args)
	}
}
