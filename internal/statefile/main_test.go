package statefile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// The test binary doubles as a helper process: when helperEnv is set,
// TestMain runs the named helper instead of the tests. This is how the tests
// get a second process holding (or fighting over) a lock, and a writer that
// dies between its temporary write and the rename.
const (
	helperEnv      = "STATEFILE_TEST_HELPER"
	helperDirEnv   = "STATEFILE_TEST_DIR"
	helperSlotsEnv = "STATEFILE_TEST_SLOTS"
	crashExitCode  = 7
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Getenv(helperDirEnv), os.Getenv(helperSlotsEnv)))
	}
	goleak.VerifyTestMain(m)
}

// runHelper runs in the child process and prints its outcome on stdout.
func runHelper(mode, dir, slotsText string) int {
	slots, _ := strconv.Atoi(slotsText)
	f, err := Acquire(dir, "state", slots)
	switch {
	case errors.Is(err, ErrLocked):
		fmt.Print("locked")
		return 0
	case err != nil:
		fmt.Print("error: ", err)
		return 1
	}
	fmt.Printf("slot %d", f.Slot())
	switch mode {
	case "acquire":
		if err := f.Release(); err != nil {
			fmt.Print(" release error: ", err)
			return 1
		}
		return 0
	case "die-holding":
		// Exit with the lock held and never released: the OS must drop it.
		return 0
	case "crash-before-rename":
		if err := f.Write([]byte("old")); err != nil {
			fmt.Print(" write error: ", err)
			return 1
		}
		f.beforeRename = func(string) error {
			os.Exit(crashExitCode) // the temporary file is written, synced and closed
			return nil
		}
		_ = f.Write([]byte("new"))
		fmt.Print(" write survived the crash hook")
		return 1
	}
	fmt.Print(" unknown helper mode ", mode)
	return 1
}

// runChild runs the test binary as a helper process and returns its stdout
// and exit code.
func runChild(t *testing.T, mode, dir string, slots int) (string, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable() = %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		helperEnv+"="+mode,
		helperDirEnv+"="+dir,
		helperSlotsEnv+"="+strconv.Itoa(slots),
		// A race-built child otherwise sleeps a second at exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running helper %q: %v", mode, err)
		}
		code = ee.ExitCode()
	}
	if stderr.Len() > 0 {
		t.Logf("helper %q stderr: %s", mode, stderr.String())
	}
	return string(out), code
}
