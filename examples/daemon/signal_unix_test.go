//go:build unix

package main

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/testkit"
)

// TestRunClosesOnSIGTERM sends the test process SIGTERM while the service
// runs. It is not parallel: the signal would stop every running service.
func TestRunClosesOnSIGTERM(t *testing.T) {
	var out testkit.LockedBuffer
	errc := make(chan error, 1)
	go func() { errc <- run(context.Background(), []string{"-for", "0", "-work", "100ms"}, &out) }()
	// A unit of work means Start returned, so the signal handler is in place.
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"msg":"work unit done"`) },
		5*time.Second, 10*time.Millisecond)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
	lines := parseLog(t, out.String())
	assert.Equal(t, []string{"Idle → Active", "Active → Ended"}, stateChanges(t, lines), out.String())
	assert.Regexp(t, `"msg":"shutting down","cause":"[^"]*terminated[^"]*"`, out.String())
}
