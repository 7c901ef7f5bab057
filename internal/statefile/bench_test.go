package statefile

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkWrite compares an atomic Write (temp file, fsync, rename,
// directory fsync) with its baseline in the same run: one in-place write
// plus one fsync, the least a durable write costs.
func BenchmarkWrite(b *testing.B) {
	data := make([]byte, 512) // about the size of a sealed state
	b.Run("baseline_write_fsync", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "state")
		for b.Loop() {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(data); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("statefile", func(b *testing.B) {
		f, err := Acquire(b.TempDir(), "state", 1)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Release()
		for b.Loop() {
			if err := f.Write(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSealOpen measures sealing and opening a typical state.
func BenchmarkSealOpen(b *testing.B) {
	key := DeriveKey([]byte("product"), []byte("licence"), []byte("machine"))
	plaintext := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		blob, err := Seal(key, []byte("aad"), plaintext)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(key, []byte("aad"), blob); err != nil {
			b.Fatal(err)
		}
	}
}
