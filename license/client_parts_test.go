package license

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/internal/wire"
)

// TestClientFieldsNameTheirGuard keeps Client a few owned parts: at most 20
// fields, each with a comment that names what protects it (a lock, an
// atomic, or "immutable after New").
func TestClientFieldsNameTheirGuard(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "client.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var fields *ast.FieldList
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == "Client" {
			fields = ts.Type.(*ast.StructType).Fields
		}
		return fields == nil
	})
	if fields == nil {
		t.Fatal("no Client struct in client.go")
	}
	n := 0
	for _, fl := range fields.List {
		n += max(1, len(fl.Names))
		text := fl.Doc.Text() + fl.Comment.Text()
		if !strings.Contains(text, "guarded by") && !strings.Contains(text, "immutable after New") &&
			!strings.Contains(text, "atomic") {
			t.Errorf("Client field %v names no guard: %q", fl.Names, text)
		}
	}
	if n > 20 {
		t.Errorf("Client has %d fields; want at most 20", n)
	}
}

// TestRequestBodyAsJSONMarshal checks that the request body written
// directly is json.Marshal's, byte for byte, for base64 values and for
// values that need escaping.
func TestRequestBodyAsJSONMarshal(t *testing.T) {
	t.Parallel()
	for _, kv := range [][2]string{
		{"ak_live_3vN8pQ2wZ7kR4mT9", "AQIDBA+/=="}, {"", ""}, {"key-with.dots_", "a-b_c"},
		{"<script>", "x"}, {"k", "a\"b\\c"}, {"ké", "\u2028"}, {"k", "\x00"}, {"a b", "&"},
	} {
		want, err := json.Marshal(wire.Request{Key: kv[0], Data: kv[1]})
		if err != nil {
			t.Fatal(err)
		}
		got, err := requestBody(kv[0], kv[1])
		if err != nil || string(got) != string(want) {
			t.Errorf("requestBody(%q, %q) = %s, %v; want %s", kv[0], kv[1], got, err, want)
		}
	}
}

// TestSleepForProperties checks the loop's sleep over random inputs: at
// least 1 ms, at most maxSleep, never past the next attempt, save or
// deadline ahead (unless that is under 1 ms away).
func TestSleepForProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	d := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(2*max))) - max }
	for range 100000 {
		try, save := d(2*time.Minute), d(2*time.Minute)
		session, grace := time.Duration(rng.Int64N(int64(time.Hour))), time.Duration(rng.Int64N(int64(time.Hour)))
		elapsed := d(2 * time.Hour)
		got := sleepFor(try, save, elapsed, session, grace)
		bound := min(try, save, maxSleep)
		if elapsed >= 0 {
			for _, dl := range []time.Duration{session, session + grace} {
				if left := dl - elapsed; left > 0 {
					bound = min(bound, left)
				}
			}
		}
		if got < time.Millisecond || got > maxSleep || got > max(bound, time.Millisecond) {
			t.Fatalf("sleepFor(%v, %v, %v, %v, %v) = %v; want in [1ms, %v]", try, save, elapsed, session, grace, got, max(bound, time.Millisecond))
		}
	}
}
