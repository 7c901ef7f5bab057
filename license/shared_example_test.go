package license_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// ExampleWithSharedSession shares one session among the runs of a
// command-line tool. Each client here stands for one process of the
// product: the first begins the session, a second one started while the
// first runs follows it, and a third started after both exited resumes it.
// Only the first makes requests.
func ExampleWithSharedSession() {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: "my-tool", Key: "LIC-123",
		Features: "pro", SessionDuration: time.Hour, GracePeriod: 24 * time.Hour})
	stateDir, _ := os.MkdirTemp("", "example-shared")
	defer os.RemoveAll(stateDir)

	cfg := license.Config{
		ServerURL:       srv.URL,
		APIKey:          srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID:     "my-tool",
		LicenseKey:      "LIC-123",
		StateDir:        stateDir, // required: the processes share it
	}
	ctx := context.Background()
	run := func() *license.Client {
		c, err := license.New(cfg, license.WithSharedSession(license.SharedSession{}))
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			log.Fatal(err)
		}
		sh := c.Shared()
		fmt.Println(sh.Role, sh.Start, c.Status().State, "pro:", c.HasFeature("pro"), "requests so far:", srv.Count(""))
		return c
	}
	first := run()
	second := run()
	second.Close(ctx)
	first.Close(ctx) // the last one leaves the session to lapse
	third := run()
	third.Close(ctx)
	fmt.Println("seats in use:", srv.SeatsInUse("my-tool", "LIC-123"))
	// Output:
	// Renewer Began Active pro: true requests so far: 2
	// Follower Followed Active pro: true requests so far: 2
	// Renewer Resumed Active pro: true requests so far: 2
	// seats in use: 1
}
