package admin_test

import (
	"flag"

	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

// The licence wiretest.NewServer adds.
const (
	product = wiretest.Product
	key     = wiretest.Key
)

var update = flag.Bool("update", false, "rewrite golden files")
