package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Rejection codes, the value of "envelope_error" in an envelope-level
// rejection (the package doc; FORMAT.md, "Envelope-level rejections").
const (
	CodeMalformed   = "malformed"
	CodeUnsupported = "unsupported_version"
	CodeUnauthentic = "unauthentic"
	CodeStale       = "stale_timestamp"
	CodeReplayed    = "replayed"
	CodeInProgress  = "in_progress"
)

// Freshness categories, returned by Guard.Admit.
var (
	// ErrStale means the request's timestamp is outside the server's window.
	ErrStale = errors.New("envelope: stale timestamp")
	// ErrReplayed means the request id was already used by another request.
	ErrReplayed = errors.New("envelope: request id replayed")
	// ErrInProgress means an identical request is still being processed.
	ErrInProgress = errors.New("envelope: request in progress")
)

// Rejection is a parsed envelope-level rejection.
type Rejection struct {
	// Status is the HTTP status it came with.
	Status int
	// Code is one of the Code constants (or an unknown code from a newer
	// server).
	Code string
	// ServerTime is the server's clock when it rejected the request; zero if
	// the body carried none. For CodeStale it lets a client correct its
	// clock offset.
	ServerTime time.Time
}

// RejectionReply returns the HTTP status and body a server sends for an
// error from Open or Guard.Admit, stamped with the server's time now: 400
// for malformed and unsupported envelopes, 401 for unauthentic ones (wrong
// key, wrong API key, another endpoint, altered), stale timestamps and
// replayed ids, 503 for a request still in progress. The body never
// contains the error's detail.
func RejectionReply(err error, now time.Time) (status int, body []byte) {
	code, status, text := CodeUnauthentic, http.StatusUnauthorized, "envelope: request does not authenticate"
	switch {
	case errors.Is(err, ErrStale):
		code, status, text = CodeStale, http.StatusUnauthorized, "envelope: timestamp outside the accepted window"
	case errors.Is(err, ErrReplayed):
		code, status, text = CodeReplayed, http.StatusUnauthorized, "envelope: request id replayed"
	case errors.Is(err, ErrInProgress):
		code, status, text = CodeInProgress, http.StatusServiceUnavailable, "envelope: request in progress"
	case errors.Is(err, ErrUnsupportedVersion):
		code, status, text = CodeUnsupported, http.StatusBadRequest, "envelope: unsupported version"
	case errors.Is(err, ErrMalformed):
		code, status, text = CodeMalformed, http.StatusBadRequest, "envelope: malformed request"
	}
	body, _ = json.Marshal(struct {
		Success bool   `json:"success"`
		Time    string `json:"time"`
		Error   string `json:"error"`
		Code    string `json:"envelope_error"`
	}{false, now.UTC().Format(time.RFC3339), text, code})
	return status, body
}

// ParseRejection recognises an envelope-level rejection: a JSON object with a
// non-empty string member "envelope_error". It returns false for anything
// else, including sealed replies and licence refusals.
func ParseRejection(status int, body []byte) (*Rejection, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || len(body) > 64<<10 || body[0] != '{' {
		return nil, false
	}
	var v struct {
		Code *string `json:"envelope_error"`
		Time string  `json:"time"`
	}
	if json.Unmarshal(body, &v) != nil || v.Code == nil || *v.Code == "" || len(*v.Code) > 64 {
		return nil, false
	}
	r := &Rejection{Status: status, Code: *v.Code}
	if t, err := time.Parse(time.RFC3339, v.Time); err == nil {
		r.ServerTime = t
	}
	return r, true
}
