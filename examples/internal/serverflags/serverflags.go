// Package serverflags is the flag block the example programs share to point
// a client at a real licence server instead of the in-process mock.
package serverflags

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// Flags holds the server settings. The zero value means "no real server":
// the examples then run their in-process mock.
type Flags struct {
	Server, APIKey, PublicKey, SharedSecret, Product, License, StateDir string
}

// Register defines the flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Server, "server", "", "licence server API base URL, such as https://licensing.example.com/api/v2 (env LICENSEKIT_SERVER; empty: in-process mock)")
	fs.StringVar(&f.APIKey, "api-key", "", "API key (env LICENSEKIT_API_KEY)")
	fs.StringVar(&f.PublicKey, "public-key", "", "server public key, PEM or base64, or @file (env LICENSEKIT_PUBLIC_KEY)")
	fs.StringVar(&f.SharedSecret, "shared-secret", "", "shared secret, standard base64, or @file; selects shared-secret mode (env LICENSEKIT_SHARED_SECRET)")
	fs.StringVar(&f.Product, "product", "", "product GUID (env LICENSEKIT_PRODUCT)")
	fs.StringVar(&f.License, "license", "", "licence key (env LICENSEKIT_LICENSE)")
	fs.StringVar(&f.StateDir, "state-dir", "", "state directory (env LICENSEKIT_STATE_DIR; default: a temporary one)")
}

// Parse parses args into fs (on which Register was called), refuses
// positional arguments, and fills the server flags not given from the
// environment (FromEnv).
func (f *Flags) Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	f.FromEnv()
	return nil
}

// FromEnv fills the flags that were not given from the environment, so
// that secrets need not appear on a command line or as defaults in -h.
func (f *Flags) FromEnv() {
	for _, v := range []struct {
		p   *string
		env string
	}{
		{&f.Server, "LICENSEKIT_SERVER"}, {&f.APIKey, "LICENSEKIT_API_KEY"},
		{&f.PublicKey, "LICENSEKIT_PUBLIC_KEY"}, {&f.SharedSecret, "LICENSEKIT_SHARED_SECRET"},
		{&f.Product, "LICENSEKIT_PRODUCT"}, {&f.License, "LICENSEKIT_LICENSE"},
		{&f.StateDir, "LICENSEKIT_STATE_DIR"},
	} {
		if *v.p == "" {
			*v.p = os.Getenv(v.env)
		}
	}
}

// Config builds the client configuration for a real server; license.New
// checks the rest.
func (f *Flags) Config() (license.Config, error) {
	cfg := license.Config{ServerURL: f.Server, APIKey: f.APIKey, ProductGUID: f.Product,
		LicenseKey: f.License, StateDir: f.StateDir}
	pub, err := readValue(f.PublicKey)
	if err != nil {
		return cfg, fmt.Errorf("-public-key: %w", err)
	}
	cfg.ServerPublicKey = pub
	if f.SharedSecret != "" {
		text, err := readValue(f.SharedSecret)
		if err != nil {
			return cfg, fmt.Errorf("-shared-secret: %w", err)
		}
		if cfg.SharedSecret, err = base64.StdEncoding.DecodeString(strings.TrimSpace(text)); err != nil {
			return cfg, errors.New("-shared-secret: not standard base64")
		}
	}
	return cfg, nil
}

// StartMock starts an in-process mock licence server holding lic, for the
// examples run without a real server, and returns it with the client
// configuration for lic (no state directory). The caller closes the server.
func StartMock(lic licensetest.License) (*licensetest.Server, license.Config, error) {
	srv := licensetest.NewServer(nil)
	if err := srv.AddLicense(lic); err != nil {
		srv.Close()
		return nil, license.Config{}, err
	}
	return srv, license.Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(), ProductGUID: lic.ProductGUID, LicenseKey: lic.Key}, nil
}

// readValue returns v, or the contents of the file named after a leading
// "@".
func readValue(v string) (string, error) {
	name, ok := strings.CutPrefix(v, "@")
	if !ok {
		return v, nil
	}
	b, err := os.ReadFile(name)
	return string(b), err
}

// DefaultStateDir is a state directory for product under the user's
// configuration directory, in app's own folder, so that it outlives a run.
// The product GUID is made safe as one path element.
func DefaultStateDir(app, product string) (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: set -state-dir or LICENSEKIT_STATE_DIR (%w)", err)
	}
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == os.PathSeparator || r == ':' || r < ' ' {
			return '_'
		}
		return r
	}, product)
	if name == "" || name == "." || name == ".." {
		name = "_"
	}
	return filepath.Join(base, app, name), nil
}
