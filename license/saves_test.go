package license

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// countingStore is a MemoryStateStore that counts its saves.
type countingStore struct {
	MemoryStateStore
	saves atomic.Int64
}

func (s *countingStore) Save(ctx context.Context, data []byte) error {
	s.saves.Add(1)
	return s.MemoryStateStore.Save(ctx, data)
}

// TestOneSavePerStateChange checks that the client writes its state once
// per change the server made (each write is a state file and an
// anti-rollback record, both fsync'd, with a state directory), and that
// every change is saved before the call that made it returns.
func TestOneSavePerStateChange(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	newClient := func(store *countingStore) *Client {
		t.Helper()
		c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: testLicense}, fixedFingerprint(testFingerprint()),
			WithStateStore(store), WithRollbackRecordDir(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// saved runs step and checks that it saved exactly want times, and that
	// the saved state then holds what check expects.
	saved := func(store *countingStore, name string, want int64, step func() error, check func(p *persisted) bool) {
		t.Helper()
		before := store.saves.Load()
		if err := step(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := store.saves.Load() - before; got != want {
			t.Errorf("%s saved the state %d times; want %d", name, got, want)
		}
		blob, err := store.Load(ctx)
		if err != nil {
			t.Fatalf("%s: nothing saved: %v", name, err)
		}
		p, err := openState(sealKey(&Config{ProductGUID: testProduct, LicenseKey: testLicense}, testFingerprint()), blob)
		if err != nil {
			t.Fatalf("%s: saved state does not open: %v", name, err)
		}
		if !check(p) {
			t.Errorf("%s: saved state %+v lacks the change", name, p)
		}
	}

	t.Run("manual lifecycle", func(t *testing.T) {
		store := &countingStore{}
		c := newClient(store)
		defer c.Close(ctx)
		var token string
		saved(store, "Register", 1, func() error { _, err := c.Register(ctx); return err },
			func(p *persisted) bool { return p.InstanceGUID != "" })
		saved(store, "BeginSession", 1, func() error { return c.BeginSession(ctx) },
			func(p *persisted) bool { token = p.Token; return p.Token != "" && !p.Sent.IsZero() })
		saved(store, "ExtendSession", 1, func() error { return c.ExtendSession(ctx) },
			func(p *persisted) bool { return p.Token != "" })
		saved(store, "EndSession", 1, func() error { return c.EndSession(ctx) },
			func(p *persisted) bool { return p.Token == "" })
		if token == "" {
			t.Fatal("no token was saved")
		}
	})
	t.Run("Start and Close", func(t *testing.T) {
		store := &countingStore{}
		c := newClient(store)
		saved(store, "Start", 1, func() error { return c.Start(ctx) },
			func(p *persisted) bool { return p.InstanceGUID != "" && p.Token != "" })
		saved(store, "Close", 1, func() error { return c.Close(ctx) },
			func(p *persisted) bool { return p.Token == "" })
		if n := len(srv.Sessions()); n != 0 {
			t.Errorf("%d sessions live after Close; want 0", n)
		}
	})
}
