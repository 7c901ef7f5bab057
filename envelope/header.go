package envelope

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// Format 2 version bytes. The high nibble is the format (2 for requests,
// 0xA for replies), the low nibble the mode, so that no format 2 value can
// be mistaken for a format 1 mode byte (0x01, 0x02, 0x81, 0x82).
const (
	versionHPKE        byte = 0x21
	versionSecret      byte = 0x22
	versionReplyHPKE   byte = 0xA1
	versionReplySecret byte = 0xA2

	flagSealedReply byte = 0x01
)

// requestTail is the part of the header both modes share, after their own
// leading fields:
//
//	offset  size  field
//	0       8     timestamp, Unix seconds (uint64)
//	8       16    request id (random)
//	24      1     L = endpoint length (1..MaxEndpointLen)
//	25      L     endpoint name (printable ASCII, no space)
const (
	tailFixedLen = 8 + RequestIDSize + 1
)

// requestTail holds the shared header fields of a request.
type requestTail struct {
	time     time.Time
	id       [RequestIDSize]byte
	endpoint string
	carried  bool // the carried flag, set by the opener from the fixed header
}

// validEndpoint reports whether s can be carried in a request header.
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

// newTail checks req and draws a request id.
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

func (t *requestTail) len() int { return tailFixedLen + len(t.endpoint) }

func (t *requestTail) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.time.Unix()))
	b = append(b, t.id[:]...)
	b = append(b, byte(len(t.endpoint)))
	return append(b, t.endpoint...)
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
	var t requestTail
	t.time = time.Unix(int64(secs), 0)
	copy(t.id[:], b[8:8+RequestIDSize])
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

// checkEndpoint rejects a request sealed for another endpoint than the one
// it was posted to.
func checkEndpoint(t *requestTail, in Incoming) error {
	if t.endpoint != in.Endpoint {
		return newError("open", "sealed for another endpoint", ErrUnauthentic)
	}
	return nil
}

func (t *requestTail) opened(pt []byte, rs ReplySealer) *Opened {
	return &Opened{Plaintext: pt, Endpoint: t.endpoint, Time: t.time, ID: t.id, Carried: t.carried, Reply: rs}
}
