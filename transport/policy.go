package transport

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Retry selects which failures Do retries for one Request. The zero value
// is RetryIdempotent.
type Retry int

const (
	// RetryIdempotent retries network errors (except TLS certificate
	// errors), timeouts of a single attempt, and HTTP 408, 429, 502, 503 and
	// 504. Use it for requests the server may safely see twice.
	RetryIdempotent Retry = iota

	// RetryUnsent retries only when the request cannot have reached the
	// server (the dial failed: connection refused, DNS failure, no route) or
	// when the server said it did not process it (HTTP 429 or 503). A reset,
	// an EOF or a timeout after the request was sent is not retried. Use it
	// for requests that must not run twice, such as one that takes a seat.
	RetryUnsent
)

var retryNames = [...]string{RetryIdempotent: "idempotent", RetryUnsent: "unsent"}

// String returns "idempotent", "unsent" or "Retry(n)".
func (r Retry) String() string {
	if r >= 0 && int(r) < len(retryNames) {
		return retryNames[r]
	}
	return "Retry(" + strconv.Itoa(int(r)) + ")"
}

// retryable reports whether an attempt that ended with status (0 when no
// reply arrived) and err may be sent again under class r. It does not look
// at the context or the attempt budget.
func retryable(r Retry, status int, err error) bool {
	if err != nil {
		return !IsCertificateError(err) && (r != RetryUnsent || unsent(err))
	}
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusRequestTimeout, http.StatusBadGateway, http.StatusGatewayTimeout:
		return r == RetryIdempotent
	}
	return false
}

// unsent reports whether err proves the request never reached the server
// (see RetryUnsent).
func unsent(err error) bool {
	op, ok := errors.AsType[*net.OpError](err)
	return is[*net.DNSError](err) || ok && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}

// retryAfter parses a Retry-After header value, either delay seconds
// ("120") or an HTTP date, relative to now, and caps the result at limit
// (a negative limit counts as 0). A date in the past gives 0. ok is false
// when the value is empty or malformed. A delay too large for an int64
// counts as the cap.
func retryAfter(value string, now time.Time, limit time.Duration) (d time.Duration, ok bool) {
	limit = max(limit, 0)
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if strings.Trim(value, "0123456789") == "" {
		secs, err := strconv.ParseInt(value, 10, 64)
		if err != nil || secs > int64(limit/time.Second) {
			return limit, true // overflow or above the cap
		}
		return min(time.Duration(secs)*time.Second, limit), true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), limit), true
}
