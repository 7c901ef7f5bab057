// Package envelope seals the "data" field of licensing requests and the
// server's replies. It is pure cryptography with no I/O: the client side
// seals requests and opens replies; the server side opens requests, checks
// their freshness and seals replies. envelope/FORMAT.md is the normative,
// byte-exact description of the format (version 2) and of the server-side
// checks, so that a server in any language can implement it.
//
// A product never calls this package itself: license.Config.ServerPublicKey
// (or SharedSecret) is all a client needs. A vendor's Go server uses it to
// open requests and seal replies (docs/server.md walks through it):
//
//	priv, err := envelope.GenerateKey(envelope.KEMX25519) // once; keep it secret
//	pubText := priv.Public().EncodeBase64()               // ship this in the product
//	opener, err := envelope.NewOpener(priv)               // server start-up
//	opened, err := opener.Open(envelope.Incoming{Key: req.Key, Data: req.Data, Endpoint: endpoint})
//	body, err := opened.Reply.SealReply(answer)           // when opened.Reply.Requested()
//
// examples/keygen makes and stores a key pair; examples/vendorserver is a
// complete server handler.
//
// # Overview
//
// A request body is {"key": <key>, "data": <data>}. A [Sealer] turns a
// [Request] (API key, endpoint, timestamp) and a plaintext into a [Sealed]
// value: the "key" and "data" strings and a [ReplyOpener] for this one
// request's reply. An [Opener] turns an [Incoming] request (key, data and the
// endpoint it was posted to) back into an [Opened] one. The built-in modes
// send the API key as "key" and bind the envelope to it; a custom scheme may
// own the "key" field (a wrapped content key, for example).
//
// Format 2 envelopes start with a version byte whose high nibble is the
// format: 0x21 (public-key request), 0x22 (shared-secret request), 0xA1 and
// 0xA2 (their sealed replies). Every request header carries, authenticated
// as associated data, the endpoint name, the client's timestamp and a
// 16-byte random request id:
//
//   - an envelope posted to another endpoint than the one it was sealed for
//     does not open (ErrUnauthentic);
//   - a [Guard] on the server rejects timestamps outside a window (default
//     5 minutes behind, 30 seconds ahead) and answers a repeated request id
//     with the stored reply of the first copy, so retries stay idempotent and
//     captured requests cannot be replayed. It remembers only requests that
//     proved a licence or a session ([Scope]), within per-partition and
//     global bounds, and makes room by forgetting, never by rejecting: no
//     flood from others makes a fresh request stale.
//
// # Public-key mode
//
// The default. The client seals with HPKE (RFC 9180, base mode) to the
// server's public key: DHKEM(X25519) or the hybrid post-quantum
// MLKEM768-X25519, with HKDF-SHA256 and AES-256-GCM. The public key built
// into a product gives an attacker nothing but the ability to send requests;
// only the private key's holder can read them or seal replies.
//
// # Shared-secret mode
//
// For servers with symmetric keys. Each request derives its own AES-256-GCM
// key and nonce from the secret and a random 32-byte salt, so there is no
// nonce limit per secret. Every install holds the secret: whoever extracts
// it from one install can read every customer's requests and seal replies
// that every install accepts. It protects against the path, not against
// the licensee. See docs/security.md.
//
// # Sealed replies
//
// With WithSealedReplies the client asks for, and requires, sealed replies
// (following Oblivious HTTP, RFC 9458 section 4.4): the reply is encrypted
// and authenticated under keys only the two ends of this one request know,
// and cannot be moved to another request. [Sealer.RepliesAuthenticated]
// says whether a client may trust the opened plaintext's verdict whatever
// the HTTP status said.
//
// # Envelope-level rejections
//
// A request that does not open, or fails the Guard, is not a licence
// verdict. [RejectionReply] builds the server's plain answer (the spec's
// failure shape plus "envelope_error" and the server's time) and
// [ParseRejection] recognises it on the client, which treats it as
// "unreachable" and, for a stale timestamp, corrects its clock offset.
//
// # Errors and keys
//
// Every error is an [*Error] with the operation, a short reason and a
// category (see the Err variables); its text never contains key material,
// API keys or payloads. Untrusted input never panics: every length is
// checked before slicing, input is bounded by MaxDataSize, and the parsers
// are fuzzed. FORMAT.md gives the key serialization; the key id only routes
// a request to a key (see MultiOpener), it is neither a secret nor an
// authenticator.
//
// # Custom schemes
//
// Sealer, ReplyOpener, Opener and ReplySealer are small interfaces. A vendor
// whose server already uses another scheme implements them and plugs them
// into the client without forking; MultiOpener accepts such openers too, and
// a Guard works with any Opener that fills Opened.Time and Opened.ID.
//
// # Test vectors
//
// testdata/envelope/*.json hold keys, requests, sealed replies and the
// expected results, with negative cases for every check. From the first
// release on they are compatibility fixtures: they must keep opening
// forever.
package envelope
