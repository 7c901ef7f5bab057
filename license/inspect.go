package license

// This file is the read-only surface that diagnosis tools (package
// license/doctor) use to look inside a client: its fingerprint, a harmless
// probe of the server, and the saved state. None of it takes a seat, and
// none of it changes the saved state.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// RollbackSlack is how far the wall clock may fall behind the latest time
// this machine has seen (the saved high-water mark) before the client
// counts the clock as rolled back and refuses offline allowance
// (ErrClockRollback). A server clock further off than this from the local
// one makes deadlines disagree by as much.
const RollbackSlack time.Duration = 5 * time.Minute

// stateFileBase is the base file name of the state slots in Config.StateDir,
// as Start acquires them.
func stateFileBase(cfg *Config) string { return statefile.BaseName(cfg.ProductGUID, cfg.LicenseKey) }

// Fingerprint returns this machine's fingerprint from the client's source:
// the one given with WithFingerprintSource, or the default collector with
// the options of WithFingerprintOptions. It may block while the hardware
// is read, bounded by ctx. The result is shared: treat it as read-only.
func (c *Client) Fingerprint(ctx context.Context) (*fingerprint.Fingerprint, error) {
	fp, err := c.fp(ctx)
	if fp == nil && err == nil {
		err = errors.New("license: fingerprint source returned nothing")
	}
	return fp, err
}

// ProbeResult is how the server answered Probe.
type ProbeResult struct {
	// RTT is the time from sending the request to having the reply.
	RTT time.Duration
	// ServerTime is the time the reply carried, zero when it carried none.
	ServerTime time.Time
	// Skew is ServerTime minus the local wall clock at the middle of the
	// exchange. It is meaningful only when ServerTime is not zero.
	Skew time.Duration
	// Err is the outcome, classified like every reply of the client: an
	// *APIError matching ErrRefused when the licence server answered with a
	// refusal (the expected answer: the token names no session), an error
	// matching ErrUnreachable when no trustworthy answer arrived, or nil in
	// the unlikely case that the server accepted the token.
	Err error
}

// Probe sends one extend_session for a random token that names no
// session, with the client's retry settings (package doctor builds its
// client with one attempt), and reports how the server answered. No
// server acts on such a request: the expected answer is a refusal in the
// spec's failure shape ("unknown token"), which shows that the licence
// server itself is reached, opens this client's envelope, accepts its API
// key and reports its time. Probe takes no seat, does not load or change
// the saved state, and works before Start. It waits for a call of the
// client in progress; ctx bounds the wait and the exchange.
func (c *Client) Probe(ctx context.Context) ProbeResult {
	var res ProbeResult
	var b [16]byte
	_, _ = rand.Read(b[:])
	req := wire.ExtendRequest{Token: "licensekit-doctor-probe-" + hex.EncodeToString(b[:])}
	err := c.locked(ctx, func(ctx context.Context) error {
		sentWall := c.wallNow()
		sent := time.Now()
		reply, err := exchange(c, ctx, wire.Extend, transport.RetryIdempotent, req, wire.DecodeExtend, nil)
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
	res.Err = err
	return res
}

// SavedState is one state slot as InspectState found it. Times are wall
// times as saved; zero means not recorded.
type SavedState struct {
	// Slot is the slot index, File the slot's file name (no directory);
	// both are zero for a custom StateStore.
	Slot int
	File string
	// Held is true when a running client held the slot's lock at the
	// moment of the inspection. InspectState never waits for it or takes
	// it over.
	Held bool
	// Saved is true when the slot holds saved state, whether or not it
	// opens.
	Saved bool
	// Err says why the slot's state could not be read or does not open; it
	// matches ErrStateCorrupt when the state is damaged, was edited, or was
	// sealed for other hardware or another product or licence.
	Err error
	// InstanceGUID is the registered instance, and FirstRegisteredAt when
	// the server first saw it.
	InstanceGUID      string
	FirstRegisteredAt time.Time
	// SessionLive is true when a session was begun and not ended (a
	// running client, or a crash: the next Start ends it).
	SessionLive bool
	// Sent is when the last successful begin or extend was sent;
	// SessionExpiry and GraceDeadline follow from it and the control
	// options SessionDuration and GracePeriod.
	Sent, SessionExpiry, GraceDeadline time.Time
	SessionDuration, GracePeriod       time.Duration
	// LastContact is when the server last answered; HighWater is the
	// latest wall time this machine had seen when the state was saved.
	LastContact, HighWater time.Time
	// InstallID is true when an install id stands in for weak hardware
	// (fewer than two strong components). The id itself is not exposed.
	InstallID bool
	// Unanchored is true when the state was saved while its anti-rollback
	// record could not be used: it grants no offline time until the server
	// answers again.
	Unanchored bool
	// HardwareChanged is true when this machine's hardware identity differs
	// from the one registered; Changed then names the wire components that
	// differ, or is nil when the state predates per-component records.
	HardwareChanged bool
	Changed         []string
}

// StateInspection is what InspectState found.
type StateInspection struct {
	// Dir is Config.StateDir; empty for a custom store or memory-only state.
	Dir string
	// Store is true when a custom StateStore (WithStateStore) holds the
	// state.
	Store bool
	// Slots lists every slot the client may use, in order.
	Slots []SavedState
	// RecordErr says why the anti-rollback records' location exists but
	// cannot be used (a file where the directory belongs, no permission, a
	// record that does not open): the saved state then grants no offline
	// time (ErrRollbackRecordUnusable). Nil when it works, has not been
	// made yet, or there is none.
	RecordErr error
}

// InspectState looks at the saved state without changing it: it creates
// nothing, takes no lock it keeps, moves no corrupt file aside and never
// waits for a lock held by a running client. fp is this machine's
// fingerprint (see Fingerprint); it derives the state's sealing key and is
// compared with the registered hardware. The error is for a directory that
// cannot be looked at (matching fs.ErrNotExist when it is missing, or
// statefile's not-a-directory error); problems of one slot are in its
// SavedState.Err.
func (c *Client) InspectState(ctx context.Context, fp *fingerprint.Fingerprint) (*StateInspection, error) {
	if fp == nil {
		return nil, errors.New("license: inspect state: no fingerprint")
	}
	keys := sealKeys(&c.cfg, fp)
	insp := &StateInspection{Dir: c.cfg.StateDir}
	switch {
	case c.opts.store != nil:
		insp.Dir, insp.Store = "", true
		s := SavedState{}
		blob, err := c.opts.store.Load(ctx)
		switch {
		case errors.Is(err, ErrNoState):
		case err != nil:
			s.Saved, s.Err = true, &stateError{kind: ErrStateCorrupt, msg: "unreadable", err: err}
		default:
			s.Saved = true
			c.describeState(&s, keys, blob, fp)
		}
		insp.Slots = []SavedState{s}
		if c.opts.rollbackDir != "" {
			insp.RecordErr = inspectRecords(&c.cfg, &c.opts, keys, "store", 1)
		}
		return insp, nil
	case c.cfg.StateDir == "":
		return insp, nil
	}
	infos, err := statefile.Probe(c.cfg.StateDir, stateFileBase(&c.cfg), c.opts.slots)
	if err != nil {
		return insp, err
	}
	if abs, err := filepath.Abs(c.cfg.StateDir); err == nil {
		if c.opts.shared != nil {
			insp.RecordErr = inspectRecords(&c.cfg, &c.opts, keys,
				filepath.Join(abs, statefile.SharedName(c.cfg.ProductGUID, c.cfg.LicenseKey)), 1)
		} else {
			insp.RecordErr = inspectRecords(&c.cfg, &c.opts, keys, abs, c.opts.slots)
		}
	}
	for _, in := range infos {
		s := SavedState{Slot: in.Slot, File: in.Name, Held: in.Held}
		switch {
		case errors.Is(in.ReadErr, statefile.ErrNotExist):
		case in.ReadErr != nil && errors.Is(in.ReadErr, statefile.ErrCorrupt):
			s.Saved, s.Err = true, &stateError{kind: ErrStateCorrupt, msg: "not a state file", err: in.ReadErr}
		case in.ReadErr != nil:
			s.Saved, s.Err = !errors.Is(in.ReadErr, fs.ErrNotExist), in.ReadErr
		default:
			s.Saved = true
			c.describeState(&s, keys, in.Data, fp)
		}
		insp.Slots = append(insp.Slots, s)
	}
	return insp, nil
}

// describeState opens blob and fills s from it.
func (c *Client) describeState(s *SavedState, keys [][]byte, blob []byte, fp *fingerprint.Fingerprint) {
	p, err := openStateWith(keys, blob)
	if err != nil {
		s.Err = err
		return
	}
	s.InstanceGUID = p.InstanceGUID
	s.FirstRegisteredAt = wire.ParseTimestamp(p.FirstRegisteredAt).Time
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

// machineOf is the wire machine a client registers for fp, as
// machineLocked builds it, with installID standing in for weak hardware.
func machineOf(fp *fingerprint.Fingerprint, installID string) wire.Machine {
	m := wire.Machine{
		IPAddress:    fp.IPAddress.Value,
		CPUID:        fp.CPUID.Value,
		MBSerial:     fp.MBSerial.Value,
		MACAddresses: fp.MACAddresses.Values,
		VolumeHash:   fp.VolumeHash.Value,
		HostName:     fp.HostName.Value,
	}
	if fp.StrongCount() < 2 {
		m.MBSerial = "install-" + installID
	}
	return m
}

// componentOrder lists the wire components recorded per component, in
// wire order. ip_address is left out: it changes with the network.
var componentOrder = []string{
	fingerprint.NameCPUID, fingerprint.NameMBSerial, fingerprint.NameMACAddresses,
	fingerprint.NameVolumeHash, fingerprint.NameHostName,
}

// componentDigests records each registered wire component as a short
// labelled SHA-256, so that a later diagnosis can say which one changed.
// They live only inside the sealed state.
func componentDigests(m wire.Machine) map[string]string {
	vals := map[string]string{
		fingerprint.NameCPUID:      m.CPUID,
		fingerprint.NameMBSerial:   m.MBSerial,
		fingerprint.NameVolumeHash: m.VolumeHash,
		fingerprint.NameHostName:   m.HostName,
	}
	macs := ""
	for i, v := range m.MACAddresses {
		if i > 0 {
			macs += ","
		}
		macs += v
	}
	vals[fingerprint.NameMACAddresses] = macs
	out := make(map[string]string, len(vals))
	for name, v := range vals {
		sum := sha256.Sum256([]byte("licensekit component v1\x00" + name + "\x00" + v))
		out[name] = hex.EncodeToString(sum[:16])
	}
	return out
}
