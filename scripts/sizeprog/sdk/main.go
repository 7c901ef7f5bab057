// Command sdk is the smallest product that embeds the SDK: it creates a
// client, starts it and reads its status. scripts/size builds it beside
// ../stdlib, which does the same kind of work with the standard library only,
// to measure what embedding the SDK adds to a product's binary. It is built,
// never run, by scripts/size; it reads its settings from the environment.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/licensekit/licensekit-go/license"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := license.New(license.Config{
		ServerURL:       os.Getenv("LICENSEKIT_SERVER"),
		APIKey:          os.Getenv("LICENSEKIT_API_KEY"),
		ServerPublicKey: os.Getenv("LICENSEKIT_PUBLIC_KEY"),
		ProductGUID:     os.Getenv("LICENSEKIT_PRODUCT"),
		LicenseKey:      os.Getenv("LICENSEKIT_LICENSE"),
	}, license.WithLogger(logger))
	if err != nil {
		logger.Error("config", "error", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		logger.Error("start", "error", err)
		os.Exit(1)
	}
	defer c.Close(context.Background())
	fmt.Println(c.Status().State)
}
