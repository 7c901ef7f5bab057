package license

import (
	"context"
	"errors"
	"runtime"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
)

// fileStore is the default StateStore: a locked slot in Config.StateDir,
// named by statefile.BaseName(ProductGUID, LicenseKey). Every operation
// honours its context: it returns when ctx ends even if the disk does not
// answer. The operation itself then finishes in the background; the
// slot's own lock orders it before any later operation and before Release.
type fileStore struct{ f *statefile.File }

func (s fileStore) Load(ctx context.Context) ([]byte, error) {
	b, err := withContext(ctx, s.f.Read)
	if errors.Is(err, statefile.ErrNotExist) {
		return nil, ErrNoState
	}
	return b, err
}

func (s fileStore) Save(ctx context.Context, data []byte) error {
	_, err := withContext(ctx, func() (struct{}, error) { return struct{}{}, s.f.Write(data) })
	return err
}

func (s fileStore) Discard(ctx context.Context) error {
	_, err := withContext(ctx, s.f.Quarantine)
	return err
}

// withContext runs f and returns its result, or ctx's error as soon as ctx
// ends, leaving f to finish on its own.
func withContext[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// acquireSlot is statefile.Acquire bounded by ctx. A slot acquired after
// ctx ended is released at once.
func acquireSlot(ctx context.Context, dir, base string, slots int) (*statefile.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		f   *statefile.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := statefile.Acquire(dir, base, slots)
		ch <- result{f, err}
	}()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.f != nil {
				_ = r.f.Release()
			}
		}()
		return nil, ctx.Err()
	}
}

// The state key. The sealed state must open in every run of the product on
// this machine, whoever runs it, so its key uses only fingerprint
// components that need no privilege to read and do not come and go: one
// machine identifier, the first present of
//
//   - machine_id: /etc/machine-id (or D-Bus's copy) on Linux, MachineGuid
//     on Windows; readable by every user;
//   - product_uuid, on macOS and Windows only, where it needs no privilege
//     (on Linux the DMI file is readable by root alone);
//   - cpu_id and volume_hash together, when neither is present (containers
//     without a machine-id).
//
// board_serial, product_uuid on Linux and mb_serial are left out (root
// only on Linux), as are mac_addresses (docks, USB adapters, VPNs),
// host_name and ip_address (renamed, moved). Product and licence are
// always part of it.
//
// This stops casual copying and editing of the state file, not a
// determined reverse engineer who can run the product under a debugger.

// sealKeys returns the keys the state may be sealed under on this machine,
// the preferred one first: state is sealed with the first and opened with
// any, so that state sealed in a run that lacked the machine identifier
// still opens once it is back.
func sealKeys(cfg *Config, fp *fingerprint.Fingerprint) [][]byte {
	var keys [][]byte
	add := func(parts ...string) {
		b := [][]byte{[]byte(cfg.ProductGUID), []byte(cfg.LicenseKey)}
		for _, p := range parts {
			b = append(b, []byte(p))
		}
		keys = append(keys, statefile.DeriveKey(b...))
	}
	if c, ok := fp.Component(fingerprint.NameMachineID); ok && c.Present() {
		add(fingerprint.NameMachineID, c.Value)
	}
	if runtime.GOOS != "linux" {
		if c, ok := fp.Component(fingerprint.NameProductUUID); ok && c.Present() {
			add(fingerprint.NameProductUUID, c.Value)
		}
	}
	add(fingerprint.NameCPUID, fp.CPUID.Value, fingerprint.NameVolumeHash, fp.VolumeHash.Value)
	return keys
}

// sealKey is the key state is sealed with on this machine.
func sealKey(cfg *Config, fp *fingerprint.Fingerprint) []byte { return sealKeys(cfg, fp)[0] }

// openStateWith opens blob with the first of keys that fits. Every failure
// matches ErrStateCorrupt.
func openStateWith(keys [][]byte, blob []byte) (p *persisted, err error) {
	for _, k := range keys {
		if p, err = openState(k, blob); err == nil {
			return p, nil
		}
	}
	return nil, err
}
