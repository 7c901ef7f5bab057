package license_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// Example is the README's integration program (examples/snippet) in short:
// start a client against a server, gate features on it, and close it at
// shutdown. Here the server is the in-process mock.
func Example() {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: "my-product", Key: "LIC-123",
		Features: "export,pro", SessionDuration: time.Hour, GracePeriod: 24 * time.Hour})
	stateDir, _ := os.MkdirTemp("", "example-state")
	defer os.RemoveAll(stateDir)

	client, err := license.New(license.Config{
		ServerURL:       srv.URL,
		APIKey:          srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID:     "my-product",
		LicenseKey:      "LIC-123",
		StateDir:        stateDir,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)

	status := client.Status()
	fmt.Println("state:", status.State)
	fmt.Println("pro:", client.HasFeature("pro"), "enterprise:", client.HasFeature("enterprise"))
	fmt.Println("session:", status.SessionDuration, "grace:", status.GracePeriod)
	// Output:
	// state: Active
	// pro: true enterprise: false
	// session: 1h0m0s grace: 24h0m0s
}

// ExampleClient_Close shows a clean shutdown: the session is ended on the
// server and its seat freed.
func ExampleClient_Close() {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: "p", Key: "k", Seats: 1})

	client, err := license.New(license.Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(), ProductGUID: "p", LicenseKey: "k"})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("seats in use:", srv.SeatsInUse("p", "k"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", client.Status().State, "seats in use:", srv.SeatsInUse("p", "k"))
	<-client.Done()
	fmt.Println("done:", errors.Is(client.Err(), license.ErrClosed))
	// Output:
	// seats in use: 1
	// state: Ended seats in use: 0
	// done: true
}

// ExampleClient_Start_refused shows how a refusal is told apart from an
// unreachable server.
func ExampleClient_Start_refused() {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: "p", Key: "k"})
	_ = srv.SetLicenseState("p", "k", licensetest.Revoked)

	client, _ := license.New(license.Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey,
		ServerPublicKey: srv.Info().PublicKey.EncodeBase64(), ProductGUID: "p", LicenseKey: "k"})
	defer client.Close(context.Background())
	err := client.Start(context.Background())
	switch {
	case errors.Is(err, license.ErrRevoked):
		fmt.Println("revoked; refused:", errors.Is(err, license.ErrRefused))
	case errors.Is(err, license.ErrUnreachable):
		fmt.Println("offline")
	}
	fmt.Println("state:", client.Status().State)
	// Output:
	// revoked; refused: true
	// state: Refused
}

// TestReadmeOutageSnippet keeps the "Without testclient" snippet of
// docs/mockserver.md honest: it is the same client set-up, with the default
// fingerprint source.
func TestReadmeOutageSnippet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := licensetest.NewUnstartedServer(nil) // in memory: no sockets in the bubble
		defer srv.Close()
		srv.AddLicense(licensetest.License{ProductGUID: "p", Key: "k",
			SessionDuration: 10 * time.Minute, GracePeriod: time.Hour})
		c, _ := license.New(license.Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey,
			ServerPublicKey: srv.Info().PublicKey.EncodeBase64(), ProductGUID: "p", LicenseKey: "k"},
			license.WithRoundTripper(srv.Transport()))
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())

		srv.SetDown(true)
		time.Sleep(30 * time.Minute) // fake time: returns at once
		if got := c.Status().State; got != license.Grace {
			t.Fatalf("state = %v; want Grace", got)
		}
		srv.SetDown(false)
		time.Sleep(2 * time.Minute)
		if got := c.Status().State; got != license.Active {
			t.Fatalf("state = %v; want Active", got)
		}
	})
}

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
