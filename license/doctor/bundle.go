package doctor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/verdict"
	"github.com/licensekit/licensekit-go/transport"
)

// BundleFormat names the layout of a support bundle.
const BundleFormat = "licensekit-doctor-bundle/1"

// Bundle is the support bundle WriteBundle writes: one JSON document a
// customer can send to the vendor's support.
type Bundle struct {
	// Format is BundleFormat.
	Format string `json:"format"`
	// Created is when the bundle was written.
	Created time.Time `json:"created"`
	// SDKVersion, GoVersion, OS and Arch describe the product's build.
	SDKVersion string `json:"sdk_version"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	// Salt keys every identifier digest in the report (hex). It is no
	// secret, and it is fresh for each report unless the product chose one
	// with WithSalt (see WithBaseline).
	Salt string `json:"salt"`
	// Identifiers maps each fingerprint component to the salted digests
	// of its values (one per MAC address).
	Identifiers map[string][]string `json:"identifiers,omitempty"`
	// Summary counts the verdicts.
	Summary map[Verdict]int `json:"summary"`
	// Failed is true when any check failed.
	Failed bool `json:"failed"`
	// Report is the full report.
	Report *Report `json:"report"`
}

// WriteBundle writes the support bundle: the report, the SDK and Go
// versions, OS and architecture, as one indented JSON document. It holds no
// secret: the API key, licence key, shared secret and tokens never enter a
// report, and hardware identifiers appear only as digests, HMAC-SHA256
// keyed with the report's salt. The package documentation and docs/doctor.md
// say what the salt protects and how support compares two bundles.
func (r *Report) WriteBundle(w io.Writer) error {
	b := Bundle{
		Format:      BundleFormat,
		Created:     time.Now().UTC(),
		SDKVersion:  transport.Version,
		GoVersion:   runtime.Version(),
		OS:          runtime.GOOS,
		Arch:        runtime.GOARCH,
		Salt:        hex.EncodeToString(r.salt),
		Identifiers: r.identifiers,
		Summary:     map[Verdict]int{},
		Failed:      r.Failed(),
		Report:      r,
	}
	for _, c := range r.Checks {
		b.Summary[c.Verdict]++
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&b); err != nil {
		return fmt.Errorf("doctor: write bundle: %w", err)
	}
	return nil
}

// ReadBundle reads a bundle WriteBundle wrote, for WithBaseline.
func ReadBundle(rd io.Reader) (*Bundle, error) {
	var b Bundle
	dec := json.NewDecoder(io.LimitReader(rd, 8<<20))
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("doctor: read bundle: %w", err)
	}
	if b.Format != BundleFormat {
		return nil, fmt.Errorf("doctor: read bundle: unknown format %q", b.Format)
	}
	salt, err := hex.DecodeString(b.Salt)
	if err != nil || len(salt) < 8 {
		return nil, errors.New("doctor: read bundle: bad salt")
	}
	if b.Report != nil {
		b.Report.salt = salt
	}
	return &b, nil
}

// digests returns the salted digests of a component's values: the first 12
// bytes of HMAC-SHA256(salt, label 0x00 component 0x00 value), hex.
func digests(salt []byte, component string, values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		m := hmac.New(sha256.New, salt)
		m.Write([]byte("licensekit doctor id v1\x00" + component + "\x00" + v))
		out[i] = hex.EncodeToString(m.Sum(nil)[:12])
	}
	return out
}

// idDigests records a component's digests in the report, and its values
// in the doctor alone for changedSince, and returns the digests for
// display.
func (d *doctor) idDigests(c fingerprint.Component) string {
	vals := c.Values
	if len(vals) == 0 {
		vals = []string{c.Value}
	}
	out := digests(d.rep.salt, c.Name, vals)
	d.rep.identifiers[c.Name] = out
	d.idValues[c.Name] = vals
	return strings.Join(out, ",")
}

// changedSince names the components whose digests differ from the
// baseline's. The digests under the baseline's salt serve the comparison
// only and are dropped (see WithBaseline for why).
func (d *doctor) changedSince(b *Bundle) []string {
	salt, _ := hex.DecodeString(b.Salt)
	var out []string
	names := append(slices.Collect(maps.Keys(d.idValues)), slices.Collect(maps.Keys(b.Identifiers))...)
	for _, name := range uniq(names) {
		now := digests(salt, name, d.idValues[name])
		if name != fingerprint.NameIPAddress && strings.Join(now, ",") != strings.Join(b.Identifiers[name], ",") {
			out = append(out, name)
		}
	}
	return out
}

// scrubReport removes every secret from every string of the report with
// the SDK's one redactor: the last step of every string that enters a
// report, whatever its source.
func (d *doctor) scrubReport() {
	r := verdict.NewRedactor(d.cfg.APIKey, d.cfg.LicenseKey)
	r.AddSecret(d.cfg.SharedSecret)
	scrub := r.Redact
	for i := range d.rep.Checks {
		c := &d.rep.Checks[i]
		c.Finding, c.Fix = scrub(c.Finding), scrub(c.Fix)
		for j, f := range c.Evidence {
			c.Evidence[j] = Fact{scrub(f.Name), scrub(f.Value)}
		}
	}
	d.rep.Server = scrub(d.rep.Server)
}
