package carried_test

// This test reads the carried-file vectors with the standard library alone,
// from the description in docs/offline-activation.md, as an implementer of
// a vendor portal in another language would.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const vectorDir = "../../testdata/offline"

func TestVectorFilesWithTheStandardLibrary(t *testing.T) {
	for _, name := range []string{"register", "begin", "refresh", "deactivation"} {
		req, err := os.ReadFile(filepath.Join(vectorDir, name+"-request.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(req, []byte("licensekit offline request\n")) {
			t.Fatalf("%s: first line is not the request magic", name)
		}
		head := string(req[:bytes.Index(req, []byte("-----BEGIN"))])
		for _, h := range []string{"Product: ", "Licence: ", "Created: ", "Kind: "} {
			if !strings.Contains(head, "\n"+h) {
				t.Errorf("%s: header %q missing", name, h)
			}
		}
		blk, rest := pem.Decode(req)
		if blk == nil || blk.Type != "LICENSEKIT CARRIED REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("%s: want exactly one LICENSEKIT CARRIED REQUEST block", name)
		}
		env := blk.Bytes
		// Format 2 public-key request: version 0x21; flags 0x03 (sealed
		// reply requested | carried); request id at bytes 24..39; endpoint
		// length at 40, endpoint from 41.
		if len(env) < 42 || env[0] != 0x21 || env[1] != 0x03 {
			t.Fatalf("%s: envelope header = % x; want version 0x21 and flags 0x03", name, env[:min(len(env), 2)])
		}
		if got := hex.EncodeToString(env[24:40]); got != blk.Headers["Request-Id"] {
			t.Errorf("%s: Request-Id header %s; envelope says %s", name, blk.Headers["Request-Id"], got)
		}
		l := int(env[40])
		if ep := string(env[41 : 41+l]); ep != blk.Headers["Endpoint"] {
			t.Errorf("%s: Endpoint header %q; envelope says %q", name, blk.Headers["Endpoint"], ep)
		}
		data := base64.StdEncoding.EncodeToString(env) // the request's "data" value
		if _, err := base64.StdEncoding.Strict().DecodeString(data); err != nil {
			t.Fatal(err)
		}
		if name == "deactivation" {
			continue
		}
		rep, err := os.ReadFile(filepath.Join(vectorDir, name+"-reply.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(rep, []byte("licensekit offline reply\n")) {
			t.Fatalf("%s: first line is not the reply magic", name)
		}
		rb, rest := pem.Decode(rep)
		if rb == nil || rb.Type != "LICENSEKIT CARRIED REPLY" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("%s: want exactly one LICENSEKIT CARRIED REPLY block", name)
		}
		if rb.Headers["Request-Id"] != blk.Headers["Request-Id"] || rb.Headers["Endpoint"] != blk.Headers["Endpoint"] {
			t.Errorf("%s: reply names another request", name)
		}
		if st, err := strconv.Atoi(rb.Headers["Status"]); err != nil || st != 200 {
			t.Errorf("%s: Status = %q", name, rb.Headers["Status"])
		}
		var body struct {
			Data string `json:"data"`
		}
		if err := json.Unmarshal(rb.Bytes, &body); err != nil {
			t.Fatalf("%s: reply body is not the sealed reply object: %v", name, err)
		}
		raw, err := base64.StdEncoding.DecodeString(body.Data)
		if err != nil || len(raw) < 49 || raw[0] != 0xA1 {
			t.Errorf("%s: reply is not a public-key sealed reply", name)
		}
	}
	trunc, err := os.ReadFile(filepath.Join(vectorDir, "begin-reply-truncated.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode(trunc); blk != nil {
		t.Error("the truncated reply file decodes")
	}
}
