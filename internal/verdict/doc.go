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
// # Table
//
// In the order Classify applies the rules ("opens" means: passes the
// request's reply opener; with the opt-out every body opens as itself):
//
//	outcome                                        category      detail / sentinel          state effect
//	---------------------------------------------  ------------  -------------------------  ---------------------------------
//	invalid request (never sent)                   ClientFault   ErrClientFault             grace applies; retried later
//	request cannot be encoded or sealed            ClientFault   ErrClientFault             grace applies; retried later
//	dial error, DNS failure, reset, EOF            Unreachable   DetailNetwork              grace; retried with backoff
//	attempt timeout, caller's deadline             Unreachable   DetailTimeout              grace; retried with backoff
//	caller's context cancelled (or Close)          Unreachable   DetailTimeout "cancelled"  none: the call was abandoned
//	TLS certificate does not verify                Unreachable   DetailTLS                  grace; retried with backoff
//	body cut off, or over the 1 MiB cap            Unreachable   DetailNetwork / TooLarge   grace
//	5xx, 429, 408, whatever the body               Unreachable   DetailTransient            grace; Retry-After honoured
//	407 Proxy Authentication Required              Unreachable   ErrIntercepted             grace
//	1xx, every 3xx (redirects are never followed)  Unreachable   ErrIntercepted             grace
//	end_session 422, unsealed opt-out, any body    AlreadyEnded  (no error)                 token forgotten; verdict unchanged
//	2xx/4xx that does not open:
//	  JSON object with v2 or sealed-reply members  Unreachable   ErrUnauthenticated         grace
//	  truncated or invalid JSON                    Unreachable   ErrMalformedReply          grace
//	  HTML, text, empty, JSON of another shape     Unreachable   ErrIntercepted             grace
//	end_session 422 that opens, whatever it holds  AlreadyEnded  (no error)                 token forgotten; verdict unchanged
//	2xx/4xx that opens, spec failure shape         Refused       *APIError, Kind by rules   Refused at once, no grace (1)
//	2xx that opens, decodes, next request fits     Success       (no error)                 Active; deadlines reset
//	2xx that opens but does not decode (2)         Unreachable   ErrMalformedReply          grace
//	4xx that opens, not the failure shape:
//	  sealed reply                                 Unreachable   ErrMalformedReply          grace
//	  unsealed opt-out                             Unreachable   ErrIntercepted             grace
//	2xx unsealed opt-out, not JSON                 Unreachable   ErrIntercepted             grace
//
// (1) In renewal, a refused extend_session first ends the old token and
// tries one fresh begin_session; only a refused begin makes the state
// Refused. A begin refused with kind KindUnknownInstance registers again,
// once. A refused end_session counts as ended.
//
// (2) Missing token or guid, a session_duration that is not positive,
// wrong JSON types, "success": false without a string "error", or a token
// or instance GUID so large that the next request could not be sealed (the
// client logs that once).
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
