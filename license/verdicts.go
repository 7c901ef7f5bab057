package license

import (
	"context"
	"errors"
	"strings"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/text"
	"github.com/licensekit/licensekit-go/internal/verdict"
)

// authenticatesReplies reports whether a WithSealer sealer says (with a
// RepliesAuthenticated method) that its reply openers authenticate replies.
func authenticatesReplies(s envelope.Sealer) bool {
	ra, ok := s.(interface{ RepliesAuthenticated() bool })
	return ok && ra.RepliesAuthenticated()
}

// warnInsecure logs, once per client, that replies are not authenticated.
func (c *Client) warnInsecure() {
	if c.cfg.InsecureUnsealedReplies && c.warnedInsecure.CompareAndSwap(false, true) {
		c.log.Warn("InsecureUnsealedReplies is set: replies are not authenticated, so anyone who can redirect " +
			"this client's traffic can grant or refuse licences; use sealed replies if the server supports them")
	}
}

// localFault is the error of a local step ("fingerprint", "open state"): a
// client fault, or unreachable when its context cut it short.
func localFault(step string, err error) error {
	e := &Error{Endpoint: step, Category: verdict.ClientFault, Reason: text.Clean(lastPart(err), 120),
		Next: "will retry", Cause: err}
	switch {
	case errors.Is(err, context.Canceled):
		e.Category, e.Detail, e.Reason, e.Next = verdict.Unreachable, verdict.DetailTimeout, "cancelled", ""
	case errors.Is(err, context.DeadlineExceeded):
		e.Category, e.Detail, e.Reason = verdict.Unreachable, verdict.DetailTimeout, "timed out"
	}
	return e
}

// toCaller drops the retry promise from an error no loop retries (an
// explicit call, a failed Start), copying the *Error that Status may hold.
func toCaller(err error) error {
	if e, ok := err.(*Error); ok && e.Next != "" {
		cp := *e
		cp.Next = ""
		return &cp
	}
	return err
}

// lastPart is an error's text without its chain of prefixes
// ("envelope: seal: plaintext too large" gives "plaintext too large").
func lastPart(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
