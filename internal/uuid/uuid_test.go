package uuid_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/licensekit/licensekit-go/internal/uuid"
)

func TestNew(t *testing.T) {
	t.Parallel()
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := uuid.New()
		assert.Regexp(t, v4, id)
		assert.False(t, seen[id], "repeated %s", id)
		seen[id] = true
	}
}
