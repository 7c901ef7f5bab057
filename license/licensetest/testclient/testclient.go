// Package testclient connects a license.Client to a licensetest.Server in one
// call, so that a test does not copy the server's URL, API key and public key
// into a license.Config by hand, nor forget the in-memory transport that a
// testing/synctest bubble needs.
//
// # Overview
//
//	srv := licensetest.NewUnstartedServer(nil) // in memory: fine inside synctest
//	t.Cleanup(srv.Close)
//	lic := licensetest.License{ProductGUID: "app", Key: "K-1", GracePeriod: time.Hour}
//	if err := srv.AddLicense(lic); err != nil {
//		t.Fatal(err)
//	}
//	c := testclient.New(t, srv, lic) // closed by t.Cleanup
//	if err := c.Start(ctx); err != nil {
//		t.Fatal(err)
//	}
//
// Config and Options are the two halves of New for tests that build the
// client themselves:
//
//	c, err := license.New(testclient.Config(srv, lic), testclient.Options(srv)...)
//
// The package lives beside licensetest rather than inside it because the
// license package's own tests import licensetest, so licensetest cannot import
// license.
package testclient

import (
	"context"
	"testing"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// Config returns a license.Config for the licence lic on srv in public-key
// mode: the server's URL, API key and public key (base64), and lic's product
// and key. It sets nothing else, so the Config's defaults apply (no StateDir:
// state kept in memory only). The result is plain data; change any field
// before passing it to license.New. The licence need not be added yet.
func Config(srv *licensetest.Server, lic licensetest.License) license.Config {
	return license.Config{
		ServerURL:       srv.URL,
		APIKey:          srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID:     lic.ProductGUID,
		LicenseKey:      lic.Key,
	}
}

// SharedSecretConfig is like Config, in shared-secret mode: it carries the
// server's secret instead of its public key.
func SharedSecretConfig(srv *licensetest.Server, lic licensetest.License) license.Config {
	cfg := Config(srv, lic)
	cfg.ServerPublicKey = ""
	cfg.SharedSecret = srv.Info().Secret
	return cfg
}

// Options returns the options a client of srv needs to reach it:
//
//   - for a server that is not listening (NewUnstartedServer without Start),
//     license.WithRoundTripper(srv.Transport()), the in-memory transport that a
//     client inside a testing/synctest bubble must use (see
//     licensetest.Server.Transport);
//   - for a started server, license.WithHTTPClient(srv.Client()), which
//     trusts a TLS server's certificate and uses no proxy.
//
// Append more options after these; a later option of the same kind replaces
// the earlier one. Call Options after Start, since the choice depends on it.
func Options(srv *licensetest.Server) []license.Option {
	if srv.Info().Addr == "" {
		return []license.Option{license.WithRoundTripper(srv.Transport())}
	}
	return []license.Option{license.WithHTTPClient(srv.Client())}
}

// New returns a client for the licence lic on srv, built from Config(srv,
// lic), Options(srv) and then opts. It fails the test at once (t.Fatal) if
// license.New fails, and registers a t.Cleanup that closes the client. It
// does not call Start.
//
// Cleanups run last-registered first, so register the server's Close
// (t.Cleanup(srv.Close)) before calling New: the client then ends its session
// while the server is still there. Inside a testing/synctest bubble pass the
// bubble's t, so that the cleanup runs inside the bubble.
func New(t testing.TB, srv *licensetest.Server, lic licensetest.License, opts ...license.Option) *license.Client {
	t.Helper()
	c, err := license.New(Config(srv, lic), append(Options(srv), opts...)...)
	if err != nil {
		t.Fatalf("testclient: license.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}
