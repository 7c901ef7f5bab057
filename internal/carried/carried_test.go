package carried

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseVectors(t *testing.T) {
	for _, name := range []string{"register", "begin", "refresh"} {
		req, _ := os.ReadFile(filepath.Join("../../testdata/offline", name+"-request.txt"))
		rf, err := ParseRequestFile(req)
		if err != nil {
			t.Fatalf("ParseRequestFile(%s) = %v", name, err)
		}
		out, err := rf.Marshal()
		if err != nil || !bytes.Equal(out, req) {
			t.Errorf("Marshal(ParseRequestFile(%s)) differs from the file", name)
		}
		rep, _ := os.ReadFile(filepath.Join("../../testdata/offline", name+"-reply.txt"))
		pf, err := ParseReplyFile(rep)
		if err != nil || pf.Replies[0].ID != rf.Requests[0].ID {
			t.Fatalf("ParseReplyFile(%s) = %v", name, err)
		}
		if _, err := ParseReplyFile(req); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseReplyFile(request file) = %v; want ErrFormat", err)
		}
	}
	trunc, _ := os.ReadFile("../../testdata/offline/begin-reply-truncated.txt")
	if _, err := ParseReplyFile(trunc); !errors.Is(err, ErrFormat) {
		t.Errorf("ParseReplyFile(truncated) = %v; want ErrFormat", err)
	}
	// A damaged block before a good one is not skipped.
	rep, _ := os.ReadFile("../../testdata/offline/begin-reply.txt")
	i := bytes.Index(rep, []byte("-----BEGIN"))
	damaged := append(append(bytes.Clone(rep[:i]), "-----BEGIN LICENSEKIT CARRIED REPLY-----\n!!!\n-----END LICENSEKIT CARRIED REPLY-----\n"...), rep[i:]...)
	if _, err := ParseReplyFile(damaged); !errors.Is(err, ErrFormat) {
		t.Errorf("ParseReplyFile(damaged block first) = %v; want ErrFormat", err)
	}
}

func FuzzParseRequestFile(f *testing.F) {
	fuzzParse(f, ParseRequestFile, func(t *testing.T, rf *RequestFile) {
		out, err := rf.Marshal()
		if err != nil {
			return // header values or ids a writer would not produce
		}
		again, err := ParseRequestFile(out)
		if err != nil || len(again.Requests) != len(rf.Requests) || again.Requests[0] != rf.Requests[0] {
			t.Fatalf("Marshal does not round-trip: %v", err)
		}
	}, "register-request.txt", "begin-request.txt", "deactivation-request.txt")
}

func FuzzParseReplyFile(f *testing.F) {
	fuzzParse(f, ParseReplyFile, func(t *testing.T, rf *ReplyFile) {
		if len(rf.Replies) == 0 || len(rf.Replies) > MaxBlocks {
			t.Fatalf("%d replies", len(rf.Replies))
		}
		rf.Created = time.Time{}
		_, _ = rf.Marshal()
	}, "register-reply.txt", "begin-reply.txt", "begin-reply-truncated.txt")
}

// fuzzParse fuzzes parse from the seed files in testdata/offline: an input
// it rejects must fail with ErrFormat; check examines what it accepts.
func fuzzParse[T any](f *testing.F, parse func([]byte) (T, error), check func(*testing.T, T), seeds ...string) {
	for _, n := range seeds {
		b, _ := os.ReadFile(filepath.Join("../../testdata/offline", n))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not match ErrFormat", err)
			}
			return
		}
		check(t, v)
	})
}
