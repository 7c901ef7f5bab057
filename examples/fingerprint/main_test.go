package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
)

func runMain(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestJSON(t *testing.T) {
	out, stderr, err := runMain(t, "-json")
	require.NoError(t, err)
	assert.Empty(t, stderr)
	var fp fingerprint.Fingerprint
	require.NoError(t, json.Unmarshal([]byte(out), &fp))
	assert.False(t, fp.Hashed)
	if fp.HostName.Present() {
		host, err := os.Hostname()
		require.NoError(t, err)
		assert.Equal(t, host, fp.HostName.Value)
	}
	for _, c := range fp.Components() {
		assert.True(t, c.Present() || c.Missing != nil, "%s has a value or a reason", c.Name)
	}
}

func TestTableAndDiff(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses a Linux fixture root")
	}
	root := filepath.Join("..", "..", "testdata", "fingerprint", "vm", "root")
	out, _, err := runMain(t, "-root", root)
	require.NoError(t, err)
	for _, want := range []string{"COMPONENT", "mb_serial", "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "/sys/class/dmi/id/product_uuid",
		"(placeholder: empty value)", "environment: no container markers; hypervisor QEMU", "strong components: 2", "digest: "} {
		assert.Contains(t, out, want)
	}

	saved := filepath.Join(t.TempDir(), "saved.json")
	out, _, err = runMain(t, "-json", "-root", root)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(saved, []byte(out), 0o600))

	out, _, err = runMain(t, "-diff", saved, "-root", root)
	require.NoError(t, err)
	assert.Contains(t, out, "match score: 1.00")
	assert.Contains(t, out, "changed: nothing")

	// The same saved fingerprint against another machine.
	out, _, err = runMain(t, "-json", "-diff", saved, "-root", filepath.Join("..", "..", "testdata", "fingerprint", "baremetal", "root"))
	require.NoError(t, err)
	var cmp comparison
	require.NoError(t, json.Unmarshal([]byte(out), &cmp))
	assert.False(t, cmp.Matches)
	assert.Contains(t, cmp.Changed, fingerprint.NameMachineID)
	statuses := map[string]string{}
	for _, d := range cmp.Components {
		statuses[d.Name] = d.Status
	}
	assert.Equal(t, "changed", statuses[fingerprint.NameMBSerial])
	assert.Equal(t, "new", statuses[fingerprint.NameBoardSerial])
}

func TestHashed(t *testing.T) {
	out, _, err := runMain(t, "-json", "-hashed", "product key")
	require.NoError(t, err)
	var fp fingerprint.Fingerprint
	require.NoError(t, json.Unmarshal([]byte(out), &fp))
	assert.True(t, fp.Hashed)
	host, _ := os.Hostname()
	if host != "" {
		assert.NotContains(t, out, `"`+host+`"`, "raw host name must not appear")
	}

	saved := filepath.Join(t.TempDir(), "saved.json")
	require.NoError(t, os.WriteFile(saved, []byte(out), 0o600))
	_, _, err = runMain(t, "-diff", saved)
	assert.ErrorContains(t, err, "pass -hashed")
	out, _, err = runMain(t, "-diff", saved, "-hashed", "product key")
	require.NoError(t, err)
	assert.Contains(t, out, "match score: 1.00")
}

func TestBadArguments(t *testing.T) {
	_, stderr, err := runMain(t, "-nope")
	assert.Error(t, err)
	assert.True(t, strings.Contains(stderr, "flag provided but not defined"), stderr)
	_, _, err = runMain(t, "extra")
	assert.ErrorContains(t, err, "unexpected argument")
	_, _, err = runMain(t, "-diff", filepath.Join(t.TempDir(), "missing.json"))
	assert.Error(t, err)
}
