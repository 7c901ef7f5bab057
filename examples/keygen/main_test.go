package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/examples/internal/vendorfiles"
	"github.com/licensekit/licensekit-go/internal/testhome"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/testclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testhome.M(m)) }

// TestDefaultOutsideTheTree: without -out the key goes to the user's
// configuration directory, never into the current directory (a source
// tree), and -show reads it back.
func TestDefaultOutsideTheTree(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	before, err := os.ReadDir(wd)
	require.NoError(t, err)
	out, _, err := runMain(t)
	require.NoError(t, err)
	want, err := vendorfiles.Path("server.key")
	require.NoError(t, err)
	assert.Contains(t, out, "Wrote the private key to "+want)
	home, err := os.UserConfigDir()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(want, home), "%s is not in the configuration directory %s", want, home)
	after, err := os.ReadDir(wd)
	require.NoError(t, err)
	assert.Equal(t, len(before), len(after), "keygen wrote into the current directory")
	shown, _, err := runMain(t, "-show", want)
	require.NoError(t, err)
	assert.True(t, printed(t, out).Equal(printed(t, shown)))
	info, err := os.Stat(filepath.Dir(want))
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o700), info.Mode().Perm())
	}
	t.Cleanup(func() { _ = os.Remove(want) })
}

func runMain(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(args, &out, &errOut)
	return out.String(), errOut.String(), err
}

var (
	pemRE = regexp.MustCompile(`(?s)-----BEGIN LICENSEKIT HPKE PUBLIC KEY-----.*?-----END LICENSEKIT HPKE PUBLIC KEY-----\n`)
	b64RE = regexp.MustCompile(`(?m)^Public key, base64.*\n(\S+)$`)
	idRE  = regexp.MustCompile(`(?m)^Key id: ([0-9a-f]{16})$`)
)

// printed returns the public key in both printed forms, checking that they
// are the same key.
func printed(t *testing.T, out string) *envelope.PublicKey {
	t.Helper()
	pemText := pemRE.FindString(out)
	require.NotEmpty(t, pemText, "no PEM public key in:\n%s", out)
	fromPEM, err := envelope.ParsePublicKey([]byte(pemText))
	require.NoError(t, err)
	m := b64RE.FindStringSubmatch(out)
	require.Len(t, m, 2, "no base64 public key in:\n%s", out)
	fromB64, err := envelope.ParsePublicKey([]byte(m[1]))
	require.NoError(t, err)
	assert.True(t, fromPEM.Equal(fromB64), "the PEM and base64 forms are different keys")
	id := idRE.FindStringSubmatch(out)
	require.Len(t, id, 2)
	assert.Equal(t, fromPEM.KeyID(), id[1])
	return fromPEM
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		flag string
		kem  envelope.KEM
	}{
		{"", envelope.KEMX25519},
		{"x25519", envelope.KEMX25519},
		{"mlkem768x25519", envelope.KEMMLKEM768X25519},
		{"MLKEM768X25519", envelope.KEMMLKEM768X25519},
	} {
		t.Run(tt.flag, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "server.key")
			args := []string{"-out", path}
			if tt.flag != "" {
				args = append(args, "-kem", tt.flag)
			}
			out, stderr, err := runMain(t, args...)
			require.NoError(t, err, stderr)
			pub := printed(t, out)
			assert.Equal(t, tt.kem, pub.KEM())

			text, err := os.ReadFile(path)
			require.NoError(t, err)
			priv, err := envelope.ParsePrivateKey(text)
			require.NoError(t, err)
			assert.True(t, priv.Public().Equal(pub), "the printed public key is not the written key's")
			if runtime.GOOS != "windows" {
				fi, err := os.Stat(path)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			}
			assert.NotContains(t, out, "PRIVATE KEY")
			assert.NotContains(t, out, priv.EncodeBase64(), "the private key was printed")
			entries, err := os.ReadDir(filepath.Dir(path))
			require.NoError(t, err)
			assert.Len(t, entries, 1, "a temporary file was left behind")
		})
	}
}

func TestNoOverwriteWithoutForce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "server.key")
	_, _, err := runMain(t, "-out", path)
	require.NoError(t, err)
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	_, _, err = runMain(t, "-out", path)
	require.ErrorContains(t, err, "does not overwrite")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	_, _, err = runMain(t, "-out", path, "-force")
	require.NoError(t, err)
	after, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.NotEqual(t, before, after, "-force did not replace the key")
}

func TestShow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "server.key")
	out1, _, err := runMain(t, "-out", path, "-kem", "mlkem768x25519")
	require.NoError(t, err)
	out2, _, err := runMain(t, "-show", path)
	require.NoError(t, err)
	assert.True(t, printed(t, out1).Equal(printed(t, out2)))

	require.NoError(t, os.WriteFile(path, []byte(printed(t, out1).EncodeBase64()), 0o600))
	_, _, err = runMain(t, "-show", path)
	assert.ErrorContains(t, err, "want a private key", "a public key given as the private key")
}

func TestBadUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-out", "", "-kem", "x25519"},
		{"-out", filepath.Join(dir, "k"), "-kem", "rsa"},
		{"-out", filepath.Join(dir, "k"), "-show", filepath.Join(dir, "k")},
		{"-out", filepath.Join(dir, "k"), "extra"},
		{"-show", filepath.Join(dir, "missing")},
	} {
		_, _, err := runMain(t, args...)
		assert.Error(t, err, "keygen %s", strings.Join(args, " "))
	}
	_, err := os.Stat(filepath.Join(dir, "k"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a failed run wrote a key")
}

// TestKeysWorkEndToEnd serves with the written private key and connects a
// client configured with the printed public key, in each printed form.
func TestKeysWorkEndToEnd(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "server.key")
	out, _, err := runMain(t, "-out", path)
	require.NoError(t, err)
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	priv, err := envelope.ParsePrivateKey(text)
	require.NoError(t, err)

	srv := licensetest.NewUnstartedServer(&licensetest.Config{PrivateKey: priv})
	t.Cleanup(srv.Close)
	lic := licensetest.License{ProductGUID: "app", Key: "K-1"}
	require.NoError(t, srv.AddLicense(lic))
	for _, public := range []string{pemRE.FindString(out), b64RE.FindStringSubmatch(out)[1]} {
		cfg := testclient.Config(srv, lic)
		cfg.ServerPublicKey = public
		c, err := license.New(cfg, testclient.Options(srv)...)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		assert.Equal(t, license.Active, c.Status().State)
		require.NoError(t, c.Close(context.Background()))
	}
}
