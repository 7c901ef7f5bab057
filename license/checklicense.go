package license

import (
	"context"
	"errors"
	"io/fs"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/internal/diag"
	"github.com/licensekit/licensekit-go/transport"
)

// CheckLicense takes no seat and creates nothing on the server.
func (c diagnostics) CheckLicense(ctx context.Context, fp *fingerprint.Fingerprint) diag.LicenseCheck {
	if fp == nil {
		return diag.LicenseCheck{NotChecked: "no fingerprint"}
	}
	p, why := c.registeredState(ctx, fp)
	if p == nil {
		return diag.LicenseCheck{NotChecked: why}
	}
	res := diag.LicenseCheck{SavedInstance: p.InstanceGUID, Checked: true}
	req := c.registerRequest(machineOf(fp, p.InstallID))
	res.Err = c.locked(ctx, func(ctx context.Context) error {
		reply, err := exchange(c.Client, ctx, wire.Register, transport.RetryIdempotent, req, wire.DecodeRegister, registerNext)
		if err != nil {
			return err
		}
		res.InstanceGUID = reply.GUID
		res.SessionDuration, res.GracePeriod = reply.ControlOptions.Session(), reply.ControlOptions.Grace()
		return nil
	})
	return res
}

// registeredState returns the saved state of this machine's registration
// with the same hardware, or nil and why there is none.
func (c *Client) registeredState(ctx context.Context, fp *fingerprint.Fingerprint) (*persisted, string) {
	if c.opts.store == nil && c.cfg.StateDir == "" {
		return nil, "no saved state (no state directory), so this machine's registration is unknown"
	}
	peeks, err := c.store.peek(ctx, fp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "the saved state cannot be read"
	}
	found := false
	for _, ps := range peeks {
		p := ps.State
		if p == nil || p.InstanceGUID == "" {
			continue
		}
		found = true
		if p.FingerprintDigest == machineDigest(machineOf(fp, p.InstallID)) {
			return p, ""
		}
	}
	if found {
		return nil, "this machine's hardware changed since it registered, so register_instance would create a new instance on the server"
	}
	return nil, "this machine is not registered with the server yet, so register_instance would create an instance there"
}
