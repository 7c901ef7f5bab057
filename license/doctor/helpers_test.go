package doctor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/testhome"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/doctor"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

func TestMain(m *testing.M) {
	// Proxy variables of the machine running the tests must not steer them.
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		os.Unsetenv(v)
	}
	// State files and anti-rollback records stay out of the real user's
	// configuration directory.
	goleak.VerifyTestMain(testhome.M(m))
}

// Raw identifiers of the test machine: none may appear in a report.
const (
	rawCPU       = "GenuineIntel/000906ea/RAW-CPU-MODEL-X1"
	rawBoard     = "RAW-BOARD-SERIAL-0001"
	rawMachineID = "4f1c2a9be7d0417a9a3c5e6f7a8b9c0d"
	rawVolume    = "RAW-VOLUME-HASH-77aa"
	rawHost      = "alice-workstation-raw"
	rawIP        = "10.20.30.40"
	rawMAC       = "3c:22:fb:01:02:03"
)

func rawIdentifiers() []string {
	return []string{rawCPU, rawBoard, rawMachineID, rawVolume, rawHost, rawIP, rawMAC}
}

// strongFP is a fingerprint with two strong identifiers; mac varies it.
func strongFP(mac string) *fingerprint.Fingerprint {
	comp := func(name, value, src string, s fingerprint.Strength) fingerprint.Component {
		return fingerprint.Component{Name: name, Value: value, Source: src, Strength: s}
	}
	return &fingerprint.Fingerprint{
		CPUID:        comp(fingerprint.NameCPUID, rawCPU, "/proc/cpuinfo", fingerprint.Weak),
		MBSerial:     comp(fingerprint.NameMBSerial, rawBoard, "/sys/class/dmi/id/board_serial", fingerprint.Strong),
		MACAddresses: fingerprint.Component{Name: fingerprint.NameMACAddresses, Values: []string{mac}, Source: "/sys/class/net", Strength: fingerprint.Medium},
		VolumeHash:   comp(fingerprint.NameVolumeHash, rawVolume, "/dev/disk/by-uuid", fingerprint.Medium),
		HostName:     comp(fingerprint.NameHostName, rawHost, "os.Hostname", fingerprint.Weak),
		IPAddress:    comp(fingerprint.NameIPAddress, rawIP, "udp connect", fingerprint.Weak),
		Extra: []fingerprint.Component{
			comp(fingerprint.NameBoardSerial, rawBoard, "/sys/class/dmi/id/board_serial", fingerprint.Strong),
			comp(fingerprint.NameMachineID, rawMachineID, "/etc/machine-id", fingerprint.Strong),
		},
	}
}

// fixtureFP loads a fingerprint fixture (the collector's golden output).
func fixtureFP(t *testing.T, name string) *fingerprint.Fingerprint {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fingerprint/" + name + "/want.json")
	require.NoError(t, err)
	var fp fingerprint.Fingerprint
	require.NoError(t, json.Unmarshal(b, &fp))
	return &fp
}

func fpSource(fp *fingerprint.Fingerprint) license.Option {
	return license.WithFingerprintSource(func(context.Context) (*fingerprint.Fingerprint, error) { return fp, nil })
}

const (
	product = "p-doctor"
	key     = "ZQ7T-9KPA-X4M2-42" // random-looking: the redactor removes any 8-character run of it, so a key built from words would redact the words
)

// env is a mock server with a licence and a configuration for it.
type env struct {
	srv *licensetest.Server
	cfg license.Config
}

// firstConfig returns the first of cfg, or nil.
func firstConfig(cfg []*licensetest.Config) *licensetest.Config {
	if len(cfg) == 0 {
		return nil
	}
	return cfg[0]
}

// setup starts a mock server (TLS when tlsOn) with a licence, and a state
// directory.
func setup(t *testing.T, tlsOn bool, cfg ...*licensetest.Config) *env {
	t.Helper()
	var srv *licensetest.Server
	if tlsOn {
		srv = licensetest.NewTLSServer(firstConfig(cfg))
	} else {
		srv = licensetest.NewServer(firstConfig(cfg))
	}
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: product, Key: key,
		SessionDuration: time.Hour, GracePeriod: 24 * time.Hour, Features: "pro"}))
	return &env{srv: srv, cfg: license.Config{
		ServerURL:    srv.URL,
		APIKey:       srv.Info().APIKey,
		SharedSecret: srv.Info().Secret,
		ProductGUID:  product,
		LicenseKey:   key,
		StateDir:     t.TempDir(),
	}}
}

// startProduct starts a client; the caller closes it.
func (e *env) startProduct(t *testing.T, opts ...license.Option) *license.Client {
	t.Helper()
	c, err := license.New(e.cfg, opts...)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	return c
}

// runProduct starts and closes a client once, so that saved state exists.
func (e *env) runProduct(t *testing.T, opts ...license.Option) {
	t.Helper()
	require.NoError(t, e.startProduct(t, opts...).Close(context.Background()))
}

// run runs the doctor with a fixed fingerprint source and the given options.
func (e *env) run(t *testing.T, fp *fingerprint.Fingerprint, opts ...doctor.Option) *doctor.Report {
	t.Helper()
	opts = append([]doctor.Option{doctor.WithClientOptions(fpSource(fp)), doctor.WithTimeout(5 * time.Second)}, opts...)
	rep, err := doctor.Run(context.Background(), e.cfg, opts...)
	require.NoError(t, err)
	require.Len(t, rep.Checks, 11)
	return rep
}

// check returns the check id of rep.
func check(t *testing.T, rep *doctor.Report, id string) doctor.Check {
	t.Helper()
	c, ok := rep.Check(id)
	require.True(t, ok, "check %s missing", id)
	return c
}

// evidence returns the value of the named fact of c.
func evidence(c doctor.Check, name string) string {
	for _, f := range c.Evidence {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// selfSigned returns a self-signed certificate for 127.0.0.1 valid from
// notBefore to notAfter.
func selfSigned(t *testing.T, cn string, notBefore, notAfter time.Time) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{cn + " Org"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: cert}, cert
}
