// Package carried reads and writes the files of offline activation: the
// request file a person carries from an offline machine to the vendor, and
// the reply file carried back. Both are plain text, safe to e-mail: a
// readable header, then one PEM block (RFC 7468) per request or reply, as
// docs/offline-activation.md ("Files") shows.
//
// The header lines are informational: nothing in them is authenticated, and
// the reader decides only from the blocks. The API key is not in the file:
// whoever posts the requests supplies it. The package does no I/O.
package carried

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// File limits.
const (
	// MaxFileSize bounds a file this package reads.
	MaxFileSize = 256 << 10
	// MaxBlocks bounds the requests or replies in one file.
	MaxBlocks = 4
	// IDSize is the size of a request id.
	IDSize = 16
)

// Magic lines, PEM block types and kinds.
const (
	RequestMagic = "licensekit offline request"
	ReplyMagic   = "licensekit offline reply"
	requestBlock = "LICENSEKIT CARRIED REQUEST"
	replyBlock   = "LICENSEKIT CARRIED REPLY"

	KindActivation   = "activation"
	KindRefresh      = "refresh"
	KindDeactivation = "deactivation"
)

// ErrFormat is matched (errors.Is) by every parse failure.
var ErrFormat = errors.New("carried: not a well-formed offline file")

// FormatError describes a parse failure. Its text names the problem, never
// file content.
type FormatError struct{ Reason string }

func (e *FormatError) Error() string { return "carried: " + e.Reason }

// Unwrap returns ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }

func bad(format string, a ...any) error { return &FormatError{Reason: fmt.Sprintf(format, a...)} }

// Request is one carried request.
type Request struct {
	Endpoint string
	ID       [IDSize]byte
	// Data is the request's "data" value (standard base64 of the envelope).
	Data string
}

// RequestFile is a parsed request file.
type RequestFile struct {
	Product  string
	Licence  string // masked
	Created  time.Time
	Kind     string
	Requests []Request
}

// Reply is the server's answer to one carried request.
type Reply struct {
	Endpoint string
	ID       [IDSize]byte
	Status   int
	Body     []byte
}

// ReplyFile is a parsed reply file.
type ReplyFile struct {
	Product string
	Created time.Time
	Replies []Reply
}

// MaskLicence shows the first and last four characters of a licence key
// only (all of it hidden when it is shorter than 12 characters).
func MaskLicence(key string) string {
	if len(key) < 12 {
		return strings.Repeat("*", 8)
	}
	return key[:4] + "..." + key[len(key)-4:]
}

// Marshal returns the text of the request file.
func (f *RequestFile) Marshal() ([]byte, error) {
	if len(f.Requests) == 0 || len(f.Requests) > MaxBlocks {
		return nil, bad("a request file holds 1 to %d requests", MaxBlocks)
	}
	var blocks []*pem.Block
	for _, r := range f.Requests {
		raw, err := base64.StdEncoding.Strict().DecodeString(r.Data)
		if err != nil || len(raw) == 0 || !validEndpoint(r.Endpoint) {
			return nil, bad("invalid request")
		}
		blocks = append(blocks, &pem.Block{Type: requestBlock, Headers: map[string]string{
			"Endpoint": r.Endpoint, "Request-Id": hex.EncodeToString(r.ID[:])}, Bytes: raw})
	}
	return encode(RequestMagic, []string{"Product", f.Product, "Licence", f.Licence,
		"Created", f.Created.UTC().Format(time.RFC3339), "Kind", f.Kind}, blocks), nil
}

// Marshal returns the text of the reply file.
func (f *ReplyFile) Marshal() ([]byte, error) {
	if len(f.Replies) == 0 || len(f.Replies) > MaxBlocks {
		return nil, bad("a reply file holds 1 to %d replies", MaxBlocks)
	}
	var blocks []*pem.Block
	for _, r := range f.Replies {
		if len(r.Body) == 0 || !validEndpoint(r.Endpoint) || r.Status < 100 || r.Status > 599 {
			return nil, bad("invalid reply")
		}
		blocks = append(blocks, &pem.Block{Type: replyBlock, Headers: map[string]string{
			"Endpoint": r.Endpoint, "Request-Id": hex.EncodeToString(r.ID[:]), "Status": strconv.Itoa(r.Status)}, Bytes: r.Body})
	}
	return encode(ReplyMagic, []string{"Product", f.Product, "Created", f.Created.UTC().Format(time.RFC3339)}, blocks), nil
}

// encode writes the magic line, one "Name: value" line per pair of
// headers (dropping characters that would break the line), then the blocks.
func encode(magic string, headers []string, blocks []*pem.Block) []byte {
	var b bytes.Buffer
	b.WriteString(magic + "\n")
	for i := 0; i+1 < len(headers); i += 2 {
		value := strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, headers[i+1])
		b.WriteString(headers[i] + ": " + value + "\n")
	}
	for _, blk := range blocks {
		b.WriteByte('\n')
		_ = pem.Encode(&b, blk)
	}
	return b.Bytes()
}

func validEndpoint(s string) bool {
	invalid := func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }
	return len(s) > 0 && len(s) <= 64 && !strings.ContainsFunc(s, invalid)
}

// parsed is the common part of both files.
type parsed struct {
	headers map[string]string
	created time.Time // zero when the Created header is missing or malformed
	blocks  []*pem.Block
}

func parse(text []byte, magic, blockType string) (*parsed, error) {
	if len(text) > MaxFileSize {
		return nil, bad("file larger than %d bytes", MaxFileSize)
	}
	text = bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n")) // a mail client's line ends
	first, rest, _ := bytes.Cut(text, []byte("\n"))
	if got := string(bytes.TrimSpace(first)); got != magic {
		if got == RequestMagic || got == ReplyMagic {
			return nil, bad("this is a %q file, not a %q file", got, magic)
		}
		return nil, bad("not a licensekit offline file (first line is not %q)", magic)
	}
	p := &parsed{headers: map[string]string{}}
	// Header lines run up to the first block.
	for len(rest) > 0 && !bytes.HasPrefix(rest, []byte("-----BEGIN")) {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		l := strings.TrimSpace(string(line))
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, bad("header line without a colon")
		}
		p.headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	blocksText := rest
	for len(bytes.TrimSpace(rest)) > 0 {
		rest = bytes.TrimLeft(rest, " \t\n")
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, bad("text between blocks")
		}
		blk, r := pem.Decode(rest)
		if blk == nil {
			return nil, bad("truncated or damaged block")
		}
		if blk.Type != blockType {
			return nil, bad("unexpected block type")
		}
		if len(p.blocks) == MaxBlocks {
			return nil, bad("more than %d blocks", MaxBlocks)
		}
		p.blocks = append(p.blocks, blk)
		rest = r
	}
	if len(p.blocks) == 0 {
		return nil, bad("no %s block (truncated file?)", strings.ToLower(blockType))
	}
	// pem.Decode skips a damaged block and returns the next good one: every
	// BEGIN line must have given one block.
	if bytes.Count(blocksText, []byte("-----BEGIN ")) != len(p.blocks) {
		return nil, bad("truncated or damaged block")
	}
	p.created, _ = time.Parse(time.RFC3339, p.headers["Created"])
	return p, nil
}

func blockHead(blk *pem.Block) (string, [IDSize]byte, error) {
	ep := blk.Headers["Endpoint"]
	if !validEndpoint(ep) {
		return "", [IDSize]byte{}, bad("missing or invalid Endpoint")
	}
	raw, err := hex.DecodeString(blk.Headers["Request-Id"])
	if err != nil || len(raw) != IDSize {
		return "", [IDSize]byte{}, bad("missing or invalid Request-Id")
	}
	return ep, [IDSize]byte(raw), nil
}

// ParseRequestFile parses a request file. Every error matches ErrFormat.
func ParseRequestFile(text []byte) (*RequestFile, error) {
	p, err := parse(text, RequestMagic, requestBlock)
	if err != nil {
		return nil, err
	}
	f := &RequestFile{Product: p.headers["Product"], Licence: p.headers["Licence"], Created: p.created, Kind: p.headers["Kind"]}
	for _, blk := range p.blocks {
		var r Request
		if r.Endpoint, r.ID, err = blockHead(blk); err != nil {
			return nil, err
		}
		if len(blk.Bytes) == 0 {
			return nil, bad("empty request")
		}
		r.Data = base64.StdEncoding.EncodeToString(blk.Bytes)
		f.Requests = append(f.Requests, r)
	}
	return f, nil
}

// ParseReplyFile parses a reply file. Every error matches ErrFormat.
func ParseReplyFile(text []byte) (*ReplyFile, error) {
	p, err := parse(text, ReplyMagic, replyBlock)
	if err != nil {
		return nil, err
	}
	f := &ReplyFile{Product: p.headers["Product"], Created: p.created}
	for _, blk := range p.blocks {
		var r Reply
		if r.Endpoint, r.ID, err = blockHead(blk); err != nil {
			return nil, err
		}
		if r.Status, err = strconv.Atoi(blk.Headers["Status"]); err != nil || r.Status < 100 || r.Status > 599 {
			return nil, bad("missing or invalid Status")
		}
		if len(blk.Bytes) == 0 {
			return nil, bad("empty reply")
		}
		r.Body = blk.Bytes
		f.Replies = append(f.Replies, r)
	}
	return f, nil
}
