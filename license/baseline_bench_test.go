package license

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
)

// The lifecycle baseline: the least work any correct client must do for
// register, begin, extend and end in the SDK's default configuration. Per
// call it seals the request afresh, posts it, checks the HTTP status, opens
// the sealed reply (the default), decodes it into a minimal struct and checks
// the verdict; it uses the real token for extend and end, and ends the
// session it began. It logs nothing, has no retry policy, no events and no
// state machine: what the SDK does on top of that is what the ratio
// measures. It keeps no state on disk unless given a stateDir; then, after
// each of the four calls, it writes its state and its anti-rollback record
// durably, as the SDK does with Config.StateDir (two atomic, fsync'd writes
// per state change).

// baseEnvelope is the baseline's whole envelope, and the only place the
// baseline knows the envelope format. It follows envelope/FORMAT.md
// (version 2) with bare crypto/hpke, crypto/hkdf and AES-256-GCM, and asks
// for a sealed reply like the SDK's default. When FORMAT.md changes, change
// this type (and nothing else) to follow it.
type baseEnvelope struct {
	apiKey string
	// Public-key mode (version 0x21): the server's HPKE key and the fixed
	// 16-byte header (version, flags, KEM, KDF, AEAD, key id).
	pk hpke.PublicKey
	// Shared-secret mode (version 0x22): request_secret and the fixed
	// 10-byte header (version, flags, key id).
	reqSecret []byte
	header    []byte
}

const (
	baseFlagSealedReply = 0x01
	baseReplyOverhead   = 1 + 32 + 16 // version, response_nonce, GCM tag
)

// newBaseEnvelope derives what FORMAT.md lets a client derive once: the
// public-key header and key id, or the shared-secret keys. Exactly one of
// pub and secret is set.
func newBaseEnvelope(apiKey string, pub *envelope.PublicKey, secret []byte) (*baseEnvelope, error) {
	e := &baseEnvelope{apiKey: apiKey}
	if pub == nil {
		prk, err := hkdf.Extract(sha256.New, secret, []byte("licensekit-envelope v2 shared secret"))
		if err != nil {
			return nil, err
		}
		keyID, _ := hkdf.Expand(sha256.New, prk, "key id", 8)
		if e.reqSecret, err = hkdf.Expand(sha256.New, prk, "request", 32); err != nil {
			return nil, err
		}
		e.header = append([]byte{0x22, baseFlagSealedReply}, keyID...)
		return e, nil
	}
	if pub.KEM() != envelope.KEMX25519 {
		return nil, errors.New("baseline: only DHKEM(X25519) is implemented")
	}
	raw := pub.Bytes()
	pk, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(raw)
	if err != nil {
		return nil, err
	}
	e.pk = pk
	h := sha256.New()
	h.Write([]byte("licensekit-envelope v2 key id\x00"))
	h.Write([]byte{0x00, 0x20}) // KEM id
	h.Write(raw)
	e.header = []byte{0x21, baseFlagSealedReply, 0x00, 0x20, 0x00, 0x01, 0x00, 0x02}
	e.header = append(e.header, h.Sum(nil)[:8]...)
	return e, nil
}

// tail appends the timestamp, a random request id and the endpoint.
func (e *baseEnvelope) tail(endpoint string) ([]byte, error) {
	raw := bytes.Clone(e.header)
	raw = binary.BigEndian.AppendUint64(raw, uint64(time.Now().Unix()))
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	raw = append(raw, id...)
	raw = append(raw, byte(len(endpoint)))
	return append(raw, endpoint...), nil
}

// seal seals one request for endpoint and returns its data field and a
// function that opens the sealed reply body to exactly this request.
func (e *baseEnvelope) seal(endpoint string, plain []byte) (string, func([]byte) ([]byte, error), error) {
	hdr, err := e.tail(endpoint)
	if err != nil {
		return "", nil, err
	}
	if e.pk != nil {
		info := append([]byte("licensekit-envelope v2 request\x00"), e.apiKey...)
		enc, sender, err := hpke.NewSender(e.pk, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
		if err != nil {
			return "", nil, err
		}
		ct, err := sender.Seal(hdr, plain)
		if err != nil {
			return "", nil, err
		}
		secret, err := sender.Export("licensekit-envelope v2 response", 32)
		if err != nil {
			return "", nil, err
		}
		raw := append(append(hdr, enc...), ct...)
		return base64.StdEncoding.EncodeToString(raw), func(body []byte) ([]byte, error) {
			return baseOpenReply(body, 0xA1, secret, enc)
		}, nil
	}
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return "", nil, err
	}
	hdr = append(hdr, salt...)
	prk, err := hkdf.Extract(sha256.New, e.reqSecret, salt)
	if err != nil {
		return "", nil, err
	}
	key, _ := hkdf.Expand(sha256.New, prk, "key", 32)
	iv, _ := hkdf.Expand(sha256.New, prk, "nonce", 12)
	secret, _ := hkdf.Expand(sha256.New, prk, "response\x00"+e.apiKey, 32)
	a, err := baseGCM(key)
	if err != nil {
		return "", nil, err
	}
	aad := append(bytes.Clone(hdr), e.apiKey...)
	raw := a.Seal(hdr, iv, plain, aad)
	return base64.StdEncoding.EncodeToString(raw), func(body []byte) ([]byte, error) {
		return baseOpenReply(body, 0xA2, secret, salt)
	}, nil
}

// baseOpenReply opens a sealed reply body {"data":"<base64>"} as
// FORMAT.md's client steps 1-4 say: at most 1 MiB, a JSON object with exactly
// the one member "data", canonical base64; then prk_r =
// HKDF-Extract(binding || response_nonce, secret), and AES-256-GCM with the
// derived key and nonce and the version byte as AAD.
func baseOpenReply(body []byte, version byte, secret, binding []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if len(body) > wire.MaxBody || json.Unmarshal(body, &m) != nil || len(m) != 1 {
		return nil, errors.New("baseline: not a sealed reply")
	}
	var data string
	if err := json.Unmarshal(m["data"], &data); err != nil {
		return nil, errors.New("baseline: not a sealed reply")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(data)
	if err != nil || base64.StdEncoding.EncodedLen(len(raw)) != len(data) {
		return nil, errors.New("baseline: reply data is not canonical base64")
	}
	if len(raw) < baseReplyOverhead || raw[0] != version {
		return nil, errors.New("baseline: not a sealed reply")
	}
	prk, err := hkdf.Extract(sha256.New, secret, append(bytes.Clone(binding), raw[1:33]...))
	if err != nil {
		return nil, err
	}
	key, _ := hkdf.Expand(sha256.New, prk, "key", 32)
	iv, _ := hkdf.Expand(sha256.New, prk, "nonce", 12)
	a, err := baseGCM(key)
	if err != nil {
		return nil, err
	}
	return a.Open(nil, iv, raw[33:], raw[:1])
}

func baseGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// baseClient is the baseline client: one envelope, one http.Client.
type baseClient struct {
	url string
	env *baseEnvelope
	hc  *http.Client
	// stateDir and recordDir, when set, make the baseline durable with
	// rollback protection: after every call that changes its state
	// (instance, token, deadline) it writes that state and then its
	// anti-rollback record, each atomically, the least a client that loses
	// nothing and notices a restored state directory must do (see persist).
	stateDir, recordDir string
	// key seals the state and the record (AES-256-GCM), gen is the state's
	// generation.
	key []byte
	gen uint64
}

// persist writes the instance, token and deadline anchor to stateDir, then
// the generation and wall-time high-water mark to recordDir (outside
// stateDir, as the SDK's anti-rollback record), both sealed with AES-GCM and
// each written atomically: a temporary file, fsync, rename, fsync of the
// directory. It does nothing without a stateDir.
func (c *baseClient) persist(guid, token string) error {
	if c.stateDir == "" {
		return nil
	}
	c.gen++
	now := time.Now()
	state, _ := json.Marshal(struct {
		GUID, Token string
		Sent        time.Time
		Generation  uint64
	}{guid, token, now, c.gen})
	if err := baseWriteSealed(c.key, c.stateDir, "state", state); err != nil {
		return err
	}
	record, _ := json.Marshal(struct {
		Generation uint64
		HighWater  time.Time
	}{c.gen, now})
	return baseWriteSealed(c.key, c.recordDir, "record", record)
}

// baseWriteSealed seals plain with AES-256-GCM under key and replaces
// dir/name with it atomically and durably.
func baseWriteSealed(key []byte, dir, name string, plain []byte) error {
	a, err := baseGCM(key)
	if err != nil {
		return err
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	blob := a.Seal(nonce, nonce, plain, []byte(name))
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(blob)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// baseReply is the minimal reply: the verdict and the two values the
// lifecycle needs.
type baseReply struct {
	Success *bool  `json:"success"`
	Status  int64  `json:"status"`
	GUID    string `json:"guid"`
	Token   string `json:"token"`
}

// call seals payload, posts it, checks the status, opens the sealed reply
// and decodes it.
func (c *baseClient) call(ctx context.Context, endpoint string, payload any) (*baseReply, error) {
	plain, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	data, open, err := c.env.seal(endpoint, plain)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(wire.Request{Key: c.env.apiKey, Data: data})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/"+endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	sealed, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxBody))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("baseline: %s: HTTP %d", endpoint, resp.StatusCode)
	}
	pt, err := open(sealed)
	if err != nil {
		return nil, fmt.Errorf("baseline: %s: %w", endpoint, err)
	}
	var r baseReply
	if err := json.Unmarshal(pt, &r); err != nil {
		return nil, err
	}
	if r.Success != nil && !*r.Success {
		return nil, fmt.Errorf("baseline: %s: refused", endpoint)
	}
	return &r, nil
}

// lifecycle registers, begins, extends and ends one session.
func (c *baseClient) lifecycle(ctx context.Context, m wire.Machine) error {
	r, err := c.call(ctx, wire.Register, wire.RegisterRequest{ProductGUID: testProduct, LicenseKey: testLicense, Machine: m})
	if err != nil {
		return err
	}
	guid := r.GUID
	if guid == "" {
		return errors.New("baseline: no guid")
	}
	if err := c.persist(guid, ""); err != nil {
		return err
	}
	r, err = c.call(ctx, wire.Begin, wire.BeginRequest{ProductGUID: testProduct, LicenseKey: testLicense,
		InstanceGUID: guid, Machine: m})
	if err != nil {
		return err
	}
	token := r.Token
	if token == "" {
		return errors.New("baseline: no token")
	}
	if err := c.persist(guid, token); err != nil {
		return err
	}
	if r, err = c.call(ctx, wire.Extend, wire.ExtendRequest{Token: token}); err != nil {
		return err
	}
	if r.Token != "" {
		token = r.Token
	}
	if err := c.persist(guid, token); err != nil {
		return err
	}
	if _, err = c.call(ctx, wire.End, wire.EndRequest{Token: token}); err != nil {
		return err
	}
	return c.persist(guid, "")
}
