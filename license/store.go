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

// loadLocked opens the state slot and reads the sealed state once.
func (c *Client) loadLocked(ctx context.Context) error {
	if c.loaded {
		return nil
	}
	fp, err := c.fp(ctx)
	if fp == nil {
		if err == nil {
			err = errors.New("no fingerprint")
		}
		return localFault("fingerprint", err)
	}
	keys := sealKeys(&c.cfg, fp)
	c.key = keys[0]

	switch {
	case c.opts.store != nil:
		c.store = c.opts.store
	case c.sh != nil:
		// Shared mode: the shared file of this product and licence
		// (shared.go).
		if err := c.openSharedLocked(ctx); err != nil {
			return err
		}
	case c.cfg.StateDir != "":
		f, err := acquireSlot(ctx, c.cfg.StateDir, statefile.BaseName(c.cfg.ProductGUID, c.cfg.LicenseKey), c.opts.slots)
		if cerr := ctx.Err(); cerr != nil {
			return localFault("open state", cerr)
		}
		if errors.Is(err, statefile.ErrLocked) {
			return &stateError{kind: ErrStateLocked, msg: "all state slots are held by running clients", err: err}
		}
		if err != nil {
			// A read-only or broken directory must not lock the customer
			// out: run on memory, and say so.
			c.log.Warn("state directory unusable; state kept in memory only", "error", err)
			c.emit(Event{Type: EventStateDiscarded, Reason: err, Detail: "state directory unusable; in memory only"})
			c.store = nil
		} else {
			c.slot = f
			c.store = fileStore{f: f}
		}
	default:
		// No persistence: the state lives in c.st alone, and nothing is
		// sealed or saved.
		c.store = nil
	}
	if c.store == nil {
		c.loaded = true
		return nil
	}

	blob, err := c.store.Load(ctx)
	switch {
	case errors.Is(err, ErrNoState):
	case ctx.Err() != nil:
		// The caller gave up while the state was read: nothing is known
		// about it, so nothing is discarded. A later Start reads it again.
		return localFault("read state", ctx.Err())
	case err != nil:
		c.discardLocked(ctx, &stateError{kind: ErrStateCorrupt, msg: "unreadable", err: err})
	default:
		p, err := openStateWith(keys, blob)
		if err != nil {
			c.discardLocked(ctx, err)
		} else {
			c.st = *p
			c.savedHW = p.HighWater
			c.orphan = p.Token != ""
		}
	}
	c.loadRollbackLocked()
	c.loaded = true
	return nil
}

func (c *Client) discardLocked(ctx context.Context, err error) {
	c.corrupt = err
	c.log.Warn("persisted state discarded", "error", err)
	if derr := c.store.Discard(ctx); derr != nil {
		c.log.Warn("could not move corrupt state aside", "error", derr)
	}
	c.emit(Event{Type: EventStateDiscarded, Reason: err, Detail: "corrupt state moved aside"})
}

// saveLocked seals and stores the state; a failure is reported, never fatal.
func (c *Client) saveLocked(ctx context.Context) {
	if c.store == nil {
		return
	}
	wall := c.wallNow()
	if !c.rolledBack && wall.After(c.st.HighWater) {
		c.st.HighWater = wall
	}
	if c.sharedOn() && !c.sharedSaveLocked() {
		return
	}
	c.st.Generation++
	blob, err := sealState(c.key, &c.st)
	if err == nil {
		err = c.store.Save(ctx, blob)
	}
	if err != nil {
		c.log.Warn("could not save licence state", "error", err)
		c.emit(Event{Type: EventStateDiscarded, Reason: err, Detail: "state not saved"})
		return
	}
	c.savedHW = c.st.HighWater
	c.writeRollbackLocked()
}
