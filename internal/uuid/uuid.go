// Package uuid makes random UUIDs, for the SDK (install ids) and its mock
// server (instance GUIDs).
package uuid

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random RFC 9562 version 4 UUID in its 36-character text
// form, such as "0b0e6f5a-7c1d-4e2f-9a3b-5c6d7e8f9a0b".
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
