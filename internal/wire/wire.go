// Package wire holds everything specific to version 2 of the licence server
// API: endpoint names, request and reply types with the spec's exact JSON
// names, and tolerant reply decoders. Keeping every v2 detail here lets a
// later protocol version sit beside it without touching the client or the
// mock server, which both import this package.
//
// The decoders are tolerant where the spec is vague and strict where it
// matters:
//   - time and first_registered_at are strings of unstated format, read by
//     ParseTimestamp, which always keeps the raw text;
//   - begin_session and extend_session report success with status rather
//     than success;
//   - a failure is success:false with error, and decodes to a *Failure;
//   - a missing or non-positive session_duration is a *ProtocolError, never a
//     zero-second renewal loop.
package wire

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/internal/text"
)

// The four v2 endpoints, as path segments below the server's base URL.
const (
	Register = "register_instance"
	Begin    = "begin_session"
	Extend   = "extend_session"
	End      = "end_session"
)

// Endpoints lists the v2 endpoints in lifecycle order.
var Endpoints = [...]string{Register, Begin, Extend, End}

// MaxBody bounds every reply the decoders accept, in bytes.
const MaxBody = 1 << 20

// Request is the outer JSON object of every v2 call: the API key and the
// encrypted payload.
type Request struct {
	Key  string `json:"key"`
	Data string `json:"data"`
}

// Machine holds the hardware facts sent with register_instance and
// begin_session.
type Machine struct {
	IPAddress    string   `json:"ip_address"`
	CPUID        string   `json:"cpu_id"`
	MBSerial     string   `json:"mb_serial"`
	MACAddresses []string `json:"mac_addresses"`
	VolumeHash   string   `json:"volume_hash"`
	HostName     string   `json:"host_name"`
}

// RegisterRequest is the payload of register_instance.
type RegisterRequest struct {
	ProductGUID string `json:"product_guid"`
	LicenseKey  string `json:"license_key"`
	Machine
	Name     string            `json:"name"`
	Email    string            `json:"email"`
	UserHash map[string]string `json:"user_hash"`
}

// BeginRequest is the payload of begin_session. Duration is in seconds and
// omitted when zero.
type BeginRequest struct {
	ProductGUID  string `json:"product_guid"`
	LicenseKey   string `json:"license_key"`
	InstanceGUID string `json:"instance_guid"`
	Machine
	UserHash map[string]string `json:"user_hash"`
	Duration int64             `json:"duration,omitempty"`
}

// ExtendRequest is the payload of extend_session. Duration is in seconds and
// omitted when zero.
type ExtendRequest struct {
	Token    string `json:"token"`
	Duration int64  `json:"duration,omitempty"`
}

// EndRequest is the payload of end_session.
type EndRequest struct {
	Token string `json:"token"`
}

// MarshalJSON encodes r with an empty array and object in place of nil
// mac_addresses and user_hash, as the spec's types require.
func (r RegisterRequest) MarshalJSON() ([]byte, error) {
	type plain RegisterRequest
	r.MACAddresses, r.UserHash = nonNil(r.MACAddresses, r.UserHash)
	return json.Marshal(plain(r))
}

// MarshalJSON encodes r like RegisterRequest.MarshalJSON.
func (r BeginRequest) MarshalJSON() ([]byte, error) {
	type plain BeginRequest
	r.MACAddresses, r.UserHash = nonNil(r.MACAddresses, r.UserHash)
	return json.Marshal(plain(r))
}

func nonNil(s []string, m map[string]string) ([]string, map[string]string) {
	if s == nil {
		s = []string{}
	}
	if m == nil {
		m = map[string]string{}
	}
	return s, m
}

// ControlOptions are the server's session controls, in whole seconds.
type ControlOptions struct {
	SessionDuration       int64 `json:"session_duration"`
	ValidationGracePeriod int64 `json:"validation_grace_period"`
}

// UnmarshalJSON accepts any JSON number for either field, including one with
// a fraction, which is rounded down to whole seconds. Strings, booleans and
// values beyond a century are errors.
func (c *ControlOptions) UnmarshalJSON(b []byte) error {
	var raw struct {
		SessionDuration       json.RawMessage `json:"session_duration"`
		ValidationGracePeriod json.RawMessage `json:"validation_grace_period"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var err error
	if c.SessionDuration, err = seconds("session_duration", raw.SessionDuration); err != nil {
		return err
	}
	c.ValidationGracePeriod, err = seconds("validation_grace_period", raw.ValidationGracePeriod)
	return err
}

// maxSeconds bounds control options to a century, far beyond any lease.
const maxSeconds = 100 * 366 * 24 * 3600

var errBadSeconds = errors.New("control_options: bad number")

func seconds(name string, raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	// Only a JSON number: ParseFloat alone would also take "Inf" or a
	// quoted string's contents.
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("%w: %s is not a number", errBadSeconds, name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxSeconds {
		return 0, fmt.Errorf("%w: %s", errBadSeconds, name)
	}
	return int64(math.Floor(f)), nil
}

// Session returns the session duration as a time.Duration.
func (c ControlOptions) Session() time.Duration {
	return time.Duration(c.SessionDuration) * time.Second
}

// Grace returns the validation grace period as a time.Duration.
func (c ControlOptions) Grace() time.Duration {
	return time.Duration(c.ValidationGracePeriod) * time.Second
}

// RegisterReply is the success reply of register_instance.
type RegisterReply struct {
	Success           bool           `json:"success"`
	Time              Timestamp      `json:"time"`
	GUID              string         `json:"guid"`
	ControlOptions    ControlOptions `json:"control_options"`
	FirstRegisteredAt Timestamp      `json:"first_registered_at"`
}

// BeginReply is the success reply of begin_session.
type BeginReply struct {
	Status         int64          `json:"status"`
	Time           Timestamp      `json:"time"`
	SessionKey     string         `json:"session_key"`
	Token          string         `json:"token"`
	Features       string         `json:"features"`
	ControlOptions ControlOptions `json:"control_options"`
}

// ExtendReply is the success reply of extend_session.
type ExtendReply struct {
	Status         int64          `json:"status"`
	Time           Timestamp      `json:"time"`
	Token          string         `json:"token"`
	ControlOptions ControlOptions `json:"control_options"`
}

// EndReply is the success reply of end_session.
type EndReply struct {
	Time Timestamp `json:"time"`
}

// Failure is the spec's failure reply, success:false with an error text. It
// is returned as an error by the decoders. Its message is the server's text,
// which the server controls; it never contains anything the client sent
// unless the server echoes it.
type Failure struct {
	Endpoint string    `json:"-"`
	Success  bool      `json:"success"`
	Time     Timestamp `json:"time"`
	Message  string    `json:"error"`
}

// Error implements error.
func (f *Failure) Error() string {
	return "wire: " + f.Endpoint + ": server refused: " + text.Clean(cmp.Or(f.Message, "no reason given"), 200)
}

// ErrProtocol matches every *ProtocolError.
var ErrProtocol = errors.New("wire: protocol error")

// ProtocolError reports a reply that does not follow the v2 spec.
type ProtocolError struct {
	Endpoint string
	Reason   string
}

// Error implements error.
func (e *ProtocolError) Error() string {
	return "wire: " + e.Endpoint + ": malformed reply: " + e.Reason
}

// Is makes errors.Is(err, ErrProtocol) hold.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// probe reads the fields that tell success from failure.
type probe struct {
	Success *bool           `json:"success"`
	Error   json.RawMessage `json:"error"`
}

// mayHaveMember reports whether body may hold the quoted member name key
// (lower-case ASCII) as encoding/json matches names: it holds a backslash
// (an escaped name), a non-ASCII byte (Unicode folding matches "ſuccess"
// to "success"), or key in any ASCII case.
func mayHaveMember(body []byte, key string) bool {
	for _, c := range body {
		if c == '\\' || c >= 0x80 {
			return true
		}
	}
	return text.IndexFold(body, key) >= 0
}

// decode checks body's outer shape and reports a *Failure for success:false.
func decode(endpoint string, body []byte, v any) error {
	if len(body) > MaxBody {
		return &ProtocolError{Endpoint: endpoint, Reason: "reply larger than 1 MiB"}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return &ProtocolError{Endpoint: endpoint, Reason: "empty reply"}
	}
	if body[0] != '{' {
		return &ProtocolError{Endpoint: endpoint, Reason: "reply is not a JSON object"}
	}
	var p probe
	// Without a "success" member (as encoding/json matches names) the
	// probe would find nothing: most replies (begin, extend, end) are
	// spared a decode. Invalid JSON fails the decode into v below with the
	// same syntax error.
	if mayHaveMember(body, `"success"`) {
		if err := json.Unmarshal(body, &p); err != nil {
			return &ProtocolError{Endpoint: endpoint, Reason: describeJSONError(err)}
		}
	}
	if p.Success != nil && !*p.Success {
		f := &Failure{Endpoint: endpoint}
		if err := json.Unmarshal(body, f); err != nil {
			// Keep the verdict even when error is not a string.
			f.Message = ""
		}
		return f
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &ProtocolError{Endpoint: endpoint, Reason: describeJSONError(err)}
	}
	return nil
}

// describeJSONError turns a decoding error into a reason that names the
// field and type but never quotes the input.
func describeJSONError(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("%s: want %s, got JSON %s", cmp.Or(te.Field, "reply"), te.Type, te.Value)
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	}
	if errors.Is(err, errBadTimestamp) || errors.Is(err, errBadSeconds) {
		return err.Error()
	}
	return "invalid JSON"
}

func checkControl(endpoint string, c ControlOptions) error {
	if c.SessionDuration <= 0 {
		return &ProtocolError{Endpoint: endpoint, Reason: "control_options.session_duration missing or not positive"}
	}
	if c.ValidationGracePeriod < 0 {
		return &ProtocolError{Endpoint: endpoint, Reason: "control_options.validation_grace_period negative"}
	}
	return nil
}

func decodeReply[R any](endpoint string, body []byte, check func(*R) error) (*R, error) {
	r := new(R)
	if err := decode(endpoint, body, r); err != nil {
		return nil, err
	}
	if err := check(r); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeRegister decodes a register_instance reply. A refusal is a *Failure.
func DecodeRegister(body []byte) (*RegisterReply, error) {
	return decodeReply(Register, body, func(r *RegisterReply) error {
		if r.GUID == "" {
			return &ProtocolError{Endpoint: Register, Reason: "guid missing"}
		}
		return checkControl(Register, r.ControlOptions)
	})
}

// DecodeBegin decodes a begin_session reply. A refusal is a *Failure.
func DecodeBegin(body []byte) (*BeginReply, error) {
	return decodeReply(Begin, body, func(r *BeginReply) error {
		if r.Token == "" {
			return &ProtocolError{Endpoint: Begin, Reason: "token missing"}
		}
		return checkControl(Begin, r.ControlOptions)
	})
}

// DecodeExtend decodes an extend_session reply. A refusal is a *Failure. A
// reply without a token keeps the caller's current token; the caller checks
// for the empty string.
func DecodeExtend(body []byte) (*ExtendReply, error) {
	return decodeReply(Extend, body, func(r *ExtendReply) error { return checkControl(Extend, r.ControlOptions) })
}

// DecodeEnd decodes an end_session reply. The spec signals failure with HTTP
// 422, which the caller sees before decoding; a success:false body is a
// *Failure all the same.
func DecodeEnd(body []byte) (*EndReply, error) {
	return decodeReply(End, body, func(*EndReply) error { return nil })
}

// DecodeFailure decodes a failure body that arrived with an HTTP error
// status. It returns nil when body is not the spec's failure shape.
func DecodeFailure(endpoint string, body []byte) *Failure {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || len(body) > MaxBody || body[0] != '{' {
		return nil
	}
	var p probe
	if json.Unmarshal(body, &p) != nil || len(p.Error) == 0 {
		return nil
	}
	f := &Failure{Endpoint: endpoint}
	if json.Unmarshal(body, f) != nil {
		return nil
	}
	return f
}

// Timestamp is a server time of unstated format. Raw always keeps the text
// the server sent; Time is set when the text parsed.
type Timestamp struct {
	Raw  string
	Time time.Time
}

var errBadTimestamp = errors.New("time: want a string or a number")

// Valid reports whether the timestamp parsed.
func (t Timestamp) Valid() bool { return !t.Time.IsZero() }

// UnmarshalJSON accepts a JSON string or number. Text that does not parse is
// kept raw, with a zero Time; only other JSON types are an error.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*t = Timestamp{}
		return nil
	case len(b) > 0 && b[0] == '"':
		s, ok := plainString(b)
		if !ok {
			if err := json.Unmarshal(b, &s); err != nil {
				return err
			}
		}
		*t = ParseTimestamp(s)
		return nil
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*t = ParseTimestamp(string(b))
		return nil
	}
	return errBadTimestamp
}

// plainString returns the text of the JSON string b when it has no escape
// and no byte outside ASCII, where it is the bytes between the quotes (a
// JSON decoder has already checked b). Otherwise ok is false.
func plainString(b []byte) (s string, ok bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	for _, c := range b[1 : len(b)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(b[1 : len(b)-1]), true
}

// MarshalJSON writes the raw text back as a JSON string.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.Raw)
}

// Layouts the server's times are parsed with, in order.
var layouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05.999999999",
}

// ParseTimestamp parses s as RFC 3339, "YYYY-MM-DD hh:mm:ss" (UTC) or Unix
// seconds (integer or fractional). It never fails: text it cannot parse is
// kept in Raw with a zero Time.
func ParseTimestamp(s string) Timestamp {
	ts := Timestamp{Raw: s}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return ts
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			ts.Time = t.UTC()
			return ts
		}
	}
	// Plausible Unix seconds only: 1970 to 2200 (NaN and infinities fail
	// the bounds).
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 7258118400 {
		sec, frac := math.Modf(f)
		ts.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	return ts
}

// FormatTime renders t the way the mock server reports times: RFC 3339 in
// UTC with second precision.
func FormatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}
