package licensetest

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/licensekit/licensekit-go/internal/wire"
)

// The request payloads are decoded strictly (Server.process). Error texts
// name the field, never its value.

// object is a decoded JSON object whose members are read one by one; err
// keeps the first problem met.
type object struct {
	m   map[string]json.RawMessage
	err *apiError
}

func parseObject(b []byte) (*object, *apiError) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, refuse(http.StatusBadRequest, "malformed data: not a JSON object")
	}
	o := &object{}
	if err := json.Unmarshal(b, &o.m); err != nil {
		return nil, refuse(http.StatusBadRequest, "malformed data: invalid JSON")
	}
	return o, nil
}

func (o *object) fail(msg string) {
	if o.err == nil {
		o.err = refuse(http.StatusBadRequest, msg)
	}
}

// member decodes the member name of o, whose JSON must start with first.
func member[T any](o *object, name string, first byte, want string) (v T) {
	if raw, ok := o.m[name]; !ok {
		o.fail("malformed data: missing field " + name)
	} else if len(raw) == 0 || raw[0] != first || json.Unmarshal(raw, &v) != nil {
		o.fail("malformed data: field " + name + " must be " + want)
	}
	return v
}

// str returns a string member; required means it must also be non-empty.
func (o *object) str(name string, required bool) string {
	s := member[string](o, name, '"', "a string")
	if _, ok := o.m[name]; required && ok && s == "" {
		o.fail("malformed data: field " + name + " is empty")
	}
	return s
}

func (o *object) strMap(name string) map[string]string {
	return member[map[string]string](o, name, '{', "an object of strings")
}

// maxRequestSeconds bounds a requested duration before it is clamped.
const maxRequestSeconds = 100 * 366 * 24 * 3600

// seconds returns an optional non-negative number of seconds (0 when absent
// or null). A fraction is rounded down.
func (o *object) seconds(name string) int64 {
	raw, ok := o.m[name]
	if !ok || string(raw) == "null" {
		return 0
	}
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		if f, err := strconv.ParseFloat(string(raw), 64); err == nil && !math.IsNaN(f) && f >= 0 {
			return int64(math.Floor(min(f, maxRequestSeconds)))
		}
	}
	o.fail("malformed data: field " + name + " must be a non-negative number")
	return 0
}

func (o *object) machine() wire.Machine {
	return wire.Machine{
		IPAddress:    o.str("ip_address", false),
		CPUID:        o.str("cpu_id", false),
		MBSerial:     o.str("mb_serial", false),
		MACAddresses: member[[]string](o, "mac_addresses", '[', "an array of strings"),
		VolumeHash:   o.str("volume_hash", false),
		HostName:     o.str("host_name", false),
	}
}

// decodeOuter decodes the outer {"key","data"} object of a request
// (FORMAT.md, Conventions): a JSON object with exactly the two string
// members key and data, each once. Anything else is not a request body.
func decodeOuter(body []byte) (*wire.Request, bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var r wire.Request
	var seen [2]bool
	for d.More() {
		name, _ := d.Token() // after an error name is nil, which no case accepts
		val, err := d.Token()
		v, isStr := val.(string)
		if err != nil || !isStr {
			return nil, false
		}
		switch {
		case name == "key" && !seen[0]:
			r.Key, seen[0] = v, true
		case name == "data" && !seen[1]:
			r.Data, seen[1] = v, true
		default: // another member, or one given twice
			return nil, false
		}
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') || !seen[0] || !seen[1] {
		return nil, false
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, false
	}
	return &r, true
}
