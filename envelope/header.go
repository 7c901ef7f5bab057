package envelope

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// Format 2 version bytes (high nibble 2 for requests, 0xA for replies; low
// nibble the mode) and the sealed-reply flag.
const (
	versionHPKE        byte = 0x21
	versionSecret      byte = 0x22
	versionReplyHPKE   byte = 0xA1
	versionReplySecret byte = 0xA2

	flagSealedReply byte = 0x01
)

func fixedHeader(version byte, sealed bool, fields ...byte) []byte {
	h := append([]byte{version, 0}, fields...)
	if sealed {
		h[1] = flagSealedReply
	}
	return h
}

// tailFixedLen is the fixed part of the header fields both modes share after
// their own: timestamp (8), request id and endpoint length (1).
const tailFixedLen = 8 + RequestIDSize + 1

// requestTail holds the shared header fields of a request; the endpoint
// follows tailFixedLen.
type requestTail struct {
	time     time.Time
	id       [RequestIDSize]byte
	endpoint string
	carried  bool // the carried flag, set by the opener from the fixed header
}

func validEndpoint(s string) bool {
	if len(s) == 0 || len(s) > MaxEndpointLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func newTail(req Request) (requestTail, error) {
	if !validEndpoint(req.Endpoint) {
		return requestTail{}, newError("seal", "invalid endpoint name", ErrMalformed)
	}
	t := req.Time
	if t.IsZero() {
		t = time.Now()
	}
	if t.Unix() < 0 {
		return requestTail{}, newError("seal", "timestamp before 1970", ErrMalformed)
	}
	rt := requestTail{time: time.Unix(t.Unix(), 0), endpoint: req.Endpoint}
	if _, err := rand.Read(rt.id[:]); err != nil {
		return requestTail{}, newError("seal", "random source failed", err)
	}
	return rt, nil
}

// parseTail reads the shared header fields at the start of b. It returns the
// fields and their length, or an error for a truncated or invalid tail.
func parseTail(b []byte) (requestTail, int, error) {
	const op = "open"
	if len(b) < tailFixedLen {
		return requestTail{}, 0, newError(op, "truncated header", ErrMalformed)
	}
	secs := binary.BigEndian.Uint64(b[0:8])
	if secs > 1<<62 {
		return requestTail{}, 0, newError(op, "timestamp out of range", ErrMalformed)
	}
	t := requestTail{time: time.Unix(int64(secs), 0), id: [RequestIDSize]byte(b[8 : 8+RequestIDSize])}
	n := int(b[tailFixedLen-1])
	if len(b) < tailFixedLen+n {
		return requestTail{}, 0, newError(op, "truncated header", ErrMalformed)
	}
	t.endpoint = string(b[tailFixedLen : tailFixedLen+n])
	if !validEndpoint(t.endpoint) {
		return requestTail{}, 0, newError(op, "invalid endpoint name", ErrMalformed)
	}
	return t, tailFixedLen + n, nil
}

// sealStart checks req and starts a request: the mode's fixed header (flags
// at byte 1), then the tail, with room for extra header bytes, body bytes
// and the ciphertext of ptLen bytes.
func sealStart(req Request, fixed []byte, extra, body, ptLen int) (requestTail, []byte, error) {
	tail, err := newTail(req)
	if err != nil {
		return requestTail{}, nil, err
	}
	n := len(fixed) + tailFixedLen + len(tail.endpoint) + extra + body + ptLen + gcmTagLen
	if ptLen > MaxDataSize || !encodedFits(n) {
		return requestTail{}, nil, newError("seal", "plaintext too large", ErrTooLarge)
	}
	if req.Carried && fixed[1]&flagSealedReply == 0 {
		return requestTail{}, nil, newError("seal", "a carried request needs sealed replies", ErrNotRequested)
	}
	raw := append(make([]byte, 0, n), fixed...)
	if req.Carried {
		raw[1] |= flagCarried
	}
	raw = binary.BigEndian.AppendUint64(raw, uint64(tail.time.Unix()))
	raw = append(raw, tail.id[:]...)
	raw = append(raw, byte(len(tail.endpoint)))
	return tail, append(raw, tail.endpoint...), nil
}

// openStart reads the tail after the fixed header of raw, the mirror of
// sealStart. It checks the length, the sealed-reply requirement and the
// endpoint, and returns the tail, the header's length and whether the
// client asked for a sealed reply.
func openStart(in Incoming, raw []byte, fixed, extra, body int, requireSealed bool) (requestTail, int, bool, error) {
	const op = "open"
	tail, tlen, err := parseTail(raw[fixed:])
	if err != nil {
		return requestTail{}, 0, false, err
	}
	hlen := fixed + tlen + extra
	if len(raw) < hlen+body+gcmTagLen {
		return requestTail{}, 0, false, newError(op, "truncated data", ErrMalformed)
	}
	sealed := raw[1]&flagSealedReply != 0
	if requireSealed && !sealed {
		return requestTail{}, 0, false, newError(op, "request does not ask for a sealed reply", ErrMalformed)
	}
	if tail.endpoint != in.Endpoint {
		return requestTail{}, 0, false, newError(op, "sealed for another endpoint", ErrUnauthentic)
	}
	tail.carried = raw[1]&flagCarried != 0
	return tail, hlen, sealed, nil
}

func (t *requestTail) opened(pt []byte, rs ReplySealer) *Opened {
	return &Opened{Plaintext: pt, Endpoint: t.endpoint, Time: t.time, ID: t.id, Carried: t.carried, Reply: rs}
}
