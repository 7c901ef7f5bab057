package license

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServerURLValidation: New rejects a ServerURL that would only fail at
// the first request (a trailing space ends in a 404), and keeps a good one
// exactly, path included.
func TestServerURLValidation(t *testing.T) {
	t.Parallel()
	cfg := func(u string) Config {
		return Config{ServerURL: u, APIKey: "k", ProductGUID: "p", LicenseKey: "l", SharedSecret: make([]byte, 32)}
	}
	for _, bad := range []string{
		"https://licensing.example.com/api/v2 ",
		" https://licensing.example.com/api/v2",
		"https://licensing.example.com/api/v2\n",
		"https://licensing.example.com/api/v2\t",
		"https://licensing.example.com/api\u00a0/v2",
		"https://licensing.example.com/api/v2\u200b",
		"licensing.example.com/api/v2",
		"ftp://licensing.example.com/api/v2",
		"https:///api/v2",
		"https:licensing.example.com",
		"https://licensing.example.com:/api/v2",
		"https://licensing.example.com/api/v2?",
		"https://licensing.example.com/api/v2#top",
		"https://u:p@licensing.example.com/api/v2",
	} {
		_, err := New(cfg(bad))
		assert.ErrorIs(t, err, ErrInvalidConfig, "New(ServerURL %q)", bad)
		if err != nil {
			assert.Contains(t, err.Error(), "ServerURL", "New(ServerURL %q)", bad)
		}
	}
	for _, good := range []string{
		"https://licensing.example.com/api/v2",
		"http://127.0.0.1:8080/api/v2",
		"https://[::1]:8443/licensing/api/v2/",
		"https://licensing.example.com",
	} {
		c, err := New(cfg(good))
		require.NoError(t, err, "New(ServerURL %q)", good)
		assert.Equal(t, good, c.cfg.ServerURL, "the URL is kept as given")
	}
}
