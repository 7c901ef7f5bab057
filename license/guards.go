package license

import (
	"encoding/json"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
)

// Size guards: a payload is sealed into at most envelope.MaxDataSize (1 MiB)
// of base64. New keeps the config's share of a request well inside that,
// and a reply whose values would push the next request over is malformed.
const (
	// maxPlaintext is the largest payload every built-in sealer seals (the
	// largest header is ML-KEM's).
	maxPlaintext = envelope.MaxDataSize/4*3 - 4<<10
	// machineAllowance is what New leaves for the machine facts, the
	// instance GUID and the duration.
	machineAllowance = 64 << 10
	// maxAPIKey bounds the API key, which travels beside the data string.
	maxAPIKey = 16 << 10
)

// checkSizes reports, through bad, config values that cannot fit a request.
func (c *Config) checkSizes(bad func(format string, a ...any)) {
	if len(c.APIKey) > maxAPIKey {
		bad("APIKey is %d bytes; at most %d fit beside the envelope", len(c.APIKey), maxAPIKey)
	}
	reg, _ := json.Marshal(wire.RegisterRequest{ProductGUID: c.ProductGUID, LicenseKey: c.LicenseKey,
		Name: c.UserName, Email: c.UserEmail, UserHash: c.UserAttributes})
	begin, _ := json.Marshal(wire.BeginRequest{ProductGUID: c.ProductGUID, LicenseKey: c.LicenseKey,
		UserHash: c.UserAttributes})
	if n, limit := max(len(reg), len(begin)), maxPlaintext-machineAllowance; n > limit {
		bad("ProductGUID, LicenseKey, UserName, UserEmail and UserAttributes take %d bytes "+
			"in a request; at most %d fit in the 1 MiB envelope", n, limit)
	}
}
