package envelope

import (
	"encoding/json"
	"errors"
	"testing"
)

// fuzzOpener returns one Opener over the keys of all three vector files, plus
// the seeds: (api key, data) of every vector.
func fuzzOpener(f *testing.F) (Opener, []vector) {
	f.Helper()
	var openers []Opener
	var seeds []vector
	for _, name := range vectorFiles {
		vf := loadVectors(f, name)
		openers = append(openers, vf.opener(f))
		seeds = append(seeds, vf.Vectors...)
	}
	return MultiOpener(openers...), seeds
}

// checkError requires err to be an *Error in exactly one request category.
func checkError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %q (%T) is not an *Error", err, err)
	}
	n := 0
	for _, c := range []error{ErrMalformed, ErrUnauthentic, ErrUnsupportedVersion} {
		if errors.Is(err, c) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %q matches %d categories; want 1", err, n)
	}
}

// FuzzOpen feeds arbitrary (api key, data) to the server side. Each input is
// tried as the data string itself and as the bytes inside a base64 data
// string, so the fuzzer reaches both the base64 and the binary parser.
func FuzzOpen(f *testing.F) {
	o, seeds := fuzzOpener(f)
	for _, v := range seeds {
		f.Add(v.APIKey, v.PostedTo, []byte(v.Data))
		if raw, ok := decodeData(v.Data); ok {
			f.Add(v.APIKey, v.PostedTo, raw)
		}
	}
	f.Fuzz(func(t *testing.T, apiKey, endpoint string, in []byte) {
		for _, data := range []string{string(in), b64.EncodeToString(in)} {
			op, err := o.Open(Incoming{Key: apiKey, Data: data, Endpoint: endpoint})
			if err != nil {
				checkError(t, err)
				if op != nil {
					t.Fatalf("Open failed but returned a result")
				}
				continue
			}
			raw, ok := decodeData(data)
			if !ok {
				t.Fatalf("Open accepted non-canonical data %q", data)
			}
			if op.Reply == nil || op.Reply.Requested() != (raw[1]&flagSealedReply != 0) {
				t.Fatalf("Requested() disagrees with the header flag")
			}
			if op.Endpoint != endpoint {
				t.Fatalf("Open accepted a request sealed for %q at %q", op.Endpoint, endpoint)
			}
		}
	})
}

// FuzzOpenReply feeds arbitrary bodies to the client side of the stored
// sealed-reply requests. Each input is tried as the body itself and as the
// bytes inside a {"data":"<base64>"} body. Every failure must match
// ErrUnauthentic.
func FuzzOpenReply(f *testing.F) {
	var openers []ReplyOpener
	for _, name := range vectorFiles {
		vf := loadVectors(f, name)
		o := vf.opener(f)
		for _, v := range vf.Vectors {
			if !v.SealedReply {
				continue
			}
			openers = append(openers, clientReply(f, o, v))
			for _, r := range v.Replies {
				f.Add([]byte(r.Body))
				if d, ok := replyData([]byte(r.Body)); ok {
					if raw, ok := decodeData(d); ok {
						f.Add(raw)
					}
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		bodies := [][]byte{in, []byte(replyBodyPrefix + b64.EncodeToString(in) + replyBodySuffix)}
		for _, ro := range openers {
			for _, body := range bodies {
				pt, err := ro.OpenReply(body)
				if err == nil {
					continue
				}
				if pt != nil {
					t.Fatalf("OpenReply failed but returned plaintext")
				}
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrUnauthentic) {
					t.Fatalf("OpenReply error %q does not match ErrUnauthentic", err)
				}
			}
		}
	})
}

// FuzzReplyDataAgreesWithJSON checks replyData's shortcut for the form
// sealers write against encoding/json: on any body, replyData finds a data
// string exactly when the body is a JSON object whose one member is "data"
// (exact case) holding a JSON string (not null), and finds that string.
func FuzzReplyDataAgreesWithJSON(f *testing.F) {
	for _, s := range []string{
		`{"data":"QUJD"}`, ` {"data":"QUJD"} `, `{"data":"a\"b"}`, `{"data":"\u0041"}`,
		`{"data":"x","data":"y"}`, `{"Data":"QUJD"}`, `{"data":"QUJD"}x`, "{\"data\":\"\x01\"}",
		`{"data":"é"}`, `{"data":""}`, `{"data":1}`, `{"data":null}`, `{"data": "QUJD"}`, `{"data":"QUJD"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := replyData(body)
		var m map[string]json.RawMessage
		var want string
		wantOK := json.Unmarshal(body, &m) == nil && len(m) == 1 && len(m["data"]) > 0 && m["data"][0] == '"' &&
			json.Unmarshal(m["data"], &want) == nil
		if ok != wantOK || got != want {
			t.Fatalf("replyData(%q) = %q, %v; encoding/json reads %q, %v", body, got, ok, want, wantOK)
		}
	})
}
