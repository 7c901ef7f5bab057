// Package verdict decides what one call to the licence server means. It is
// the only place that does: Classify turns every outcome of a call (dial,
// TLS or timeout error, redirect, any status, any body, sealed or not) into
// exactly one Category and one typed error, and a Redactor removes the
// client's secrets from every network text before it reaches an error, a
// log line or an event. The license package and its doctor call it; the
// transport below it only reports what happened on the wire.
//
// A verdict that locks a paying customer out, or lets anyone in, needs the
// licence server's own word: a reply that opens as a sealed reply to this
// very request or, with the vendor's opt-out (InsecureUnsealedReplies), the
// spec's failure shape (parseFailure). Anything else on the path (a proxy
// page, a 407, a redirect, a 5xx, an empty body) is Unreachable, and
// offline grace applies: docs/errors.md ("The rule") says it in full.
//
// Refusal kinds come from Rules on the server's free text (Kind.Final says
// which are saved). The Redactor, and Classify for the request's own payload
// values, run before texts are cut to MaxMessage or MaxExcerpt, so a cut
// never exposes more than 7 characters of a secret. Texts from a transient
// status are left out of errors altogether.
package verdict
