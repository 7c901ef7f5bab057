package testclient_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/testclient"
)

// TestProductSurvivesAnOutage is the README's testing example, verbatim (a
// test in internal/docscheck compares the two).
func TestProductSurvivesAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // fake time: the sleep returns at once
		srv := licensetest.NewUnstartedServer(nil) // in memory: no sockets inside the bubble
		t.Cleanup(srv.Close)
		lic := licensetest.License{ProductGUID: "p", Key: "k", SessionDuration: 10 * time.Minute, GracePeriod: time.Hour}
		if err := srv.AddLicense(lic); err != nil {
			t.Fatal(err)
		}
		c := testclient.New(t, srv, lic) // Config, in-memory transport, Close on cleanup
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		srv.SetDown(true)
		time.Sleep(30 * time.Minute) // the session lapses; the hour of grace has begun
		if got := c.Status().State; got != license.Grace {
			t.Errorf("state after 30 min offline = %v; want Grace", got)
		}
	})
}
