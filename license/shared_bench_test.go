package license

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// BenchmarkSharedStart measures Start in shared mode over a real loopback
// server, with the fingerprint fixed (its cost is the same in every mode):
//
//   - follower: another client of this process renews a live shared
//     session (a separate open file, so the OS lock treats it as another
//     process); Start reads the shared state and returns Active.
//   - resume: nobody renews; Start takes the renewer lock and resumes the
//     session a previous run left, as a command-line tool does.
//   - unshared: the baseline, Start in normal mode, which begins a session
//     on the server (register once, then begin_session each time).
//
// Each reports the median Start time (median-ns) and the server requests per
// Start (requests/op); Close runs outside the timer. Run with
//
//	go test ./license -run '^$' -bench BenchmarkSharedStart -benchtime 200x
func BenchmarkSharedStart(b *testing.B) {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Hour, GracePeriod: time.Hour}); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
	shared := WithSharedSession(SharedSession{})
	fp := fixedFingerprint(testFingerprint())
	ctx := context.Background()

	renewer, err := New(cfg, shared, fp)
	if err != nil {
		b.Fatal(err)
	}
	if err := renewer.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("follower", func(b *testing.B) {
		benchStart(b, srv, StartFollowed, func() (*Client, error) { return New(cfg, shared, fp) })
	})
	if err := renewer.Close(ctx); err != nil { // leaves the session to lapse
		b.Fatal(err)
	}
	b.Run("resume", func(b *testing.B) {
		benchStart(b, srv, StartResumed, func() (*Client, error) { return New(cfg, shared, fp) })
	})
	plain := cfg
	plain.StateDir = b.TempDir()
	b.Run("unshared", func(b *testing.B) {
		benchStart(b, srv, StartNone, func() (*Client, error) { return New(plain, fp) })
	})
}

// benchStart times Start of fresh clients and checks how each started.
func benchStart(b *testing.B, srv *licensetest.Server, want SharedStart, newClient func() (*Client, error)) {
	ctx := context.Background()
	times := make([]time.Duration, 0, b.N)
	requests := srv.Count("")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c, err := newClient()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		err = c.Start(ctx)
		d := time.Since(t0)
		b.StopTimer()
		times = append(times, d)
		if err != nil {
			b.Fatal(err)
		}
		if got := c.Shared().Start; got != want {
			b.Fatalf("Start was %s; want %s", got, want)
		}
		if err := c.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "median-ns")
	b.ReportMetric(float64(srv.Count("")-requests)/float64(b.N), "requests/op")
}
