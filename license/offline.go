package license

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/carried"
	"github.com/licensekit/licensekit-go/internal/verdict"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// Offline activation errors (docs/offline-activation.md). Each failure of ActivateOffline, OfflineRequest
// and OfflineDeactivate that is not the server's verdict is an
// *OfflineError matching one of these; a failed ActivateOffline changes
// nothing.
var (
	// ErrOfflineFile matches a file that is not a well-formed licensekit
	// offline file of the expected kind: truncated, damaged, or a request
	// file given where a reply file is expected.
	ErrOfflineFile = errors.New("license: offline: not a valid offline file")
	// ErrOfflineMismatch matches a reply file that does not answer this
	// machine's pending request: written for another machine, for an older
	// request file (one already applied, or replaced by a refresh), or
	// after the licence was deactivated here.
	ErrOfflineMismatch = errors.New("license: offline: reply file does not answer this machine's pending request")
	// ErrOfflineUnauthentic matches a reply that names this machine's
	// pending request but does not open as the server's sealed reply to it:
	// altered on the way.
	ErrOfflineUnauthentic = errors.New("license: offline: reply does not authenticate")
	// ErrOfflineUnsupported matches a client that cannot carry requests:
	// unsealed replies (InsecureUnsealedReplies), a custom Sealer whose
	// reply keys cannot be kept, or shared mode.
	ErrOfflineUnsupported = errors.New("license: offline: not supported by this configuration")
)

// OfflineError is a failure of the offline ceremony. Its text never carries
// file content, keys or tokens.
type OfflineError struct {
	// Op is "request" (OfflineRequest and OfflineDeactivate, and a client
	// that cannot carry requests), "activate" or "exchange".
	Op string
	// Reason says what went wrong and what to do.
	Reason string
	// Err is the category (one of the ErrOffline sentinels) or the cause.
	Err error
}

func (e *OfflineError) Error() string { return "license: offline " + e.Op + ": " + e.Reason }

// Unwrap returns the category or cause.
func (e *OfflineError) Unwrap() error { return e.Err }

func offlineErr(op, reason string, err error) error {
	return &OfflineError{Op: op, Reason: reason, Err: err}
}

// offlinePending is the request file this machine wrote last, kept in the
// sealed state: the sealed requests (to write the same file again) and the
// reply keys that open their replies.
type offlinePending struct {
	Kind     string           `json:"kind"`
	Created  time.Time        `json:"created"`
	Requests []pendingRequest `json:"requests"`
}

type pendingRequest struct {
	Endpoint string `json:"endpoint"`
	ID       string `json:"id"` // hex
	Data     string `json:"data"`
	Opener   []byte `json:"opener"` // envelope.ExportReplyOpener: secret
}

// OfflineRequest writes to w the request file this machine needs next, for
// a person to carry to the vendor: begin_session when the machine is
// registered (register_instance first, the very first time: the v2
// begin_session names the instance the server assigns, so a new machine
// carries two files), or extend_session when an offline session is live
// (a refresh). The requests are sealed for the vendor's key with the carried
// flag and ask for sealed replies; their reply keys stay in this machine's
// sealed state. While a request file is pending (written, its reply not yet
// applied, younger than envelope.CarriedWindow), OfflineRequest writes that
// same file again, so a lost file never takes a second seat. It needs a
// state that persists (StateDir or WithStateStore).
func (c *Client) OfflineRequest(ctx context.Context, w io.Writer) error {
	return c.offline(ctx, func(ctx context.Context) error {
		p := c.st.Offline
		if p == nil || p.Kind == carried.KindDeactivation || c.wallNow().Sub(p.Created) >= envelope.CarriedWindow {
			var err error
			if p, err = c.newPendingLocked(ctx); err != nil {
				return err
			}
			c.st.Offline = p
			c.saveLocked(context.WithoutCancel(ctx))
		}
		return c.writeRequestFile(w, p)
	})
}

// offline runs an offline call as manual runs an explicit one.
func (c *Client) offline(ctx context.Context, f func(context.Context) error) error {
	if c.closing.Load() {
		return ErrClosed
	}
	if c.sh != nil || !c.sealed {
		return offlineErr("request", "needs sealed replies and a client not in shared mode", ErrOfflineUnsupported)
	}
	return c.loadedCall(ctx, func(ctx context.Context) error {
		if !c.store.persistent() {
			return offlineErr("request", "needs a persisted state (StateDir or WithStateStore) to keep the request's reply keys", ErrOfflineUnsupported)
		}
		return f(ctx)
	})
}

// newPendingLocked seals the request this machine needs next.
func (c *Client) newPendingLocked(ctx context.Context) (*offlinePending, error) {
	kind := carried.KindActivation
	var ep string
	var payload any
	switch {
	case c.st.Token != "" && !c.st.Sent.IsZero() && c.wallNow().Sub(c.st.Sent) < c.session()+c.grace():
		kind, ep, payload = carried.KindRefresh, wire.Extend, c.extendRequest()
	default:
		if err := c.machineLocked(ctx); err != nil {
			return nil, err
		}
		if c.st.InstanceGUID == "" || c.st.FingerprintDigest != machineDigest(c.machine) {
			ep, payload = wire.Register, c.registerRequest(c.machine)
		} else {
			ep, payload = wire.Begin, c.beginRequest()
		}
	}
	pr, err := c.sealCarried(ep, payload)
	if err != nil {
		return nil, err
	}
	return &offlinePending{Kind: kind, Created: c.wallNow().UTC(), Requests: []pendingRequest{pr}}, nil
}

// sealCarried seals one carried request and keeps its reply keys.
func (c *Client) sealCarried(ep string, payload any) (pendingRequest, error) {
	plain, err := json.Marshal(payload)
	if err != nil {
		return pendingRequest{}, offlineErr("request", "cannot encode the request", err)
	}
	defer clear(plain)
	sd, err := c.sealer.Seal(envelope.Request{APIKey: c.cfg.APIKey, Endpoint: ep, Time: c.requestTime(), Carried: true}, plain)
	if err != nil {
		return pendingRequest{}, offlineErr("request", "the request cannot be sealed for carrying", errors.Join(ErrOfflineUnsupported, err))
	}
	opener, err := envelope.ExportReplyOpener(sd.Reply)
	if err != nil {
		return pendingRequest{}, offlineErr("request", "this sealer's reply keys cannot be kept", errors.Join(ErrOfflineUnsupported, err))
	}
	return pendingRequest{Endpoint: ep, ID: hex.EncodeToString(sd.ID[:]), Data: sd.Data, Opener: opener}, nil
}

func (c *Client) writeRequestFile(w io.Writer, p *offlinePending) error {
	f := carried.RequestFile{Product: c.cfg.ProductGUID, Licence: carried.MaskLicence(c.cfg.LicenseKey), Created: p.Created, Kind: p.Kind}
	for _, r := range p.Requests {
		var id [carried.IDSize]byte
		_, _ = hex.Decode(id[:], []byte(r.ID))
		f.Requests = append(f.Requests, carried.Request{Endpoint: r.Endpoint, ID: id, Data: r.Data})
	}
	text, err := f.Marshal()
	return writeFile("request", "request", w, text, err)
}

// writeFile writes a carried file's text, or reports err from making it.
func writeFile(op, what string, w io.Writer, text []byte, err error) error {
	if err == nil {
		_, err = w.Write(text)
	}
	if err != nil {
		return offlineErr(op, "cannot write the "+what+" file", err)
	}
	return nil
}

// readFile reads and parses a carried file, at most carried.MaxFileSize.
func readFile[F any](op, what string, r io.Reader, parse func([]byte) (F, error)) (F, error) {
	text, err := io.ReadAll(io.LimitReader(r, carried.MaxFileSize+1))
	if err != nil {
		var zero F
		return zero, offlineErr(op, "cannot read the "+what+" file", err)
	}
	f, err := parse(text)
	if err != nil {
		return f, offlineErr(op, lastPart(err), errors.Join(ErrOfflineFile, err))
	}
	return f, nil
}

// ActivateOffline applies a reply file that the vendor's server wrote for
// this machine's pending request file. Each reply must open as the server's
// sealed reply to exactly that request; anything else (a file for another
// machine or an older request, altered or truncated, or one already applied)
// is an *OfflineError and changes nothing. A sealed refusal is the server's
// word: it is returned as an *APIError and, for begin_session, kept as the
// persisted refusal, as online.
//
// After a begin_session or extend_session reply the licence holds for the
// session duration and grace the server granted, counted from the server's
// authenticated reply time (never later than this machine's clock), and
// Start, Status, events, features and Done behave as for an online session
// run offline. more is true after a register_instance reply: the machine is
// registered, and the next OfflineRequest file begins the session.
func (c *Client) ActivateOffline(ctx context.Context, r io.Reader) (more bool, err error) {
	rf, err := readFile("activate", "reply", r, carried.ParseReplyFile)
	if err != nil {
		return false, err
	}
	err = c.offline(ctx, func(ctx context.Context) error {
		if err := c.store.anchorErr(); err != nil {
			return offlineErr("activate", "the saved state cannot be trusted against its anti-rollback record ("+lastPart(err)+"); write a new request file", err)
		}
		p := c.st.Offline
		if p == nil || p.Kind == carried.KindDeactivation {
			return offlineErr("activate", "no request file is pending on this machine (already applied, deactivated, or never written here)", ErrOfflineMismatch)
		}
		if len(rf.Replies) != len(p.Requests) {
			return offlineErr("activate", "the reply file answers another request file", ErrOfflineMismatch)
		}
		for i, pr := range p.Requests {
			rp := rf.Replies[i]
			if hex.EncodeToString(rp.ID[:]) != pr.ID || rp.Endpoint != pr.Endpoint {
				return offlineErr("activate", "the reply file answers another request (another machine, or an older request file)", ErrOfflineMismatch)
			}
			ro, err := envelope.ImportReplyOpener(pr.Opener)
			if err != nil {
				return offlineErr("activate", "the kept reply keys do not open", err)
			}
			if _, err := ro.OpenReply(rp.Body); err != nil {
				return offlineErr("activate", "the reply does not open as the server's sealed reply to this request (altered or truncated)", ErrOfflineUnauthentic)
			}
		}
		// The machine as registered: this client may not be the one that
		// wrote the request (a product's "activate" command runs anew).
		if err := c.machineLocked(ctx); err != nil {
			return err
		}
		for i, pr := range p.Requests {
			var err error
			more, err = c.applyCarriedLocked(ctx, pr, rf.Replies[i])
			if err != nil {
				return err
			}
		}
		return nil
	})
	return more, err
}

// applyCarriedLocked classifies one carried reply and adopts it.
func (c *Client) applyCarriedLocked(ctx context.Context, pr pendingRequest, rp carried.Reply) (more bool, err error) {
	ro, _ := envelope.ImportReplyOpener(pr.Opener)
	var apply func() // only on a success: the reply decoded
	decode := func(plain []byte) (err error) {
		switch pr.Endpoint {
		case wire.Register:
			apply, err = carriedReply(plain, wire.DecodeRegister, registerNext, c.adoptRegister)
		case wire.Begin:
			apply, err = carriedReply(plain, wire.DecodeBegin, beginNext, func(r *wire.BeginReply) {
				c.redact.AddLive(r.Token, r.SessionKey)
				c.st.Token, c.st.Features = r.Token, r.Features
				c.adoptCarriedSession(r.Time, r.ControlOptions)
			})
		case wire.Extend:
			apply, err = carriedReply(plain, wire.DecodeExtend, extendNext, func(r *wire.ExtendReply) {
				if r.Token != "" {
					c.redact.AddLive(r.Token)
					c.st.Token = r.Token
				}
				c.adoptCarriedSession(r.Time, r.ControlOptions)
			})
		default:
			err = fmt.Errorf("unexpected endpoint")
		}
		return err
	}
	out := verdict.Classify(verdict.Input{
		Endpoint: pr.Endpoint,
		Resp:     &transport.Response{Status: rp.Status, Body: rp.Body, Attempts: 1},
		Opener:   ro,
		Sealed:   true,
		Decode:   decode,
		Kinds:    c.opts.kinds,
		Redactor: c.redact,
	})
	switch out.Category {
	case verdict.Success:
		c.st.Offline = nil
		apply()
		c.saveLocked(context.WithoutCancel(ctx))
		if pr.Endpoint == wire.Register {
			c.publishLocked()
			return true, nil
		}
		c.orphan = true // a later online contact ends this session before beginning anew
		c.enterLocked(Active, nil)
		return false, nil
	case verdict.Refused:
		// The server's word. A refused begin is final, as online; a
		// refused register or extend leaves the licence as it was.
		c.st.Offline, c.lastErr = nil, out.Err
		if pr.Endpoint != wire.Begin {
			c.saveLocked(context.WithoutCancel(ctx))
			c.publishLocked()
			return false, out.Err
		}
		c.persistRefusalLocked(out.Err)
		c.saveLocked(context.WithoutCancel(ctx))
		c.enterLocked(Refused, out.Err)
		return false, out.Err
	}
	return false, offlineErr("activate", "the server did not process the request (see the cause); write a new request file", out.Err)
}

// carriedReply decodes a carried reply, checks it with next (fitsNext) and
// returns adopt bound to it.
func carriedReply[R any](plain []byte, decode func([]byte) (*R, error), next func(*R) error, adopt func(*R)) (func(), error) {
	r, err := decode(plain)
	if err == nil {
		err = next(r)
	}
	return func() { adopt(r) }, err
}

// adoptCarriedSession records a session the server began or extended when
// the carried request reached it, at the sealed reply's time but never
// later than this machine's clock.
func (c *Client) adoptCarriedSession(serverTime wire.Timestamp, co wire.ControlOptions) {
	wall := c.wallNow()
	sent := wall
	if serverTime.Valid() && serverTime.Time.Before(wall) {
		sent = serverTime.Time.Round(0)
	}
	// The budget starts at what the wall clock says had passed: a clock set
	// back before activation gains at most the time the file was carried,
	// once (docs/security.md).
	c.adoptSessionLocked(time.Now(), wall.Sub(sent), sent, sent, co)
}

// OfflineDeactivate ends the licence on this machine and writes to w the
// end_session request file that a person carries to the vendor to free the
// seat. Once the file is written the licence is no longer usable here: the
// session token, its deadlines and any pending request are gone from the
// state (a copy of the old state restored later is caught by the
// anti-rollback record), and no reply file applies any more. If writing
// fails, nothing changes. Called again after a deactivation (the file was
// lost), it writes the same end_session request file again, until a new
// request file is written. With no session, it returns ErrNotStarted.
func (c *Client) OfflineDeactivate(ctx context.Context, w io.Writer) error {
	return c.offline(ctx, func(ctx context.Context) error {
		if c.st.Token == "" && c.st.Offline != nil && c.st.Offline.Kind == carried.KindDeactivation {
			return c.writeRequestFile(w, c.st.Offline) // the same sealed request: the server frees the seat once
		}
		if c.st.Token == "" {
			return ErrNotStarted
		}
		pr, err := c.sealCarried(wire.End, wire.EndRequest{Token: c.st.Token})
		if err != nil {
			return err
		}
		pr.Opener = nil // nothing comes back: the reply keys are not kept
		p := &offlinePending{Kind: carried.KindDeactivation, Created: c.wallNow().UTC(), Requests: []pendingRequest{pr}}
		if err := c.writeRequestFile(w, p); err != nil {
			return err
		}
		c.st.Token, c.st.Features = "", ""
		c.st.Sent = time.Time{}
		c.st.Offline = p
		c.orphan = false
		c.saveLocked(context.WithoutCancel(ctx))
		c.enterLocked(Idle, nil)
		return nil
	})
}

// ExchangeConfig is what ExchangeOffline needs to post carried requests.
type ExchangeConfig struct {
	// ServerURL is the licence server's v2 base URL, as in Config.
	ServerURL string
	// APIKey is the request's "key" value, as in Config. The carried file
	// does not contain it.
	APIKey string
	// HTTPClient, when set, sends the requests.
	HTTPClient *http.Client
}

// ExchangeOffline reads a request file from r, posts each carried request to
// the server exactly as the offline machine sealed it, and writes the reply
// file to w. It runs on any online machine and knows nothing of the
// licence: the requests and replies are sealed end to end. A request file
// posted twice gets the same reply file (the server answers a copy from its
// memory). An envelope-level rejection (a request older than the carried
// window, say) or an unreachable server is an error, and nothing is
// written.
func ExchangeOffline(ctx context.Context, cfg ExchangeConfig, r io.Reader, w io.Writer) error {
	const op = "exchange"
	rf, err := readFile(op, "request", r, carried.ParseRequestFile)
	if err != nil {
		return err
	}
	tr, err := transport.New(cfg.ServerURL, transport.WithHTTPClient(cfg.HTTPClient)) // nil: the default
	if err != nil {
		return offlineErr(op, "invalid server URL", err)
	}
	defer tr.CloseIdleConnections()
	out := carried.ReplyFile{Product: rf.Product, Created: time.Now().UTC()}
	for _, q := range rf.Requests {
		body, err := json.Marshal(wire.Request{Key: cfg.APIKey, Data: q.Data})
		if err != nil {
			return offlineErr(op, "cannot encode the request", err)
		}
		resp, err := tr.Do(ctx, transport.Request{Endpoint: q.Endpoint, Body: body, Retry: transport.RetryIdempotent})
		if resp == nil || resp.Body == nil {
			if err == nil {
				err = errors.New("no reply body")
			}
			return offlineErr(op, q.Endpoint+": server unreachable ("+lastPart(err)+")", errors.Join(ErrUnreachable, err))
		}
		if rej, ok := envelope.ParseRejection(resp.Status, resp.Body); ok {
			return offlineErr(op, q.Endpoint+": the server rejected the carried request ("+rej.Code+"); write a new request file on the offline machine", ErrUnreachable)
		}
		if resp.Status >= 500 || resp.Status == http.StatusTooManyRequests || len(resp.Body) == 0 {
			return offlineErr(op, fmt.Sprintf("%s: the server did not answer (status %d)", q.Endpoint, resp.Status), ErrUnreachable)
		}
		out.Replies = append(out.Replies, carried.Reply{Endpoint: q.Endpoint, ID: q.ID, Status: resp.Status, Body: resp.Body})
	}
	text, err := out.Marshal()
	return writeFile(op, "reply", w, text, err)
}
