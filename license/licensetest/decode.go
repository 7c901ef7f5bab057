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

// The request payloads are decoded strictly: every field the spec lists must
// be present with its JSON type (duration is optional), so the mock catches a
// client that drifts from the spec. Unknown fields are ignored. Error texts
// name the field, never its value.

func badRequest(msg string) *apiError { return refuse(http.StatusBadRequest, msg) }

// object is a decoded JSON object whose members are checked one by one.
type object map[string]json.RawMessage

func parseObject(b []byte) (object, *apiError) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, badRequest("malformed data: not a JSON object")
	}
	var o object
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, badRequest("malformed data: invalid JSON")
	}
	return o, nil
}

func (o object) member(name string) (json.RawMessage, *apiError) {
	raw, ok := o[name]
	if !ok {
		return nil, badRequest("malformed data: missing field " + name)
	}
	return raw, nil
}

// str returns a string member; required means it must also be non-empty.
func (o object) str(name string, required bool) (string, *apiError) {
	raw, err := o.member(name)
	if err != nil {
		return "", err
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", badRequest("malformed data: field " + name + " must be a string")
	}
	if required && s == "" {
		return "", badRequest("malformed data: field " + name + " is empty")
	}
	return s, nil
}

func (o object) strList(name string) ([]string, *apiError) {
	raw, err := o.member(name)
	if err != nil {
		return nil, err
	}
	var l []string
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &l) != nil {
		return nil, badRequest("malformed data: field " + name + " must be an array of strings")
	}
	return l, nil
}

func (o object) strMap(name string) (map[string]string, *apiError) {
	raw, err := o.member(name)
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, badRequest("malformed data: field " + name + " must be an object of strings")
	}
	return m, nil
}

// maxRequestSeconds bounds a requested duration before it is clamped.
const maxRequestSeconds = 100 * 366 * 24 * 3600

// seconds returns an optional non-negative number of seconds (0 when absent
// or null). A fraction is rounded down.
func (o object) seconds(name string) (int64, *apiError) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return 0, nil
	}
	bad := badRequest("malformed data: field " + name + " must be a non-negative number")
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, bad
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, bad
	}
	return int64(math.Floor(min(f, maxRequestSeconds))), nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...*apiError) *apiError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (o object) machine() (wire.Machine, *apiError) {
	var m wire.Machine
	var e [6]*apiError
	m.IPAddress, e[0] = o.str("ip_address", false)
	m.CPUID, e[1] = o.str("cpu_id", false)
	m.MBSerial, e[2] = o.str("mb_serial", false)
	m.MACAddresses, e[3] = o.strList("mac_addresses")
	m.VolumeHash, e[4] = o.str("volume_hash", false)
	m.HostName, e[5] = o.str("host_name", false)
	return m, firstErr(e[:]...)
}

func decodeRegister(pt []byte) (*wire.RegisterRequest, *apiError) {
	o, err := parseObject(pt)
	if err != nil {
		return nil, err
	}
	var r wire.RegisterRequest
	var e [6]*apiError
	r.ProductGUID, e[0] = o.str("product_guid", true)
	r.LicenseKey, e[1] = o.str("license_key", true)
	r.Machine, e[2] = o.machine()
	r.Name, e[3] = o.str("name", false)
	r.Email, e[4] = o.str("email", false)
	r.UserHash, e[5] = o.strMap("user_hash")
	if err := firstErr(e[:]...); err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeBegin(pt []byte) (*wire.BeginRequest, *apiError) {
	o, err := parseObject(pt)
	if err != nil {
		return nil, err
	}
	var r wire.BeginRequest
	var e [6]*apiError
	r.ProductGUID, e[0] = o.str("product_guid", true)
	r.LicenseKey, e[1] = o.str("license_key", true)
	r.InstanceGUID, e[2] = o.str("instance_guid", true)
	r.Machine, e[3] = o.machine()
	r.UserHash, e[4] = o.strMap("user_hash")
	r.Duration, e[5] = o.seconds("duration")
	if err := firstErr(e[:]...); err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeExtend(pt []byte) (*wire.ExtendRequest, *apiError) {
	o, err := parseObject(pt)
	if err != nil {
		return nil, err
	}
	var r wire.ExtendRequest
	var e [2]*apiError
	r.Token, e[0] = o.str("token", true)
	r.Duration, e[1] = o.seconds("duration")
	if err := firstErr(e[:]...); err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeEnd(pt []byte) (*wire.EndRequest, *apiError) {
	o, err := parseObject(pt)
	if err != nil {
		return nil, err
	}
	var r wire.EndRequest
	var e *apiError
	if r.Token, e = o.str("token", true); e != nil {
		return nil, e
	}
	return &r, nil
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
		name, err := d.Token()
		if err != nil {
			return nil, false
		}
		val, err := d.Token()
		v, isStr := val.(string)
		if err != nil || !isStr {
			return nil, false
		}
		switch name {
		case "key":
			if seen[0] {
				return nil, false
			}
			r.Key, seen[0] = v, true
		case "data":
			if seen[1] {
				return nil, false
			}
			r.Data, seen[1] = v, true
		default:
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
