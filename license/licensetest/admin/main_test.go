package admin_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/internal/testhome"
)

func TestMain(m *testing.M) {
	// State files and anti-rollback records stay out of the real user's
	// configuration directory.
	goleak.VerifyTestMain(testhome.M(m))
}
