package statefile

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBaseName pins the state file naming: other files (shared sessions,
// anti-rollback records) and existing installations depend on it.
func TestBaseName(t *testing.T) {
	t.Parallel()
	a := BaseName("prod-7d1c", "LK-TEST-4242")
	assert.Equal(t, "lk-cba2203c05d2021802137a97228dfeed", a)
	assert.Regexp(t, regexp.MustCompile(`^lk-[0-9a-f]{32}$`), a)
	assert.NoError(t, checkBase(a), "a plain file name")
	assert.NotEqual(t, a, BaseName("prod-7d1c", "LK-TEST-4243"), "another licence")
	assert.NotEqual(t, a, BaseName("prod-7d1d", "LK-TEST-4242"), "another product")
	assert.NotEqual(t, BaseName("a\x00b", "c"), BaseName("a", "b\x00c"), "the separator is unambiguous")
	assert.NotContains(t, a, "4242", "the licence key is not in the name")
}
