// Package envelope seals the "data" field of licensing requests and,
// optionally, the server's replies. It is pure cryptography with no I/O: the
// client side seals requests and opens replies; the server side opens
// requests and seals replies. This comment is the normative description of
// the byte format, so that a server in any language can implement it;
// envelope/FORMAT.md carries the same text and testdata/envelope/*.json the
// test vectors.
//
// A product never calls this package itself: license.Config.ServerPublicKey
// (or SharedSecret) is all a client needs. A vendor's Go server uses it to
// open requests and seal replies (docs/server.md walks through it):
//
//	priv, err := envelope.GenerateKey(envelope.KEMX25519)   // once; keep it secret
//	pubText := priv.Public().EncodeBase64()                 // ship this in the product
//	opener, err := envelope.NewOpener(priv)                 // server start-up
//	plaintext, reply, err := opener.Open(req.Key, req.Data) // each request
//	body, err := reply.SealReply(answer)                    // when reply.Requested()
//
// examples/keygen makes and stores a key pair; examples/vendorserver is a
// complete server handler.
//
// # Overview
//
// A request body is {"key": <API key>, "data": <data>}. This package produces
// and consumes <data>: the standard base64 encoding (RFC 4648 section 4,
// with padding) of a binary envelope whose first byte is its version:
//
//	0x01  public-key mode request (HPKE, the default)
//	0x02  shared-secret mode request (AES-256-GCM)
//	0x81  public-key mode sealed reply
//	0x82  shared-secret mode sealed reply
//
// Every other first byte is an unsupported version. All integers are big
// endian. Strings are UTF-8 bytes without terminator. || is concatenation.
// HKDF is HKDF-SHA256 (RFC 5869). AES-256-GCM uses 12-byte nonces and
// 16-byte tags, appended to the ciphertext.
//
// Both modes bind the API key: data sealed under one API key does not open
// under another.
//
// # Public-key mode
//
// The client seals with HPKE (RFC 9180) in base mode to the server's public
// key, so the public key built into a product gives an attacker nothing. The
// suite is KEM (one of the two below) + KDF HKDF-SHA256 (0x0001) + AEAD
// AES-256-GCM (0x0002):
//
//	KEM id  name                          Npk   Nsk  Nenc
//	0x0020  DHKEM(X25519, HKDF-SHA256)      32    32    32
//	0x647a  MLKEM768-X25519 (X-Wing)      1216    32  1120
//
// The request envelope is:
//
//	offset   size  field
//	0        1     version = 0x01
//	1        1     flags: bit 0 (0x01) = sealed reply requested; bits 1-7 must be 0
//	2        2     KEM id (0x0020 or 0x647a)
//	4        2     KDF id = 0x0001
//	6        2     AEAD id = 0x0002
//	8        8     key id (see Keys)
//	16       Nenc  enc, the HPKE encapsulated key
//	16+Nenc  n+16  ct = context.Seal(aad = bytes 0..15 (the header), plaintext)
//
// where the HPKE context is SetupBaseS(pkR, info) with
//
//	info = "licensekit-envelope v1 request" || 0x00 || api_key
//
// so the header (including the sealed-reply flag) is authenticated as
// associated data and the API key through info. The server checks, in order:
// size, base64, version, header length, flags, KDF and AEAD ids, KEM id,
// that KEM id and key id name its key, the total length (at least
// 16 + Nenc + 16), and then opens with SetupBaseR(enc, skR, info).
//
// # Shared-secret mode
//
// For servers with symmetric keys. Both sides hold a secret of at least 32
// bytes and derive
//
//	prk         = HKDF-Extract(salt = "licensekit-envelope v1 shared secret", ikm = secret)
//	request_key = HKDF-Expand(prk, "request key", 32)
//	key_id      = HKDF-Expand(prk, "key id", 8)
//
// The request envelope is:
//
//	offset  size  field
//	0       1     version = 0x02
//	1       1     flags: bit 0 (0x01) = sealed reply requested; bits 1-7 must be 0
//	2       8     key id
//	10      12    nonce, fresh random bytes
//	22      n+16  ct = AES-256-GCM(request_key, nonce, aad = bytes 0..21 || api_key, plaintext)
//
// Random 96-bit nonces limit one secret to about 2^32 requests.
//
// # Sealed replies
//
// Sealed replies are an opt-in extension (WithSealedReplies): the client sets
// flag bit 0 and the server answers with the HTTP body
//
//	{"data":"<standard base64 of the reply envelope>"}
//
// which must be a JSON object with exactly that one member. The construction
// follows Oblivious HTTP (RFC 9458, section 4.4). Both ends derive a 32-byte
// reply secret from the request and a request binding:
//
//	public-key mode:    secret  = context.Export("licensekit-envelope v1 response", 32)
//	                    binding = enc
//	shared-secret mode: secret  = HKDF-Expand(prk, "response" || 0x00 || api_key, 32)
//	                    binding = the request's 12-byte nonce
//
// The server draws a fresh 32-byte response_nonce and computes
//
//	prk_r = HKDF-Extract(salt = binding || response_nonce, ikm = secret)
//	key   = HKDF-Expand(prk_r, "key", 32)
//	iv    = HKDF-Expand(prk_r, "nonce", 12)
//
// The reply envelope is:
//
//	offset  size  field
//	0       1     version = 0x81 (public-key) or 0x82 (shared-secret)
//	1       32    response_nonce
//	33      n+16  ct = AES-256-GCM(key, iv, aad = byte 0 (the version), reply plaintext)
//
// Because the salt contains the request's enc or nonce, a reply cannot be
// replayed onto another request; in public-key mode it cannot be forged
// without the server's private key. A client that asked for a sealed reply
// treats any other body (plain JSON, a server error, a reply to another
// request) as an error matching ErrUnauthentic: it fails closed. A server
// that cannot open a request cannot seal its refusal, so such refusals
// arrive plain and are rejected the same way.
//
// # Keys
//
// Keys serialize as kind (1 byte) || KEM id (2 bytes) || the KEM's own
// serialization (RFC 9180 SerializePublicKey / SerializePrivateKey; for
// MLKEM768-X25519 the private key is the 32-byte seed). The kind is 0x01 for
// a public key and 0x02 for a private key, so one is never mistaken for the
// other. The text forms are the standard base64 of these bytes, or PEM blocks
// of type "LICENSEKIT HPKE PUBLIC KEY" and "LICENSEKIT HPKE PRIVATE KEY"
// whose headers (KEM, Key-Id) are informational.
//
// The public-key mode key id is the first 8 bytes of
//
//	SHA-256("licensekit-envelope v1 key id" || 0x00 || KEM id || pkR)
//
// The key id only routes a request to a key (see MultiOpener); it is not a
// secret and not an authenticator.
//
// # Errors
//
// Every error is an [*Error] with the operation and a short reason. Open
// errors match exactly one of ErrMalformed, ErrUnauthentic and
// ErrUnsupportedVersion; every OpenReply error matches ErrUnauthentic (and
// ErrMalformed or ErrUnsupportedVersion where that applies). Seal and
// SealReply return ErrTooLarge when the envelope would exceed MaxDataSize.
// Error texts never contain key material, API keys or payloads. Untrusted
// input never panics: every length is checked before slicing, input is
// bounded by MaxDataSize, and the parsers are fuzzed.
//
// # Custom schemes
//
// Sealer, ReplyOpener, Opener and ReplySealer are small interfaces. A vendor
// whose server already uses another scheme implements them and plugs them
// into the client without forking; MultiOpener accepts such openers too.
//
// # Test vectors
//
// testdata/envelope/public_key_x25519.json, public_key_mlkem768x25519.json
// and shared_secret.json hold keys, key ids, API keys, plaintexts, data
// values, sealed reply bodies and the expected results, including negative
// cases (wrong key, wrong API key, flipped bits, truncation, unknown
// version, bad base64). They are compatibility fixtures: they must keep
// opening forever.
package envelope
