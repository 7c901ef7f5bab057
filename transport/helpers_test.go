package transport_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/transport"
)

// newServer starts an httptest server that is closed when the test ends.
// Its error log is silenced (TLS handshake failures are expected in tests).
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = newDiscardLog()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// newClient builds a Client with a tiny backoff (later options may override
// it) and closes its idle connections when the test ends.
func newClient(t *testing.T, base string, opts ...transport.Option) *transport.Client {
	t.Helper()
	tiny := transport.WithBackoff(time.Microsecond, 10*time.Microsecond)
	c, err := transport.New(base, append([]transport.Option{tiny}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// asError returns err as a *transport.Error or fails the test.
func asError(t *testing.T, err error) *transport.Error {
	t.Helper()
	require.Error(t, err)
	te, ok := errors.AsType[*transport.Error](err)
	require.True(t, ok, "error %T is not a *transport.Error: %v", err, err)
	return te
}

// rtFunc adapts a function to http.RoundTripper.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	return f(r)
}

// handlerRT serves requests in memory through an http.Handler: no sockets,
// so it works inside a testing/synctest bubble.
func handlerRT(h http.Handler) http.RoundTripper {
	return rtFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		resp := rec.Result()
		resp.Request = r
		return resp, nil
	})
}

// reply builds an in-memory response.
func reply(r *http.Request, status int, header http.Header, body string) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{
		StatusCode:    status,
		Status:        http.StatusText(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader([]byte(body))),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// waitForCtx blocks until the request's context ends, like a server that
// never answers.
func waitForCtx(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

// find returns the records with the given level and message.
func (h *recorder) find(level slog.Level, msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if r.Level == level && r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// counter counts handler calls.
type counter struct{ n atomic.Int64 }

func (c *counter) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		h(w, r)
	}
}

func (c *counter) get() int { return int(c.n.Load()) }

func newDiscardLog() *log.Logger { return log.New(io.Discard, "", 0) }
