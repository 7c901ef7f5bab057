package admin_test

import (
	"github.com/licensekit/licensekit-go/internal/testhome"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// State files and anti-rollback records stay out of the real user's
	// configuration directory.
	goleak.VerifyTestMain(testhome.M(m))
}
