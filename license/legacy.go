package license

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
)

// legacyBase is the state file name of the first release, shared by every
// licence of a product: "state", "state-1", ...
const legacyBase = "state"

// legacyKey is the first release's state key: product, licence and every
// strong component present (root-only ones included), else cpu_id and
// host_name.
func legacyKey(cfg *Config, fp *fingerprint.Fingerprint) []byte {
	parts := [][]byte{[]byte(cfg.ProductGUID), []byte(cfg.LicenseKey)}
	for _, c := range fp.Components() {
		if c.Strength == fingerprint.Strong && c.Value != "" && c.Missing == nil {
			parts = append(parts, []byte(c.Name), []byte(c.Value))
		}
	}
	if len(parts) == 2 {
		parts = append(parts, []byte(fp.CPUID.Value), []byte(fp.HostName.Value))
	}
	return statefile.DeriveKey(parts...)
}

// adoptLegacyLocked looks for this licence's state among the first
// release's files ("state", "state-1", ...) when the per-licence slot is
// empty, so that an upgrade keeps its offline allowance and ends the
// session the old version left live. A legacy file is only taken if no
// running client holds it and it opens with this licence's keys; it is
// then saved under the new name and removed. Files of other licences are
// left alone. Best effort: any failure leaves things as they were.
func (c *Client) adoptLegacyLocked(ctx context.Context, keys [][]byte, fp *fingerprint.Fingerprint) *persisted {
	candidates := append(append([][]byte(nil), keys...), legacyKey(&c.cfg, fp))
	for i := range c.opts.slots {
		name := legacyBase
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		p := c.tryLegacyLocked(ctx, name, candidates)
		if p != nil {
			return p
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

func (c *Client) tryLegacyLocked(ctx context.Context, name string, keys [][]byte) *persisted {
	if _, err := os.Lstat(filepath.Join(c.cfg.StateDir, name)); err != nil {
		return nil
	}
	f, err := acquireSlot(ctx, c.cfg.StateDir, name, 1)
	if err != nil {
		return nil // held by a running client of the old version, or unusable
	}
	defer f.Release()
	blob, err := withContext(ctx, f.Read)
	if err != nil {
		return nil
	}
	p, err := openStateWith(keys, blob)
	if err != nil {
		return nil // another licence's, or corrupt: not ours to touch
	}
	blob, err = sealState(c.key, p)
	if err == nil {
		err = c.store.Save(ctx, blob)
	}
	if err != nil {
		return nil
	}
	if _, err := withContext(ctx, func() (struct{}, error) {
		return struct{}{}, os.Remove(f.Path())
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("could not remove the adopted legacy state file", "error", err)
	}
	c.log.Info("adopted state from the previous file naming", "file", name)
	return p
}
