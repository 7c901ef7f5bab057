// Command snippet is the README's integration example, kept as a file so that
// CI compiles it exactly as the README prints it (a test compares the two).
package main

import (
	"context"
	"errors"
	"log"
	"os"
	"path/filepath"

	"github.com/licensekit/licensekit-go/license"
)

// Built into the product. None of these is secret (docs/server.md says why).
const (
	serverURL       = "https://licensing.example.com/api/v2"
	apiKey          = "ak_live_example"
	serverPublicKey = "AQAgslljoiAekogFLXME/+YVc76/syIFwSawadiA/zZPxA4=" // printed by examples/keygen
	productGUID     = "my-product"
)

func main() {
	configDir, err := os.UserConfigDir()
	if err != nil {
		log.Fatal(err)
	}
	client, err := license.New(license.Config{
		ServerURL:       serverURL,
		APIKey:          apiKey,
		ServerPublicKey: serverPublicKey,
		ProductGUID:     productGUID,
		LicenseKey:      os.Getenv("MY_PRODUCT_LICENSE_KEY"), // the customer's
		StateDir:        filepath.Join(configDir, "my-product"),
	})
	if err != nil {
		log.Fatal(err) // matches license.ErrInvalidConfig and lists every problem
	}

	ctx := context.Background()
	switch err := client.Start(ctx); {
	case errors.Is(err, license.ErrRefused):
		log.Fatalf("licence refused: %v", err) // revoked, expired, seat limit: tell the user
	case errors.Is(err, license.ErrUnreachable):
		log.Fatalf("licence server unreachable and no offline allowance left: %v", err)
	case err != nil:
		log.Fatal(err) // a local problem, such as license.ErrStateLocked
	}
	defer func() {
		if err := client.Close(ctx); err != nil {
			log.Print(err)
		}
	}()

	// Gate features where they are used: lock-free and allocation-free.
	if client.HasFeature("pro") {
		log.Print("pro features enabled")
	}
	// Status is one atomic load: state, features, deadlines, last error.
	st := client.Status()
	log.Printf("licence %v; session until %v, usable offline until %v", st.State, st.SessionExpiry, st.GraceDeadline)
}
