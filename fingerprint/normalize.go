package fingerprint

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"
)

// cleanValue trims spaces, tabs, newlines and NUL bytes (firmware strings and devicetree properties
// end in NUL) from both ends of s.
func cleanValue(s string) string {
	return strings.Trim(s, " \t\r\n\x00")
}

// isPlaceholder reports whether a cleaned firmware or OS string is a vendor placeholder that identifies
// nothing. The list follows what OEM firmware, hypervisors and ghw ("unknown") are known to write.
func isPlaceholder(s string) bool {
	if s == "" {
		return true
	}
	l := strings.ToLower(s)
	switch l {
	case "unknown", "none", "null", "n/a", "na", "not applicable", "not available", "not specified",
		"not present", "to be filled by o.e.m.", "to be filled by oem", "default string", "default",
		"system serial number", "base board serial number", "chassis serial number", "serial number",
		"serial", "0123456789", "123456789", "1234567890", "oem", "o.e.m.", "invalid", "empty",
		"uninitialized", "xxxxxxxxxxxx", "03000200-0400-0500-0006-000700080009":
		return true
	}
	// A single repeated character ("00000000", "FFFFFFFF", "........", "          ") is filler, and so
	// is an all-zero or all-F UUID (dashes ignored).
	l = strings.ReplaceAll(l, "-", "")
	first, _ := utf8.DecodeRuneInString(l)
	return strings.Trim(l, string(first)) == ""
}

// normalizeUUID returns s as a lowercase 8-4-4-4-12 UUID when s is one (with or without dashes or
// braces), and ok=false otherwise.
func normalizeUUID(s string) (string, bool) {
	t := strings.ToLower(strings.Trim(cleanValue(s), "{}"))
	t = strings.ReplaceAll(t, "-", "")
	if len(t) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(t); err != nil {
		return "", false
	}
	return t[0:8] + "-" + t[8:12] + "-" + t[12:16] + "-" + t[16:20] + "-" + t[20:32], true
}

// volumeLabel prefixes the input of volume_hash, so the hash cannot be confused with another SHA-256.
const volumeLabel = "licensekit fp1 volume"

func volumeHash(id string) string {
	sum := sha256.Sum256([]byte(volumeLabel + "\x00" + id))
	return hex.EncodeToString(sum[:])
}

// hmacHex returns hex HMAC-SHA256(key, "fp1" 0x00 name 0x00 value), the hashed form of one component
// value under WithHashedIdentifiers.
func hmacHex(key []byte, name, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("fp1\x00" + name + "\x00" + value))
	return hex.EncodeToString(m.Sum(nil))
}

func present(name, value, source string, s Strength) Component {
	return Component{Name: name, Value: value, Source: source, Strength: s}
}

func missing(name, source string, s Strength, r Reason, err error) Component {
	return Component{Name: name, Source: source, Strength: s,
		Missing: &MissingError{Component: name, Reason: r, Err: err}}
}

// errPlaceholder describes a placeholder value; placeholders identify nothing, so quoting them is safe.
func errPlaceholder(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	return fmt.Errorf("placeholder value %q", v)
}

// reasonFor maps a read error to a missing reason: fs.ErrPermission means the source exists but needs
// privilege, anything else (ENOENT, ENODEV, EIO, ...) means the machine does not offer it.
func reasonFor(err error) Reason {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return NeedsPrivilege
	case errors.Is(err, errors.ErrUnsupported):
		return Unsupported
	}
	return NotPresent
}

// fromString builds a component from a raw read of a single-valued source: a read error maps through
// reasonFor, a placeholder to Placeholder, anything else is the cleaned value.
func fromString(name, source string, s Strength, raw string, err error) Component {
	if err != nil {
		return missing(name, source, s, reasonFor(err), err)
	}
	v := cleanValue(raw)
	if isPlaceholder(v) {
		return missing(name, source, s, Placeholder, errPlaceholder(v))
	}
	return present(name, v, source, s)
}

// fromUUID is fromString for a UUID-valued source: the value is normalised to lowercase 8-4-4-4-12
// when it parses as a UUID, and kept as cleaned text otherwise.
func fromUUID(name, source string, s Strength, raw string, err error) Component {
	c := fromString(name, source, s, raw, err)
	if c.Present() {
		if u, ok := normalizeUUID(c.Value); ok {
			if isPlaceholder(u) {
				return missing(name, source, s, Placeholder, errPlaceholder(u))
			}
			c.Value = u
		}
	}
	return c
}

// firmwareResult is the result of a firmware task: mb_serial derived from board and product, then
// product and board, with the firmware strings fw for the hypervisor signal.
func firmwareResult(board, product Component, fw []string) taskResult {
	return taskResult{comps: []Component{mbSerial(board, product), product, board}, env: envFacts{firmware: fw}}
}

// mbSerial derives mb_serial: the board serial when present, else the system (product) UUID; the
// source of the chosen value is kept. When both are missing the more actionable reason wins:
// NeedsPrivilege, then Placeholder, then the board serial's own reason.
func mbSerial(board, product Component) Component {
	switch {
	case board.Present():
		return present(NameMBSerial, board.Value, board.Source, Strong)
	case product.Present():
		return present(NameMBSerial, product.Value, product.Source, Strong)
	}
	// A component that is not present should carry a Missing; one built
	// without it (a zero Component) counts as NotPresent rather than panic.
	pick := board
	for _, r := range []Reason{NeedsPrivilege, Placeholder} {
		if board.Missing != nil && board.Missing.Reason == r {
			break
		}
		if product.Missing != nil && product.Missing.Reason == r {
			pick = product
			break
		}
	}
	r, err := NotPresent, error(nil)
	if pick.Missing != nil {
		r, err = pick.Missing.Reason, pick.Missing.Err
	}
	return missing(NameMBSerial, pick.Source, Strong, r, err)
}
