package serverflags

import (
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlagsEnvAndFiles(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "server.pem")
	require.NoError(t, os.WriteFile(keyFile, []byte("PEM-TEXT"), 0o600))
	t.Setenv("LICENSEKIT_API_KEY", "from-env")
	t.Setenv("LICENSEKIT_PRODUCT", "env-product")

	var f Flags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f.Register(fs)
	require.NoError(t, fs.Parse([]string{"-server", "https://h/api/v2", "-product", "flag-product",
		"-public-key", "@" + keyFile, "-shared-secret", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))}))
	f.FromEnv()
	cfg, err := f.Config()
	require.NoError(t, err)
	assert.Equal(t, "https://h/api/v2", cfg.ServerURL)
	assert.Equal(t, "from-env", cfg.APIKey, "unset flags come from the environment")
	assert.Equal(t, "flag-product", cfg.ProductGUID, "flags win over the environment")
	assert.Equal(t, "PEM-TEXT", cfg.ServerPublicKey, "@file reads the file")
	assert.Equal(t, "0123456789abcdef0123456789abcdef", string(cfg.SharedSecret))

	f.SharedSecret = "not base64!"
	_, err = f.Config()
	assert.ErrorContains(t, err, "not standard base64")
	f.SharedSecret, f.PublicKey = "", "@"+filepath.Join(dir, "missing")
	_, err = f.Config()
	assert.ErrorContains(t, err, "-public-key")
}

// TestDefaultStateDir: the product GUID becomes one safe path element
// under the user's configuration directory, in the app's own folder.
func TestDefaultStateDir(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("AppData", t.TempDir())
	base, err := os.UserConfigDir()
	if err != nil {
		t.Skip("no user configuration directory here")
	}
	for product, want := range map[string]string{"p-1": "p-1", "a/b\\c:d": "a_b_c_d", "..": "_", "": "_"} {
		got, err := DefaultStateDir("app", product)
		if err != nil {
			t.Fatal(err)
		}
		if got != filepath.Join(base, "app", want) {
			t.Errorf("DefaultStateDir(%q) = %q, want %q", product, got, filepath.Join(base, "app", want))
		}
	}
}
