package testclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/testclient"
)

// A client for a licence on a mock server, without copying the server's URL
// and keys by hand. In a test, testclient.New(t, srv, lic) does the same and
// closes the client when the test ends.
func Example() {
	srv := licensetest.NewUnstartedServer(nil) // in memory; Options picks Transport()
	defer srv.Close()
	lic := licensetest.License{ProductGUID: "app", Key: "K-1", Features: "pro", GracePeriod: time.Hour}
	if err := srv.AddLicense(lic); err != nil {
		log.Fatal(err)
	}

	c, err := license.New(testclient.Config(srv, lic), testclient.Options(srv)...)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Status().State, c.HasFeature("pro"))
	if err := c.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Status().State, srv.SeatsInUse("app", "K-1"))
	// Output:
	// Active true
	// Ended 0
}
