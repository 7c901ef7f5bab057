// Package transport posts JSON requests to a licensing server reliably. It
// knows nothing about licences: it sends bytes to an endpoint, retries what
// is safe to retry, and sorts every failure into one of two classes. The
// license package uses it for every call; a product rarely needs it directly,
// except to inspect a *transport.Error behind a license error (errors.As).
//
// # Overview
//
// A Client is built once with New from a base URL that holds the protocol
// version path, e.g. "https://licensing.example.com/api/v2". Do posts a
// Request's Body to the base URL + "/" + Endpoint with
// "Content-Type: application/json", "Accept: application/json" and a
// User-Agent of "licensekit-go/<Version> (<GOOS>/<GOARCH>)":
//
//	c, err := transport.New("https://licensing.example.com/api/v2")
//	...
//	resp, err := c.Do(ctx, transport.Request{
//		Endpoint: "begin_session",
//		Body:     body,
//		Retry:    transport.RetryUnsent,
//	})
//
// Do returns the *Response for a 2xx reply, and a *Error (plus the *Response
// when a reply arrived) for anything else. A Client is safe for concurrent
// use. New does no I/O and starts no goroutines.
//
// Retries run on github.com/hashicorp/go-retryablehttp. Each Do call builds
// its own retryablehttp.Client over the Client's http.Client, with this
// package's retry policy, backoff and logger; the library's package-level
// helpers and its stderr logger are never used.
//
// # Retries
//
// Each Request picks its retry class:
//
//   - RetryIdempotent retries network errors, a timed-out attempt, and HTTP
//     408, 429, 502, 503 and 504.
//   - RetryUnsent is for requests that must not run twice (one that takes a
//     seat). It retries only when the request cannot have reached the
//     server (the dial failed: refused, DNS failure, unreachable host) or
//     when the server said it did not process it (429, 503). A reset, EOF or
//     timeout after sending is final.
//
// Neither class retries a TLS certificate error, a redirect or any other
// status. Attempts default to 3 (WithMaxAttempts, Request.MaxAttempts).
//
// The wait before retry n (from 0) is U[0.5,1)·min(max, min·2ⁿ), 500 ms to
// 10 s by default (WithBackoff), never zero. On 429 and 503 a Retry-After
// header (delay seconds or an HTTP date) lengthens the wait to
// min(Retry-After, cap), cap 60 s by default (WithRetryAfterCap); it never
// shortens it. The wait ends early when ctx ends; and when ctx has a
// deadline that would pass before the next attempt starts, Do does not wait
// at all but returns the last outcome.
//
// Each attempt is bounded by the attempt timeout (10 s, WithAttemptTimeout),
// which covers reading the reply body; ctx bounds the whole call.
//
// # Errors
//
// Every failure is a *Error carrying the endpoint, the last HTTP status (0
// without a reply), the number of attempts and the capped Retry-After; when
// a reply arrived, Do also returns the *Response with its status, headers
// and body. Its Is method puts it in at most one class:
//
//   - ErrUnreachable (Temporary() is true): no final reply could be taken:
//     network errors, TLS failures (a certificate that does not verify
//     included), timeouts, a cancelled or expired ctx (the error also
//     matches context.Canceled or context.DeadlineExceeded), a body that
//     could not be read or was over the cap (ErrResponseTooLarge), and the
//     transient statuses 408, 429 and 5xx.
//   - ErrStatus: a reply with a final status outside 2xx: 1xx, 3xx
//     (ErrRedirect) and 4xx other than 408 and 429.
//
// ErrInvalidRequest (nothing sent) is in neither class. The package never
// decides that a reply is a refusal and never parses a body: what a status
// and body mean is protocol knowledge, for the caller (the license package
// classifies replies in internal/verdict). Redirects are never followed: a
// POST body goes only where the caller sent it.
//
// No error or log record holds a request or reply body, an API key, a
// token or a URL query (New rejects base URLs with a query or user info).
// The only network texts logged, an attempt's error text and a Deprecation
// or Sunset value, pass the caller's WithRedactor function first.
//
// # Limits
//
// Reply bodies are capped at 1 MiB (WithMaxResponseBytes). A body that
// declares or turns out to be longer is an ErrResponseTooLarge error and is
// never read past the cap.
//
// # TLS and proxies
//
// The default transport requires TLS 1.2 or later and takes proxies from
// the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). WithRootCAs sets the
// CAs that verify the server. WithHTTPClient starts from a copy of the
// caller's *http.Client, never modifying it: a *http.Transport is cloned and
// raised to TLS 1.2, redirects are switched off, and its Timeout becomes the
// attempt timeout.
//
// # Logging
//
// WithLogger takes a *slog.Logger, also handed to go-retryablehttp; by
// default nothing is logged. Do logs each attempt at Debug (endpoint,
// attempt, status, error, retry_in). A reply carrying a Deprecation or
// Sunset header is logged at Warn once per Client and distinct value (up to
// 32 distinct values), and the values are exposed on Response. go-retryablehttp adds its own records
// ("performing request", "request failed", "retrying request") with the
// attribute component=go-retryablehttp; they are all demoted to Debug, since
// whether a failed attempt matters is for the caller to judge. They carry
// the URL, which never has a query.
//
// # Testing
//
// WithRoundTripper sends requests through any http.RoundTripper instead of
// the network, for example an http.Handler called in memory. No sockets are
// involved, so a Client built this way runs inside a testing/synctest
// bubble, where backoff waits, Retry-After and attempt timeouts take no real
// time.
package transport
