package consoletest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/internal/testhome"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testhome.M(m))
}
