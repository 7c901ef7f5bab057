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
// # Retries and timeouts
//
// Each Request picks its retry class: RetryIdempotent, or RetryUnsent for
// requests that must not run twice (one that takes a seat). Neither retries
// a TLS certificate error, a redirect or a final status. Attempts default to
// 3 (WithMaxAttempts, Request.MaxAttempts). The wait before retry n (from 0)
// is U[0.5,1)·min(max, min·2ⁿ), 500 ms to 10 s by default (WithBackoff),
// never zero; on 429 and 503 a Retry-After header can lengthen it, up to a
// cap (WithRetryAfterCap), never shorten it. The wait ends early when ctx
// ends; and when ctx has a deadline that would pass before the next attempt
// starts, Do does not wait at all but returns the last outcome.
//
// Each attempt is bounded by the attempt timeout (10 s, WithAttemptTimeout),
// which covers reading the reply body; ctx bounds the whole call.
//
// # Errors
//
// Every failure is a *Error, in at most one class: ErrUnreachable (no final
// reply could be taken) or ErrStatus (a final status outside 2xx). The
// package never decides that a reply is a refusal and never parses a body:
// what a status and body mean is for the caller (the license package
// classifies replies in internal/verdict). Redirects are never followed: a
// POST body goes only where the caller sent it.
//
// No error or log record holds a request or reply body, an API key, a
// token or a URL query (New rejects base URLs with a query or user info).
// The only network texts logged, an attempt's error text and a Deprecation
// or Sunset value, pass the caller's WithRedactor function first. Reply
// bodies are capped at 1 MiB (WithMaxResponseBytes) and never read past the
// cap.
//
// # TLS and proxies
//
// The default transport requires TLS 1.2 or later and takes proxies from
// the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). WithRootCAs sets the
// CAs that verify the server; WithHTTPClient starts from a copy of the
// caller's *http.Client, never modifying it.
//
// # Logging
//
// WithLogger takes a *slog.Logger; by default nothing is logged. Do logs
// each attempt at Debug (endpoint, attempt, status, error, retry_in), and a
// Deprecation or Sunset header at Warn once per Client and distinct value
// (see Response). go-retryablehttp's own records ("performing request",
// "request failed", "retrying request") carry component=go-retryablehttp and
// the URL, which never has a query; they are all demoted to Debug.
//
// # Testing
//
// WithRoundTripper sends requests through any http.RoundTripper, for example
// an http.Handler called in memory: no sockets are involved, so a Client
// runs inside a testing/synctest bubble, where waits and attempt timeouts
// take no real time.
package transport
