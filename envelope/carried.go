package envelope

import (
	"bytes"
	"slices"
	"time"
)

// flagCarried marks a carried request (Request.Carried) in the authenticated
// header: FORMAT.md, "Carried requests".
const flagCarried byte = 0x02

// CarriedWindow is how old a carried request's timestamp may be when a
// server accepts it: a request written on an air-gapped machine may take
// weeks to reach the server. Its future side stays the ordinary window. A
// server remembers every carried request id it answered for this whole
// window, durably, so that a carried request is processed once and a copy
// gets the stored reply (FORMAT.md, "Carried requests").
const CarriedWindow = 30 * 24 * time.Hour

// checkFlags rejects reserved flag bits, and a carried request that does not
// ask for a sealed reply: its reply must be authenticated on the machine
// that wrote it, days after the fact.
func checkFlags(f byte) error {
	if f&^(flagSealedReply|flagCarried) != 0 {
		return newError("open", "reserved flag bits set", ErrMalformed)
	}
	if f&flagCarried != 0 && f&flagSealedReply == 0 {
		return newError("open", "carried request without a sealed reply", ErrMalformed)
	}
	return nil
}

// An exported reply opener is laid out as FORMAT.md, "Carried requests",
// says. Whoever holds it can open (and, in shared-secret mode, forge) the
// reply to that one request: keep it sealed at rest.

// ExportReplyOpener returns the bytes that let ImportReplyOpener rebuild r
// later, in another process: the reply secret and binding of one request.
// A client that carries a request by file keeps them (sealed) until the
// reply comes back. Only the ReplyOpeners of this package's Sealers built
// with WithSealedReplies can be exported; any other is an error matching
// ErrNotRequested (a plain reply) or ErrUnsupportedVersion (another scheme).
// The result is secret.
func ExportReplyOpener(r ReplyOpener) ([]byte, error) {
	const op = "export reply opener"
	switch o := r.(type) {
	case *replyOpener:
		b := make([]byte, 0, 1+len(o.keys.secret)+len(o.keys.binding))
		b = append(b, o.keys.version)
		b = append(b, o.keys.secret...)
		return append(b, o.keys.binding...), nil
	case plainReply:
		return nil, newError(op, "the request did not ask for a sealed reply", ErrNotRequested)
	}
	return nil, newError(op, "not a format 2 reply opener", ErrUnsupportedVersion)
}

// ImportReplyOpener rebuilds a ReplyOpener from ExportReplyOpener's bytes.
// Bad input is an error matching ErrMalformed.
func ImportReplyOpener(b []byte) (ReplyOpener, error) {
	const op = "import reply opener"
	if len(b) < 1+replySecretLen {
		return nil, newError(op, "truncated", ErrMalformed)
	}
	v, binding := b[0], b[1+replySecretLen:]
	isEnc := func(k KEM) bool {
		p, _ := k.params()
		return len(binding) == p.encLen
	}
	if !(v == versionReplySecret && len(binding) == secretSaltLen ||
		v == versionReplyHPKE && slices.ContainsFunc([]KEM{KEMX25519, KEMMLKEM768X25519}, isEnc)) {
		return nil, newError(op, "unknown version or binding length", ErrMalformed)
	}
	return &replyOpener{keys: replyKeys{
		version: v,
		secret:  bytes.Clone(b[1 : 1+replySecretLen]),
		binding: bytes.Clone(binding),
	}}, nil
}
