package license

import (
	"context"
	"testing"

	"github.com/licensekit/licensekit-go/envelope"
)

// benchSaveClient returns a loaded client whose state lives in a temporary
// StateDir, with its anti-rollback record in another temporary directory.
func benchSaveClient(b *testing.B) *Client {
	b.Helper()
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Config{
		ServerURL: "http://127.0.0.1:9/api/v2", APIKey: "ak", ServerPublicKey: priv.Public().EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense, StateDir: b.TempDir(),
	}, fixedFingerprint(testFingerprint()), WithRollbackRecordDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.loadLocked(context.Background()); err != nil {
		b.Fatal(err)
	}
	if c.store.rb == nil {
		b.Fatal("no anti-rollback record")
	}
	b.Cleanup(func() {
		c.store.release()
		c.events.close()
	})
	return c
}

// BenchmarkStateSave measures one state change as the client persists it:
// "state only" is the baseline (seal, write a temporary file, fsync, rename,
// fsync the directory); "with rollback record" adds the anti-rollback record
// (one more small sealed, fsync'd, renamed file). The difference is the
// record's cost:
//
//	go test ./license -run '^$' -bench BenchmarkStateSave -benchtime 200x -count 5
func BenchmarkStateSave(b *testing.B) {
	for _, withRecord := range []bool{false, true} {
		name := "state only"
		if withRecord {
			name = "with rollback record"
		}
		b.Run(name, func(b *testing.B) {
			c := benchSaveClient(b)
			rb := c.store.rb
			if !withRecord {
				c.store.rb = nil
			}
			b.ReportAllocs()
			for b.Loop() {
				c.saveLocked(context.Background())
			}
			c.store.rb = rb
		})
	}
}
