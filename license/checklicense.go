package license

// This file is the licence check of the diagnosis tools (package
// license/doctor): it asks the server about the licence without taking a
// seat and without creating anything on the server.

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// LicenseCheck is what CheckLicense found.
type LicenseCheck struct {
	// Checked is true when register_instance was sent; NotChecked then is
	// empty. Otherwise NotChecked says, in a few words, why it was not.
	Checked    bool
	NotChecked string
	// SavedInstance is the instance the saved state names; InstanceGUID
	// is the one the server returned. They differ when the server no
	// longer matches this machine to its saved instance.
	SavedInstance, InstanceGUID string
	// SessionDuration and GracePeriod are the server's control options.
	SessionDuration, GracePeriod time.Duration
	// Err is register_instance's outcome, classified like every reply of
	// the client: nil when the server knows the licence, an *APIError
	// matching ErrRefused when it refused it (unknown, revoked or expired
	// licence), or an error matching ErrUnreachable.
	Err error
}

// CheckLicense asks the server whether it knows the licence, without
// taking a seat and without creating anything on the server. It sends
// register_instance only when the saved state shows that the server
// already registered this machine, with the same hardware and user: the
// spec then makes register_instance return the existing instance, so no
// instance is created and no session begun. The request carries what the
// product's own requests carry (the machine's facts, UserName, UserEmail,
// UserAttributes); a server may refresh the instance's record with them
// (such as the IP address last seen) and keeps the request in its replay
// cache and logs, as for any request. On a machine the server does not
// know, register_instance would create an instance, so CheckLicense sends
// nothing and says so in NotChecked.
//
// fp is this machine's fingerprint (see Fingerprint). CheckLicense reads
// the saved state without changing it, takes no state slot, and changes
// nothing on this machine; it waits for a call of the client in progress,
// and ctx bounds the wait and the exchange.
func (c *Client) CheckLicense(ctx context.Context, fp *fingerprint.Fingerprint) LicenseCheck {
	var res LicenseCheck
	if fp == nil {
		res.NotChecked = "no fingerprint"
		return res
	}
	p, why := c.registeredState(ctx, fp)
	if p == nil {
		res.NotChecked = why
		return res
	}
	res.SavedInstance = p.InstanceGUID
	req := wire.RegisterRequest{
		ProductGUID: c.cfg.ProductGUID,
		LicenseKey:  c.cfg.LicenseKey,
		Machine:     machineOf(fp, p.InstallID),
		Name:        c.cfg.UserName,
		Email:       c.cfg.UserEmail,
		UserHash:    c.cfg.UserAttributes,
	}
	res.Checked = true
	res.Err = c.locked(ctx, func(ctx context.Context) error {
		reply, err := exchange(c, ctx, wire.Register, transport.RetryIdempotent, req, wire.DecodeRegister, registerNext)
		if err != nil {
			return err
		}
		res.InstanceGUID = reply.GUID
		res.SessionDuration = time.Duration(reply.ControlOptions.SessionDuration) * time.Second
		res.GracePeriod = time.Duration(reply.ControlOptions.ValidationGracePeriod) * time.Second
		return nil
	})
	return res
}

// registeredState returns the saved state of this machine's registration
// with the same hardware, read without changing anything, or nil and why
// there is none.
func (c *Client) registeredState(ctx context.Context, fp *fingerprint.Fingerprint) (*persisted, string) {
	keys := sealKeys(&c.cfg, fp)
	var blobs [][]byte
	switch {
	case c.opts.store != nil:
		blob, err := c.opts.store.Load(ctx)
		if err == nil {
			blobs = append(blobs, blob)
		}
	case c.cfg.StateDir != "":
		infos, err := statefile.Probe(c.cfg.StateDir, stateFileBase(&c.cfg), c.opts.slots)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, "the saved state cannot be read"
		}
		for _, in := range infos {
			if in.ReadErr == nil && len(in.Data) > 0 {
				blobs = append(blobs, in.Data)
			}
		}
	default:
		return nil, "no saved state (no state directory), so this machine's registration is unknown"
	}
	found := false
	for _, blob := range blobs {
		p, err := openStateWith(keys, blob)
		if err != nil || p.InstanceGUID == "" {
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
