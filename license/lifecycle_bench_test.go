package license

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// BenchmarkStart measures Start against a real loopback mock server with a
// state directory, and reports the median ("median-ms") beside the mean:
//
//   - online-cold: no state; register_instance and begin_session.
//   - online-with-state: the instance is stored, the last run closed
//     cleanly; begin_session only.
//   - offline-live-session/refused: the previous run crashed with a live
//     session and the server refuses connections; goal ≤ 50 ms.
//   - offline-live-session/hanging: the same, the server accepts and never
//     answers; bounded by the offline budget (2 s).
//
// The "default-fingerprint" variants collect this machine's fingerprint as
// a product does; the others use a fixed one, to isolate the client.
//
//	go test ./license -run '^$' -bench BenchmarkStart -benchtime 20x
func BenchmarkStart(b *testing.B) {
	srv := licensetest.NewServer(nil)
	b.Cleanup(srv.Close)
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Hour, GracePeriod: time.Hour}); err != nil {
		b.Fatal(err)
	}
	config := func(url, dir string) Config {
		return Config{ServerURL: url, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
	}
	fixed := fixedFingerprint(testFingerprint())
	newClient := func(b *testing.B, url, dir string, opts ...Option) *Client {
		c, err := New(config(url, dir), opts...)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	closeQuick := func(c *Client) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = c.Close(ctx)
	}
	// measure times f per iteration and reports the median.
	measure := func(b *testing.B, f func(b *testing.B) time.Duration) {
		var took []time.Duration
		b.ResetTimer()
		for range b.N {
			took = append(took, f(b))
		}
		b.StartTimer()
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	}
	// start runs one timed Start and returns its duration.
	start := func(b *testing.B, c *Client) time.Duration {
		b.StartTimer()
		begun := time.Now()
		err := c.Start(context.Background())
		took := time.Since(begun)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		return took
	}

	b.Run("online-cold", func(b *testing.B) {
		measure(b, func(b *testing.B) time.Duration {
			b.StopTimer()
			c := newClient(b, srv.URL, b.TempDir(), fixed)
			defer c.Close(context.Background())
			return start(b, c)
		})
	})
	b.Run("online-with-state", func(b *testing.B) {
		dir := b.TempDir()
		c := newClient(b, srv.URL, dir, fixed)
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		_ = c.Close(context.Background())
		measure(b, func(b *testing.B) time.Duration {
			b.StopTimer()
			c := newClient(b, srv.URL, dir, fixed)
			defer c.Close(context.Background())
			return start(b, c)
		})
	})
	offline := func(b *testing.B, url func(b *testing.B) string, opts ...Option) {
		dir := b.TempDir()
		c := newClient(b, srv.URL, dir, opts...)
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		crash(c) // the session stays live in the state file
		u := url(b)
		measure(b, func(b *testing.B) time.Duration {
			b.StopTimer()
			c := newClient(b, u, dir, opts...)
			took := start(b, c)
			if st := c.Status().State; st != Active {
				b.Fatalf("offline Start in %v; want Active", st)
			}
			closeQuick(c)
			return took
		})
	}
	refusing := func(b *testing.B) string {
		down := licensetest.NewServer(nil)
		url := down.URL
		down.Close() // nothing listens there any more: connections are refused
		return url
	}
	hanging := func(b *testing.B) string { return newHangingServerB(b).url() }
	b.Run("offline-live-session/refused", func(b *testing.B) { offline(b, refusing, fixed) })
	b.Run("offline-live-session/refused/default-fingerprint", func(b *testing.B) { offline(b, refusing) })
	b.Run("offline-live-session/hanging", func(b *testing.B) { offline(b, hanging, fixed) })
}
