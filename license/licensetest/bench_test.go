package licensetest_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

// BenchmarkLifecycle measures register, begin, extend and end over loopback
// HTTP, reporting the four calls as ops/s. The baseline is a bare loopback
// round trip to an empty handler with the same client settings, in the same
// run: the ratio is what matters on a shared machine.
//
//	go test -run '^$' -bench Lifecycle -benchtime 3s ./license/licensetest/
func BenchmarkLifecycle(b *testing.B) {
	b.Run("baseline_http_roundtrip", func(b *testing.B) {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"time":"2030-01-01T00:00:00Z"}`))
		}))
		defer hs.Close()
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		defer hc.CloseIdleConnections()
		body := bytes.Repeat([]byte("x"), 300)
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := hc.Post(hs.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	for _, mode := range []string{"hpke", "shared_secret"} {
		b.Run(mode, func(b *testing.B) {
			s := licensetest.NewServer(&licensetest.Config{MaxRequests: -1})
			defer s.Close()
			if err := s.AddLicense(licensetest.License{ProductGUID: product, Key: key}); err != nil {
				b.Fatal(err)
			}
			c := wiretest.NewClient(b, s, nil)
			if mode == "shared_secret" {
				c = newSecretClient(b, s, nil)
			}
			var worker atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				n := int(worker.Add(1))
				for pb.Next() {
					if err := lifecycle(c, n); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(4*b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
