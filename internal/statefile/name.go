package statefile

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// nameLabel starts the input of BaseName's hash, so that the name cannot be
// confused with another SHA-256 of the same values.
const nameLabel = "licensekit state name v1"

// BaseName returns the base name of the state files of one licence of one
// product: "lk-" followed by the first 16 bytes (32 hex digits) of
// SHA-256("licensekit state name v1" 0x00 len(product) product licence),
// where len is the product's length in bytes as a big-endian uint64. Pass it to
// [Acquire] as base; the slots are then base, base-1, base-2, ... (several
// live clients of one licence on one machine), so that clients of different
// licences or products never touch each other's files.
//
// The licence key is hashed, not written, because it is a secret; the
// product is hashed with it so that the name has a fixed length and a fixed
// alphabet whatever the product identifier holds.
func BaseName(product, licence string) string {
	in := binary.BigEndian.AppendUint64([]byte(nameLabel+"\x00"), uint64(len(product)))
	sum := sha256.Sum256(append(in, product+licence...))
	return "lk-" + hex.EncodeToString(sum[:16])
}
