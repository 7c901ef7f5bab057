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
	// The register_instance payload, with the v2 spec's field names.
	payload, _ := json.Marshal(map[string]any{
		"product_guid": "my-app", "license_key": "ABCD-1234", "name": "Ada", "email": "ada@example.com",
		"ip_address": "", "cpu_id": "cpu", "mb_serial": "mb", "volume_hash": "vol", "host_name": "build-01",
		"mac_addresses": []string{"00:11:22:33:44:55"}, "user_hash": map[string]string{},
	})
	sealed, err := sealer.Seal(envelope.Request{APIKey: s.Info().APIKey, Endpoint: licensetest.Register}, payload)
	if err != nil {
		panic(err)
	}
	body, _ := json.Marshal(map[string]string{"key": sealed.Key, "data": sealed.Data})
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
	var reply struct {
		Success        bool `json:"success"`
		ControlOptions struct {
			SessionDuration       int64 `json:"session_duration"`        // seconds
			ValidationGracePeriod int64 `json:"validation_grace_period"` // seconds
		} `json:"control_options"`
	}
	if err := json.Unmarshal(plain, &reply); err != nil {
		panic(err)
	}
	co := reply.ControlOptions
	fmt.Println(resp.StatusCode, reply.Success,
		time.Duration(co.SessionDuration)*time.Second, time.Duration(co.ValidationGracePeriod)*time.Second)
	fmt.Println(len(s.Instances()), s.Count(licensetest.Register), s.Requests()[0].Sealed)
	// Output:
	// 200 true 10m0s 1h0m0s
	// 1 1 true
}

// register is the register_instance payload, with the v2 spec's field
// names; begin is begin_session's.
type register struct {
	ProductGUID string `json:"product_guid"`
	LicenseKey  string `json:"license_key"`
	machine
	Name  string `json:"name"`
	Email string `json:"email"`
}

type begin struct {
	ProductGUID  string `json:"product_guid"`
	LicenseKey   string `json:"license_key"`
	InstanceGUID string `json:"instance_guid"`
	machine
}

// machine holds the hardware facts and user hash that register_instance and
// begin_session both carry. The spec wants an array and an object, never
// null, for mac_addresses and user_hash.
type machine struct {
	IPAddress    string            `json:"ip_address"`
	CPUID        string            `json:"cpu_id"`
	MBSerial     string            `json:"mb_serial"`
	MACAddresses []string          `json:"mac_addresses"`
	VolumeHash   string            `json:"volume_hash"`
	HostName     string            `json:"host_name"`
	UserHash     map[string]string `json:"user_hash"`
}

// pc is the machine the examples run on.
var pc = machine{CPUID: "cpu", MBSerial: "mb", MACAddresses: []string{"00:11:22:33:44:55"},
	VolumeHash: "vol", HostName: "build-01", UserHash: map[string]string{}}

// reply holds the members of a v2 reply that the examples read.
type reply struct {
	GUID           string `json:"guid"`
	Token          string `json:"token"`
	Error          string `json:"error"`
	ControlOptions struct {
		SessionDuration int64 `json:"session_duration"` // seconds
	} `json:"control_options"`
}

// call posts one sealed v2 request and returns the status and the opened
// reply.
func call(s *licensetest.Server, hc *http.Client, endpoint string, payload any) (int, reply, error) {
	sealer, err := envelope.NewSharedSecretSealer(s.Info().Secret)
	if err != nil {
		return 0, reply{}, err
	}
	pt, _ := json.Marshal(payload)
	// The request carries the server's clock, which WithClock may fake.
	sealed, err := sealer.Seal(envelope.Request{APIKey: s.Info().APIKey, Endpoint: endpoint, Time: s.Now()}, pt)
	if err != nil {
		return 0, reply{}, err
	}
	body, _ := json.Marshal(map[string]string{"key": sealed.Key, "data": sealed.Data})
	resp, err := hc.Post(s.URL+"/"+endpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, reply{}, err
	}
	plain, err := sealed.Reply.OpenReply(raw)
	if err != nil {
		return resp.StatusCode, reply{}, err
	}
	var r reply
	err = json.Unmarshal(plain, &r)
	return resp.StatusCode, r, err
}

// Inject failures: a 503 with Retry-After, a refused connection, a revoked
// licence.
func ExampleServer_Inject() {
	s := licensetest.NewServer(nil)
	defer s.Close()
	_ = s.AddLicense(licensetest.License{ProductGUID: "my-app", Key: "ABCD-1234"})
	req := register{ProductGUID: "my-app", LicenseKey: "ABCD-1234", machine: pc}

	s.Inject(licensetest.Fault{Endpoint: licensetest.Register, Kind: licensetest.FaultFail, Count: 1, Status: http.StatusServiceUnavailable})
	status, r, _ := call(s, s.Client(), licensetest.Register, req)
	fmt.Println(status, r.Error)

	s.SetDown(true)
	_, _, err := call(s, s.Client(), licensetest.Register, req)
	var dialErr *net.OpError
	fmt.Println("refused:", errors.As(err, &dialErr) && dialErr.Op == "dial")
	s.SetDown(false)

	status, _, _ = call(s, s.Client(), licensetest.Register, req)
	fmt.Println(status)

	_ = s.SetLicenseState("my-app", "ABCD-1234", licensetest.Revoked)
	status, r, _ = call(s, s.Client(), licensetest.Register, req)
	fmt.Println(status, r.Error)
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

	_, reg, _ := call(s, hc, licensetest.Register, register{ProductGUID: "my-app", LicenseKey: "ABCD-1234", machine: pc})
	session := begin{ProductGUID: "my-app", LicenseKey: "ABCD-1234", InstanceGUID: reg.GUID, machine: pc}
	_, started, _ := call(s, hc, licensetest.Begin, session)
	fmt.Println("seats in use:", s.SeatsInUse("my-app", "ABCD-1234"), "session:",
		time.Duration(started.ControlOptions.SessionDuration)*time.Second)

	status, _, _ := call(s, hc, licensetest.Begin, session)
	fmt.Println("second seat:", status)

	now = now.Add(time.Minute) // the session lapses
	fmt.Println("seats in use:", s.SeatsInUse("my-app", "ABCD-1234"))
	status, r, _ := call(s, hc, licensetest.Extend, map[string]string{"token": started.Token})
	fmt.Println(status, r.Error)
	// Output:
	// seats in use: 1 session: 1m0s
	// second seat: 409
	// seats in use: 0
	// 404 session lapsed
}
