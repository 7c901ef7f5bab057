package licensetest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// Start a server, add a licence and register an instance with a raw v2
// call: seal the payload with envelope, post it, open the sealed reply.
func Example() {
	s := licensetest.NewServer(nil)
	defer s.Close()
	err := s.AddLicense(licensetest.License{
		ProductGUID: "my-app", Key: "ABCD-1234", Seats: 1,
		SessionDuration: 10 * time.Minute, GracePeriod: time.Hour,
	})
	if err != nil {
		panic(err)
	}

	sealer, err := envelope.NewSealer(s.Info().PublicKey, envelope.WithSealedReplies())
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(wire.RegisterRequest{
		ProductGUID: "my-app", LicenseKey: "ABCD-1234",
		Machine: wire.Machine{CPUID: "cpu", MBSerial: "mb", MACAddresses: []string{"00:11:22:33:44:55"},
			VolumeHash: "vol", HostName: "build-01"},
		Name: "Ada", Email: "ada@example.com",
	})
	sealed, err := sealer.Seal(envelope.Request{APIKey: s.Info().APIKey, Endpoint: licensetest.Register}, payload)
	if err != nil {
		panic(err)
	}
	body, _ := json.Marshal(wire.Request{Key: sealed.Key, Data: sealed.Data})
	resp, err := s.Client().Post(s.URL+"/"+licensetest.Register, "application/json", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	plain, err := sealed.Reply.OpenReply(raw)
	if err != nil {
		panic(err)
	}
	reply, err := wire.DecodeRegister(plain)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, reply.Success, reply.ControlOptions.Session(), reply.ControlOptions.Grace())
	fmt.Println(len(s.Instances()), s.Count(licensetest.Register), s.Requests()[0].Sealed)
	// Output:
	// 200 true 10m0s 1h0m0s
	// 1 1 true
}

// call posts one sealed v2 request and returns the status and reply body.
func call(s *licensetest.Server, hc *http.Client, endpoint string, payload any) (int, []byte, error) {
	sealer, err := envelope.NewSharedSecretSealer(s.Info().Secret)
	if err != nil {
		return 0, nil, err
	}
	pt, _ := json.Marshal(payload)
	// The request carries the server's clock, which WithClock may fake.
	sealed, err := sealer.Seal(envelope.Request{APIKey: s.Info().APIKey, Endpoint: endpoint, Time: s.Now()}, pt)
	if err != nil {
		return 0, nil, err
	}
	body, _ := json.Marshal(wire.Request{Key: sealed.Key, Data: sealed.Data})
	resp, err := hc.Post(s.URL+"/"+endpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	plain, err := sealed.Reply.OpenReply(raw)
	return resp.StatusCode, plain, err
}

// Inject failures: a 503 with Retry-After, a refused connection, a revoked
// licence.
func ExampleServer_Inject() {
	s := licensetest.NewServer(nil)
	defer s.Close()
	_ = s.AddLicense(licensetest.License{ProductGUID: "my-app", Key: "ABCD-1234"})
	register := wire.RegisterRequest{ProductGUID: "my-app", LicenseKey: "ABCD-1234"}

	s.Inject(licensetest.Fault{Endpoint: licensetest.Register, Kind: licensetest.FaultFail, Count: 1, Status: http.StatusServiceUnavailable})
	status, body, _ := call(s, s.Client(), licensetest.Register, register)
	fmt.Println(status, wire.DecodeFailure(licensetest.Register, body).Message)

	s.SetDown(true)
	_, _, err := call(s, s.Client(), licensetest.Register, register)
	var dialErr *net.OpError
	fmt.Println("refused:", errors.As(err, &dialErr) && dialErr.Op == "dial")
	s.SetDown(false)

	status, _, _ = call(s, s.Client(), licensetest.Register, register)
	fmt.Println(status)

	_ = s.SetLicenseState("my-app", "ABCD-1234", licensetest.Revoked)
	status, body, _ = call(s, s.Client(), licensetest.Register, register)
	fmt.Println(status, wire.DecodeFailure(licensetest.Register, body).Message)
	fmt.Println("requests handled:", s.Count(""))
	// Output:
	// 503 service unavailable
	// refused: true
	// 200
	// 403 license revoked
	// requests handled: 3
}

// Use the in-memory transport: no socket, so it also works inside a
// testing/synctest bubble. Sessions lapse on the server's clock.
func ExampleServer_Transport() {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := licensetest.NewUnstartedServer(&licensetest.Config{Clock: func() time.Time { return now }})
	defer s.Close()
	_ = s.AddLicense(licensetest.License{ProductGUID: "my-app", Key: "ABCD-1234", Seats: 1, SessionDuration: time.Minute})
	hc := &http.Client{Transport: s.Transport()}

	_, body, _ := call(s, hc, licensetest.Register, wire.RegisterRequest{ProductGUID: "my-app", LicenseKey: "ABCD-1234"})
	reg, _ := wire.DecodeRegister(body)
	_, body, _ = call(s, hc, licensetest.Begin, wire.BeginRequest{ProductGUID: "my-app", LicenseKey: "ABCD-1234", InstanceGUID: reg.GUID})
	begin, _ := wire.DecodeBegin(body)
	fmt.Println("seats in use:", s.SeatsInUse("my-app", "ABCD-1234"), "session:", begin.ControlOptions.Session())

	status, _, _ := call(s, hc, licensetest.Begin, wire.BeginRequest{ProductGUID: "my-app", LicenseKey: "ABCD-1234", InstanceGUID: reg.GUID})
	fmt.Println("second seat:", status)

	now = now.Add(time.Minute) // the session lapses
	fmt.Println("seats in use:", s.SeatsInUse("my-app", "ABCD-1234"))
	status, body, _ = call(s, hc, licensetest.Extend, wire.ExtendRequest{Token: begin.Token})
	fmt.Println(status, wire.DecodeFailure(licensetest.Extend, body).Message)
	// Output:
	// seats in use: 1 session: 1m0s
	// second seat: 409
	// seats in use: 0
	// 404 session lapsed
}
