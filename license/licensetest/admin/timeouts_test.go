package admin_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/licensetest/admin"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

// TestLiveStreamOutlivesTimeouts: the admin API's event stream keeps
// delivering after the listener's read and write timeouts have passed.
func TestLiveStreamOutlivesTimeouts(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, wiretest.License())
	adm := admin.NewHandler(s, admin.Options{Token: adminToken})
	hs := httptest.NewUnstartedServer(adm)
	wiretest.RoomyHeaders.Apply(hs.Config)
	hs.Start()
	defer hs.Close()
	defer adm.Close()

	events := openEvents(t, hs.URL)
	next := func() string { return events.next(t) }
	first := next()
	assert.Contains(t, first, `"state":"active"`)
	time.Sleep(2 * wiretest.RoomyHeaders.Write) // past the read and write timeouts
	post, err := http.NewRequest(http.MethodPost, hs.URL+"/admin/revoke?"+url.Values{"product": {product}, "key": {key}}.Encode(), nil)
	require.NoError(t, err)
	bearer(post)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	presp, err := (&http.Client{Transport: tr}).Do(post)
	require.NoError(t, err)
	presp.Body.Close()
	revoked := false
	for !revoked {
		revoked = strings.Contains(next(), `"state":"revoked"`)
	}
}
