package transport_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/transport"
)

// BenchmarkDo compares Client.Do with a bare http.Client.Do over the same
// in-memory RoundTripper (no sockets), so the ratio is the cost of the
// transport layer: retryablehttp, headers, the capped read and the error
// mapping. The bare client has the same attempt timeout.
func BenchmarkDo(b *testing.B) {
	reqBody := bytes.Repeat([]byte("k"), 512)
	replyBody := []byte(`{"success":true,"time":"2025-01-01 00:00:00","token":"0123456789abcdef"}`)
	rt := rtFunc(func(r *http.Request) (*http.Response, error) {
		io.Copy(io.Discard, r.Body)
		return reply(r, 200, http.Header{"Content-Type": {"application/json"}}, string(replyBody)), nil
	})
	ctx := context.Background()

	b.Run("transport", func(b *testing.B) {
		c, err := transport.New(base, transport.WithRoundTripper(rt))
		if err != nil {
			b.Fatal(err)
		}
		req := transport.Request{Endpoint: "extend_session", Body: reqBody}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(ctx, req)
			if err != nil || len(resp.Body) != len(replyBody) {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		hc := &http.Client{Transport: rt, Timeout: 10 * time.Second}
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/extend_session", bytes.NewReader(reqBody))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20+1))
			resp.Body.Close()
			if err != nil || len(body) != len(replyBody) {
				b.Fatal(err)
			}
		}
	})
}
