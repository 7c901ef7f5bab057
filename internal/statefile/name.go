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
// product, to pass to [Acquire] as base (docs/lifecycle.md, "State file
// naming"). The licence key is hashed, not written, because it is a secret;
// the product is hashed with it so that the name has a fixed length and
// alphabet whatever the product identifier holds.
func BaseName(product, licence string) string {
	in := binary.BigEndian.AppendUint64([]byte(nameLabel+"\x00"), uint64(len(product)))
	sum := sha256.Sum256(append(in, product+licence...))
	return "lk-" + hex.EncodeToString(sum[:16])
}
