// Package verdict decides what one call to the licence server means. It is
// the only place that does: Classify turns every outcome of a call (dial,
// TLS or timeout error, redirect, any status, any body, sealed or not) into
// exactly one Category and one typed error, and a Redactor removes the
// client's secrets from every network text before it reaches an error, a
// log line or an event. The license package and its doctor call it; the
// transport below it only reports what happened on the wire.
//
// # Principle
//
// A verdict that locks a paying customer out, or lets anyone in, needs the
// licence server's own word. With sealed replies (the default) that word is
// a reply that opens as a sealed reply to this very request; with the
// vendor's explicit opt-out (InsecureUnsealedReplies) it is the spec's
// failure shape, a JSON object with "success": false and a string "error",
// at 2xx or at a 4xx that is not a proxy's or timeout's status. Anything
// else on the path (a proxy page, a 407, a redirect, a 5xx, an empty body)
// is Unreachable, and offline grace applies.
//
// # Refusal kinds and redaction
//
// What a refusal means beyond "no" is decided by Rules on the server's free
// text (see Kind.Final for which kinds are saved). A Redactor removes the
// client's secrets, and Classify the request's own payload values, before
// texts are cut to MaxMessage or MaxExcerpt, so a cut never exposes more
// than 7 characters of a secret. Texts from a transient status are left out
// of errors altogether.
package verdict
