package docscheck

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checkedRE finds the README's marked shell block:
//
//	<!-- checked: internal/docscheck TestLocalCheckout -->
//	```sh
//	...
//	```
var checkedRE = regexp.MustCompile("(?s)<!-- checked: internal/docscheck TestLocalCheckout -->\\s*```sh\\n(.*?)```")

// TestLocalCheckout runs the README's lines for using a local checkout
// before the first tag, as written, in a new module beside a checkout (this
// one), offline (GOPROXY=off: the module cache must hold the library's
// requirements, as after go mod download), and builds a program that
// imports the SDK with the result.
func TestLocalCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	readme, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "go get github.com/licensekit/licensekit-go@latest") {
		t.Error("README lost the install line for after the first tag")
	}
	m := checkedRE.FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no block marked <!-- checked: internal/docscheck TestLocalCheckout -->")
	}
	root, err := filepath.Abs(moduleRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The README's layout: the product's module beside the checkout.
	if err := os.Symlink(root, filepath.Join(dir, "licensekit-go")); err != nil {
		t.Skipf("cannot link the checkout: %v", err)
	}
	app := filepath.Join(dir, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "main.go"), []byte(`package main

import "github.com/licensekit/licensekit-go/license"

func main() { _, _ = license.New(license.Config{}) }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=-mod=mod")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(goCmd, args...)
		cmd.Dir, cmd.Env = app, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "GOPROXY=off") {
				t.Skipf("the module cache lacks a requirement (run go mod download first): %s", out)
			}
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("mod", "init", "example.com/app")
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(string(m[1])), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "go" {
			t.Fatalf("README line %q is not a go command", line)
		}
		run(fields[1:]...)
		lines++
	}
	if lines != 3 {
		t.Errorf("README block has %d lines, want the two go mod edit lines and go mod tidy", lines)
	}
	run("build", "-o", filepath.Join(dir, "app.bin"), ".")
	if _, err := os.Stat(filepath.Join(dir, "app.bin")); errors.Is(err, os.ErrNotExist) {
		t.Fatal("no program built")
	}
}

// TestAdminCommandsCarryToken: every curl command in the docs that calls an
// admin API carries its token (docs/shared-sessions.md once called the mock
// server's stats without it and got 401).
func TestAdminCommandsCarryToken(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(moduleRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(moduleRoot, "README.md"))
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// A command continued with a backslash counts as one line.
		joined := strings.ReplaceAll(string(text), "\\\n", " ")
		for _, line := range strings.Split(joined, "\n") {
			cmd := strings.TrimPrefix(strings.TrimSpace(line), "$ ")
			if !strings.HasPrefix(cmd, "curl ") || !strings.Contains(cmd, "admin") {
				continue
			}
			if !strings.Contains(line, "Authorization: Bearer") && !strings.Contains(line, "token=") {
				t.Errorf("%s: an admin call without its token: %s", filepath.Base(f), strings.TrimSpace(line))
			}
		}
	}
}
