package licensetest_test

import "github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"

// The licence wiretest.NewServer adds.
const (
	product = wiretest.Product
	key     = wiretest.Key
)
