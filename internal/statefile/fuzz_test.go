package statefile

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds Open arbitrary containers under the golden key and aad. It
// must never panic; a failure must match ErrCorrupt and return no
// plaintext; a success must survive a fresh Seal and Open.
func FuzzOpen(f *testing.F) {
	g, key, blob := loadGolden(f)
	aad := []byte(g.AAD)
	f.Add(blob)
	for n := range len(blob) {
		f.Add(blob[:n])
	}
	f.Add(append(bytes.Clone(blob), 0))
	f.Add(append([]byte("LKST\x02"), blob[5:]...))
	f.Add([]byte("LKST"))
	fresh, err := Seal(key, aad, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fresh)

	f.Fuzz(func(t *testing.T, data []byte) {
		plaintext, err := Open(key, aad, data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open(%d bytes) error %q does not match ErrCorrupt", len(data), err)
			}
			if plaintext != nil {
				t.Fatalf("Open(%d bytes) returned plaintext with an error", len(data))
			}
			return
		}
		again, err := Seal(key, aad, plaintext)
		if err != nil {
			t.Fatalf("Seal(opened plaintext) = %v", err)
		}
		back, err := Open(key, aad, again)
		if err != nil || !bytes.Equal(back, plaintext) {
			t.Fatalf("Open(Seal(p)) = %q, %v; want p", back, err)
		}
	})
}
