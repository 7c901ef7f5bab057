package license

import (
	"context"
	"errors"
	"strings"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/text"
	"github.com/licensekit/licensekit-go/internal/verdict"
)

// replyAuthenticator is how a sealer says whether its reply openers
// authenticate replies. A sealer without the method does not.
type replyAuthenticator interface{ RepliesAuthenticated() bool }

// authenticatesReplies reports whether a WithSealer sealer's reply
// openers authenticate replies; New rejects one that does not unless
// InsecureUnsealedReplies is set (options.check).
func authenticatesReplies(s envelope.Sealer) bool {
	ra, ok := s.(replyAuthenticator)
	return ok && ra.RepliesAuthenticated()
}

// setupVerdicts decides, in New, whether replies must be sealed, and builds
// the redactor that knows the client's secrets.
func (c *Client) setupVerdicts(custom bool) {
	c.sealed = !c.cfg.InsecureUnsealedReplies && (!custom || authenticatesReplies(c.sealer))
	c.redact = verdict.NewRedactor(c.cfg.APIKey, c.cfg.LicenseKey)
	c.redact.AddSecret(c.cfg.SharedSecret)
	c.kinds = c.opts.kinds
	if c.kinds == nil {
		c.kinds = verdict.DefaultRules().Classify
	}
}

// warnInsecure logs, once per client, that replies are not authenticated.
func (c *Client) warnInsecure() {
	if c.cfg.InsecureUnsealedReplies && c.warnedInsecure.CompareAndSwap(false, true) {
		c.log.Warn("InsecureUnsealedReplies is set: replies are not authenticated, so anyone who can redirect " +
			"this client's traffic can grant or refuse licences; use sealed replies if the server supports them")
	}
}

// localFault is the error of a local step that failed before or instead
// of a call ("fingerprint", "open state"): a client fault, or, when the
// step was cut short by its context, unreachable like a cancelled call.
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

// toCaller returns the error of an explicit call or a failed Start: no
// background loop retries it, so its text must not promise a retry. The
// *Error is copied, never changed: Status may hold the same one.
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
