package license_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// ExampleClient_ActivateOffline runs the offline ceremony against the mock:
// the air-gapped machine writes a request file, an online machine posts it
// (ExchangeOffline), the reply file comes back. A new machine carries two
// files: register_instance, then begin_session.
func ExampleClient_ActivateOffline() {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: "my-product", Key: "LIC-0000-1234",
		Features: "pro", SessionDuration: 90 * 24 * time.Hour, GracePeriod: 14 * 24 * time.Hour})
	ctx := context.Background()

	// The offline machine: its ServerURL is never reached.
	offline, err := license.New(license.Config{
		ServerURL:       "https://licensing.invalid/api/v2",
		APIKey:          srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID:     "my-product",
		LicenseKey:      "LIC-0000-1234",
	}, license.WithStateStore(&license.MemoryStateStore{}))
	if err != nil {
		log.Fatal(err)
	}
	defer offline.Close(ctx)
	// The online machine, or the vendor's portal.
	exchange := func(req []byte) []byte {
		var reply bytes.Buffer
		cfg := license.ExchangeConfig{ServerURL: srv.URL, APIKey: srv.Info().APIKey}
		if err := license.ExchangeOffline(ctx, cfg, bytes.NewReader(req), &reply); err != nil {
			log.Fatal(err)
		}
		return reply.Bytes()
	}

	for more := true; more; {
		var req bytes.Buffer
		if err := offline.OfflineRequest(ctx, &req); err != nil {
			log.Fatal(err)
		}
		if more, err = offline.ActivateOffline(ctx, bytes.NewReader(exchange(req.Bytes()))); err != nil {
			log.Fatal(err)
		}
	}
	st := offline.Status()
	fmt.Println(st.State, offline.HasFeature("pro"), st.SessionDuration)
	fmt.Println("seats in use:", srv.SeatsInUse("my-product", "LIC-0000-1234"))

	var end bytes.Buffer
	if err := offline.OfflineDeactivate(ctx, &end); err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid after deactivation:", offline.Valid())
	exchange(end.Bytes())
	fmt.Println("seats in use:", srv.SeatsInUse("my-product", "LIC-0000-1234"))
	// Output:
	// Active true 2160h0m0s
	// seats in use: 1
	// valid after deactivation: false
	// seats in use: 0
}
