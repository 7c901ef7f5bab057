package doctor_test

import (
	"context"
	"fmt"
	"os"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/doctor"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// Run diagnoses a client against the mock server. Without Full the
// doctor takes no seat: the server answers its probe with "unknown token".
func ExampleRun() {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: "my-app", Key: "ABCD-1234"})
	dir, _ := os.MkdirTemp("", "doctor-example-")
	defer os.RemoveAll(dir)

	cfg := license.Config{
		ServerURL:       srv.URL,
		APIKey:          srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID:     "my-app",
		LicenseKey:      "ABCD-1234",
		StateDir:        dir,
	}
	rep, err := doctor.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, id := range []string{doctor.CheckConfig, doctor.CheckTLS, doctor.CheckHTTP, doctor.CheckState, doctor.CheckRoundTrip} {
		c, _ := rep.Check(id)
		fmt.Printf("%-9s %s\n", c.ID, c.Verdict)
	}
	fmt.Println("seats in use:", srv.SeatsInUse("my-app", "ABCD-1234"))
	// Output:
	// config    ok
	// tls       skipped
	// http      ok
	// state     ok
	// roundtrip skipped
	// seats in use: 0
}
