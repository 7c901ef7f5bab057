package testclient_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/testclient"
)

var lic = licensetest.License{ProductGUID: "app", Key: "K-1", SessionDuration: 10 * time.Minute, GracePeriod: time.Hour}

// TestNewInsideSynctest is the whole point of the package: one call gives a
// client that runs on fake time against an unstarted server.
func TestNewInsideSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := licensetest.NewUnstartedServer(nil)
		t.Cleanup(srv.Close)
		require.NoError(t, srv.AddLicense(lic))
		c := testclient.New(t, srv, lic)
		require.NoError(t, c.Start(t.Context()))
		assert.Equal(t, license.Active, c.Status().State)

		srv.SetDown(true)
		time.Sleep(30 * time.Minute) // fake time: a lapsed session, within the hour of grace
		assert.Equal(t, license.Grace, c.Status().State)
		srv.SetDown(false)
		time.Sleep(2 * time.Minute)
		assert.Equal(t, license.Active, c.Status().State)
		assert.Equal(t, 1, srv.SeatsInUse(lic.ProductGUID, lic.Key))
	})
}

// TestNewClosesOnCleanup checks that the cleanup New registers ends the
// session, freeing the seat.
func TestNewClosesOnCleanup(t *testing.T) {
	srv := licensetest.NewServer(nil) // a started server: the client goes over loopback
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(lic))
	t.Run("client", func(t *testing.T) {
		c := testclient.New(t, srv, lic)
		require.NoError(t, c.Start(t.Context()))
		assert.Equal(t, 1, srv.SeatsInUse(lic.ProductGUID, lic.Key))
	})
	assert.Equal(t, 0, srv.SeatsInUse(lic.ProductGUID, lic.Key), "seats in use after the subtest's cleanup")
	assert.Equal(t, 1, srv.Count(licensetest.End))
}

func TestOptionsFollowStart(t *testing.T) {
	t.Parallel()
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			t.Parallel()
			srv := licensetest.NewUnstartedServer(nil)
			t.Cleanup(srv.Close)
			require.NoError(t, srv.AddLicense(lic))
			if tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			c := testclient.New(t, srv, lic)
			require.NoError(t, c.Start(t.Context()))
			// Over the listener, not in memory: a server that is down refuses the dial.
			assert.Equal(t, 1, srv.Count(licensetest.Begin))
			srv.SetDown(true)
			err := c.ExtendSession(t.Context())
			assert.ErrorIs(t, err, license.ErrUnreachable)
			srv.SetDown(false)
		})
	}
}

func TestSharedSecretConfig(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(lic))
	cfg := testclient.SharedSecretConfig(srv, lic)
	assert.Empty(t, cfg.ServerPublicKey)
	assert.Equal(t, srv.Info().Secret, cfg.SharedSecret)
	c, err := license.New(cfg, testclient.Options(srv)...)
	require.NoError(t, err)
	require.NoError(t, c.Start(t.Context()))
	require.NoError(t, c.Close(t.Context()))
	assert.Equal(t, 1, srv.Count(licensetest.Begin))
}

func TestConfig(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	cfg := testclient.Config(srv, lic)
	want := license.Config{
		ServerURL:       srv.URL,
		APIKey:          srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID:     "app",
		LicenseKey:      "K-1",
	}
	assert.Equal(t, want, cfg)
}

// TestPlaceholderAddressHint builds a client by hand, as a test that forgot
// the in-memory transport would, and checks that its error names the fix:
// the placeholder address says it, and the SDK's error shows the address.
func TestPlaceholderAddressHint(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(lic))

	c, err := license.New(testclient.Config(srv, lic),
		license.WithRetry(license.Retry{Attempts: 1})) // no WithRoundTripper: the mistake
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	err = c.Start(t.Context())
	require.Error(t, err)
	assert.ErrorIs(t, err, license.ErrUnreachable)
	assert.Contains(t, err.Error(), "dialling [::1%unstarted-licensetest.Server-use-its-Transport]:9")
}

// fatalTB records Fatalf and stops its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestNewFailsTheTestOnBadConfig(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	tb := &fatalTB{TB: t}
	done := make(chan *license.Client)
	go func() {
		var c *license.Client
		defer func() { done <- c }()
		c = testclient.New(tb, srv, licensetest.License{ProductGUID: "app"}) // no licence key
	}()
	assert.Nil(t, <-done)
	assert.Contains(t, tb.msg, "testclient: license.New:")
	assert.Contains(t, tb.msg, "invalid config")
}
