package license

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/internal/diag"
	"github.com/licensekit/licensekit-go/transport"
)

// Diagnostics is for package license/doctor, the SDK's diagnosis tool,
// and is no part of the API a product uses: a key that unlocks it can be
// made only by the SDK's packages under license/ (as testing.MainStart's
// argument only by the go command); with any other key it returns nil. The
// surface it returns is described in package license/internal/diag.
func (c *Client) Diagnostics(k diag.Key) diag.Client {
	if !k.Valid() {
		return nil
	}
	return diagnostics{c}
}

type diagnostics struct{ *Client }

func (c diagnostics) Fingerprint(ctx context.Context) (*fingerprint.Fingerprint, error) {
	fp, err := c.fp(ctx)
	if fp == nil && err == nil {
		err = errors.New("license: fingerprint source returned nothing")
	}
	return fp, err
}

// Probe sends one extend_session for a random token.
func (c diagnostics) Probe(ctx context.Context) diag.ProbeResult {
	var res diag.ProbeResult
	var b [16]byte
	_, _ = rand.Read(b[:])
	req := wire.ExtendRequest{Token: "licensekit-doctor-probe-" + hex.EncodeToString(b[:])}
	res.Err = c.locked(ctx, func(ctx context.Context) error {
		sentWall := c.wallNow()
		sent := time.Now()
		reply, err := exchange(c.Client, ctx, wire.Extend, transport.RetryIdempotent, req, wire.DecodeExtend, nil)
		res.RTT = time.Since(sent)
		var ts wire.Timestamp
		var api *APIError
		switch {
		case err == nil:
			ts = reply.Time
		case errors.As(err, &api):
			ts = wire.ParseTimestamp(api.Time)
		}
		if ts.Valid() {
			res.ServerTime = ts.Time
			res.Skew = ts.Time.Sub(sentWall.Add(res.RTT / 2))
		}
		return err
	})
	return res
}

func (c diagnostics) InspectState(ctx context.Context, fp *fingerprint.Fingerprint) (*diag.StateInspection, error) {
	if fp == nil {
		return nil, errors.New("license: inspect state: no fingerprint")
	}
	keys := sealKeys(&c.cfg, fp)
	insp := &diag.StateInspection{Dir: c.cfg.StateDir}
	if c.opts.store == nil && c.cfg.StateDir == "" {
		return insp, nil
	}
	peeks, err := c.store.peek(ctx, fp)
	if err != nil {
		return insp, err
	}
	if c.opts.store != nil {
		insp.Dir, insp.Store = "", true
		if c.opts.rollbackDir != "" {
			insp.RecordErr = inspectRecords(&c.cfg, &c.opts, keys, "store", 1)
		}
	} else if abs, err := filepath.Abs(c.cfg.StateDir); err == nil {
		if c.opts.shared != nil {
			insp.RecordErr = inspectRecords(&c.cfg, &c.opts, keys, filepath.Join(abs, c.store.sharedName), 1)
		} else {
			insp.RecordErr = inspectRecords(&c.cfg, &c.opts, keys, abs, c.opts.slots)
		}
	}
	for _, ps := range peeks {
		s := diag.SavedState{Slot: ps.Slot, Held: ps.Held, Saved: !ps.Missing, Err: ps.Err}
		if ps.State != nil {
			describeState(&s, ps.State, fp)
		}
		insp.Slots = append(insp.Slots, s)
	}
	return insp, nil
}

// describeState fills s from the opened state p.
func describeState(s *diag.SavedState, p *persisted, fp *fingerprint.Fingerprint) {
	s.InstanceGUID = p.InstanceGUID
	s.SessionLive = p.Token != ""
	s.SessionDuration = time.Duration(p.SessionSeconds) * time.Second
	s.GracePeriod = time.Duration(p.GraceSeconds) * time.Second
	if !p.Sent.IsZero() {
		s.Sent = p.Sent
		s.SessionExpiry = p.Sent.Add(s.SessionDuration)
		s.GraceDeadline = s.SessionExpiry.Add(s.GracePeriod)
	}
	s.LastContact, s.HighWater = p.LastContact, p.HighWater
	s.InstallID = p.InstallID != ""
	s.Unanchored = p.Unanchored
	if p.FingerprintDigest == "" {
		return // never registered
	}
	m := machineOf(fp, p.InstallID)
	s.HardwareChanged = p.FingerprintDigest != machineDigest(m)
	if s.HardwareChanged && p.Components != nil {
		now := componentDigests(m)
		for _, name := range componentOrder {
			if now[name] != p.Components[name] {
				s.Changed = append(s.Changed, name)
			}
		}
	}
}
