package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
)

// maxBody bounds a request body: envelope.MaxDataSize of data plus the key
// and the JSON around them.
const maxBody = envelope.MaxDataSize + 64<<10

// Server is a small licence server for API v2. Its HTTP handling is the part
// a vendor adapts: Open the request's data with the private key, check its
// freshness, act on the plaintext, Seal the reply when the client asked for
// it. Its licence logic (a Store: licences, instances, sessions and replies in
// SQLite) stands in for the vendor's own.
type Server struct {
	opener  envelope.Opener
	guard   *envelope.Guard
	carried *envelope.Guard // carried (offline) requests: FORMAT.md "Carried requests"
	apiKeys map[string]bool
	store   *Store
	replies ReplyStore
	now     func() time.Time
	log     *slog.Logger

	grace time.Duration // validation_grace_period sent to clients
}

// NewServer returns a server that opens requests with opener (for instance
// envelope.NewOpener(priv), or envelope.MultiOpener of an old and a new key
// during a rotation), accepts the given API keys, and keeps its state in
// store.
func NewServer(opener envelope.Opener, apiKeys []string, store *Store) *Server {
	s := &Server{
		opener:  opener,
		guard:   envelope.NewGuard(envelope.GuardConfig{}),
		carried: envelope.NewGuard(envelope.GuardConfig{Window: envelope.CarriedWindow, PartitionEntries: 256}),
		apiKeys: map[string]bool{},
		store:   store,
		replies: sqlReplies{},
		now:     time.Now,
		log:     slog.New(slog.DiscardHandler),
		grace:   DefaultGrace,
	}
	for _, k := range apiKeys {
		s.apiKeys[k] = true
	}
	return s
}

// ServeHTTP serves POST /api/v2/{register_instance,begin_session,
// extend_session,end_session}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, ok := strings.CutPrefix(r.URL.Path, "/api/v2/")
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}

	// 1. The outer JSON: {"key": <API key>, "data": <envelope>}.
	var req struct {
		Key  string `json:"key"`
		Data string `json:"data"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody || json.Unmarshal(body, &req) != nil {
		s.writePlain(w, http.StatusBadRequest, failure(s.now(), "malformed request"))
		return
	}
	if !s.apiKeys[req.Key] {
		s.writePlain(w, http.StatusUnauthorized, failure(s.now(), "unknown api key"))
		return
	}

	// 2. Open the envelope. A request that does not open cannot get a sealed
	// answer (there is no reply key), so it is refused in plain JSON; a
	// client that asked for a sealed reply treats that as "unreachable",
	// never as a refusal of its licence.
	// The envelope is bound to the endpoint it was posted to.
	opened, err := s.opener.Open(envelope.Incoming{Key: req.Key, Data: req.Data, Endpoint: endpoint})
	if err != nil {
		s.log.Info("cannot open request", "endpoint", endpoint, "error", err) // envelope errors hold no secrets
		status, out := envelope.RejectionReply(err, s.now())
		s.writeRaw(w, status, out)
		return
	}
	// Freshness: a stale timestamp is rejected, a repeat gets the stored
	// reply and is never processed twice. The Guard remembers what this
	// process answered; the store (step 3) what was answered before a
	// restart or by another instance sharing it. Only a request that names
	// a licence or a session the server knows is remembered, in either (its
	// scope), so envelopes sealed by anyone holding a copy of the product
	// take no room from customers: they are refused without any change.
	now := s.now()
	scope := s.scope(r.Context(), endpoint, opened.Plaintext)
	// A carried (offline) request, marked in its authenticated header, is
	// accepted up to envelope.CarriedWindow old and remembered that long,
	// in memory and in the database, by the same rules.
	guard := s.guard
	if opened.Carried {
		guard = s.carried
	}
	ticket, cached, err := guard.Admit(opened, req.Data, now, scope)
	switch {
	case err != nil:
		status, out := envelope.RejectionReply(err, now)
		s.writeRaw(w, status, out)
		return
	case cached != nil:
		s.writeRaw(w, cached.Status, cached.Body)
		return
	}

	// 3. The licence logic, on the plaintext payload, and 4. the reply:
	// sealed when the client asked (reply.Requested() reads a flag from the
	// authenticated header), success and failure alike. Both happen in one
	// transaction that keeps the reply with the request's effects.
	status, out, err := s.store.answer(r.Context(), s.replies, opened, sha256.Sum256([]byte(req.Data)),
		now.Add(-s.guard.Window()), now.Add(-s.carried.Window()), scope.Partition != "", func(tx *sql.Tx) (int, []byte, error) {
			status, answer, err := s.dispatch(r.Context(), tx, endpoint, opened.Plaintext, now)
			if err != nil {
				return 0, nil, err
			}
			out, err := json.Marshal(answer)
			if err != nil {
				return 0, nil, err
			}
			if opened.Reply.Requested() {
				if out, err = opened.Reply.SealReply(out); err != nil {
					return 0, nil, err
				}
			}
			return status, out, nil
		})
	if err != nil {
		ticket.Forget() // nothing was kept: a retry is processed as new
		if errors.Is(err, envelope.ErrReplayed) {
			status, out := envelope.RejectionReply(err, now)
			s.writeRaw(w, status, out)
			return
		}
		s.log.Error("cannot answer", "endpoint", endpoint, "error", err) // database errors hold no payload
		s.writePlain(w, http.StatusInternalServerError, failure(now, "internal error"))
		return
	}
	ticket.Done(status, out)
	s.writeRaw(w, status, out)
}

// scope names what a request proved for the replay cache: a licence that
// exists (register, begin) or a live session token (extend, end). It decodes
// the payload as dispatch does. Anything else gets the empty scope and is
// refused by dispatch without any change.
func (s *Server) scope(ctx context.Context, endpoint string, payload []byte) envelope.Scope {
	var d struct {
		ProductGUID string `json:"product_guid"`
		LicenseKey  string `json:"license_key"`
		Token       string `json:"token"`
	}
	if json.Unmarshal(payload, &d) != nil {
		return envelope.Scope{}
	}
	var sc envelope.Scope
	_ = s.store.tx(ctx, func(tx *sql.Tx) error {
		switch endpoint {
		case "register_instance", "begin_session":
			if _, err := licenceTx(ctx, tx, d.ProductGUID, d.LicenseKey); err == nil {
				sc.Partition = "licence\x00" + d.ProductGUID + "\x00" + d.LicenseKey
			}
		case "extend_session", "end_session":
			h := tokenHash(d.Token)
			var one int
			if d.Token != "" && tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE token_hash = ?`, h).Scan(&one) == nil {
				sc.Partition = "session\x00" + string(h)
			}
		}
		return nil
	})
	return sc
}

func (s *Server) writeRaw(w http.ResponseWriter, status int, out []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (s *Server) writePlain(w http.ResponseWriter, status int, v any) {
	out, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// The v2 payloads and replies, with the spec's field names.
type (
	machine struct {
		IPAddress    string   `json:"ip_address"`
		CPUID        string   `json:"cpu_id"`
		MBSerial     string   `json:"mb_serial"`
		MACAddresses []string `json:"mac_addresses"`
		VolumeHash   string   `json:"volume_hash"`
		HostName     string   `json:"host_name"`
	}
	registerData struct {
		ProductGUID string `json:"product_guid"`
		LicenseKey  string `json:"license_key"`
		machine
		Name     string            `json:"name"`
		Email    string            `json:"email"`
		UserHash map[string]string `json:"user_hash"`
	}
	beginData struct {
		ProductGUID  string `json:"product_guid"`
		LicenseKey   string `json:"license_key"`
		InstanceGUID string `json:"instance_guid"`
		machine
		Duration int64 `json:"duration"`
	}
	tokenData struct {
		Token    string `json:"token"`
		Duration int64  `json:"duration"`
	}
	controlOptions struct {
		SessionDuration       int64 `json:"session_duration"`
		ValidationGracePeriod int64 `json:"validation_grace_period"`
	}
	failureReply struct {
		Success bool   `json:"success"`
		Time    string `json:"time"`
		Error   string `json:"error"`
	}
)

func failure(now time.Time, msg string) failureReply {
	return failureReply{Success: false, Time: stamp(now), Error: msg}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

var errMalformed = errors.New("malformed payload")

// options are the control options of a reply: the session length granted
// and the grace period.
func (s *Server) options(session time.Duration) controlOptions {
	return controlOptions{int64(session / time.Second), int64(s.grace / time.Second)}
}

// grant is the session length a client gets: what it asked for (duration,
// in seconds; the spec lets a server honour it) when that is shorter than
// the licence's longest, else the longest.
func grant(requested int64, longest time.Duration) time.Duration {
	if requested > 0 && time.Duration(requested)*time.Second < longest {
		return time.Duration(requested) * time.Second
	}
	return longest
}

// dispatch runs one endpoint on an opened payload, in tx, and returns the
// HTTP status and the reply object. An error is the database's: the request
// is then answered 500, which a client counts as "unreachable", and nothing
// is kept.
func (s *Server) dispatch(ctx context.Context, tx *sql.Tx, endpoint string, payload []byte, now time.Time) (int, any, error) {
	switch endpoint {
	case "register_instance":
		var d registerData
		if json.Unmarshal(payload, &d) != nil || d.ProductGUID == "" || d.LicenseKey == "" {
			return http.StatusBadRequest, failure(now, errMalformed.Error()), nil
		}
		l, refusal, err := usable(ctx, tx, now, d.ProductGUID, d.LicenseKey)
		if err != nil || refusal != nil {
			return http.StatusForbidden, refusal, err
		}
		// The spec: the same hardware and user get the same instance.
		identity := sha256.Sum256([]byte(strings.Join([]string{d.ProductGUID, d.LicenseKey, d.CPUID, d.MBSerial,
			d.VolumeHash, d.HostName, d.Name, d.Email}, "\x00")))
		var guid string
		var registered int64
		err = tx.QueryRowContext(ctx, `SELECT guid, registered FROM instances WHERE identity = ?`, identity[:]).
			Scan(&guid, &registered)
		if errors.Is(err, sql.ErrNoRows) {
			guid, registered = randomHex(16), now.Unix()
			_, err = tx.ExecContext(ctx, `INSERT INTO instances VALUES (?, ?, ?, ?, ?, ?)`,
				guid, identity[:], d.ProductGUID, d.LicenseKey, d.HostName, registered)
		}
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{"success": true, "time": stamp(now), "guid": guid,
			"control_options": s.options(l.Session), "first_registered_at": stamp(time.Unix(registered, 0))}, nil

	case "begin_session":
		var d beginData
		if json.Unmarshal(payload, &d) != nil || d.InstanceGUID == "" {
			return http.StatusBadRequest, failure(now, errMalformed.Error()), nil
		}
		l, refusal, err := usable(ctx, tx, now, d.ProductGUID, d.LicenseKey)
		if err != nil || refusal != nil {
			return http.StatusForbidden, refusal, err
		}
		var known int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM instances WHERE guid = ? AND product = ? AND key = ?`,
			d.InstanceGUID, d.ProductGUID, d.LicenseKey).Scan(&known); err != nil {
			return 0, nil, err
		}
		if known == 0 {
			return http.StatusNotFound, failure(now, "unknown instance"), nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE lapses <= ?`, now.Unix()); err != nil {
			return 0, nil, err
		}
		if l.Seats > 0 {
			// A seat is a machine with a live session: this machine's own
			// sessions (another process, or one that crashed) take none.
			var used int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT instance) FROM sessions
				WHERE product = ? AND key = ? AND instance != ?`, d.ProductGUID, d.LicenseKey, d.InstanceGUID).
				Scan(&used); err != nil {
				return 0, nil, err
			}
			if used >= l.Seats {
				return http.StatusForbidden, failure(now, "no seats available"), nil
			}
		}
		session := grant(d.Duration, l.Session)
		token := randomHex(24)
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)`, tokenHash(token),
			randomHex(6), d.ProductGUID, d.LicenseKey, d.InstanceGUID, now.Unix(), now.Add(session).Unix()); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{"status": 1, "time": stamp(now), "session_key": randomHex(16),
			"token": token, "features": l.Features, "control_options": s.options(session)}, nil

	case "extend_session":
		var d tokenData
		if json.Unmarshal(payload, &d) != nil || d.Token == "" {
			return http.StatusBadRequest, failure(now, errMalformed.Error()), nil
		}
		var product, key string
		var lapses int64
		err := tx.QueryRowContext(ctx, `SELECT product, key, lapses FROM sessions WHERE token_hash = ?`,
			tokenHash(d.Token)).Scan(&product, &key, &lapses)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && lapses <= now.Unix()) {
			return http.StatusNotFound, failure(now, "unknown token"), nil
		}
		if err != nil {
			return 0, nil, err
		}
		l, refusal, err := usable(ctx, tx, now, product, key)
		if err != nil || refusal != nil {
			return http.StatusForbidden, refusal, err
		}
		session := grant(d.Duration, l.Session)
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET lapses = ? WHERE token_hash = ?`,
			now.Add(session).Unix(), tokenHash(d.Token)); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{"status": 1, "time": stamp(now), "token": d.Token,
			"control_options": s.options(session)}, nil

	case "end_session":
		var d tokenData
		if json.Unmarshal(payload, &d) != nil {
			return http.StatusUnprocessableEntity, failure(now, errMalformed.Error()), nil
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash(d.Token))
		if err != nil {
			return 0, nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return http.StatusUnprocessableEntity, failure(now, "unknown token"), nil
		}
		return http.StatusOK, map[string]any{"time": stamp(now)}, nil
	}
	return http.StatusNotFound, failure(now, "unknown endpoint"), nil
}

// usable returns the licence, or the refusal of an unknown or revoked one.
func usable(ctx context.Context, tx *sql.Tx, now time.Time, product, key string) (*Licence, *failureReply, error) {
	l, err := licenceTx(ctx, tx, product, key)
	switch {
	case errors.Is(err, ErrNoLicence):
		f := failure(now, "unknown license")
		return nil, &f, nil
	case err != nil:
		return nil, nil, err
	case l.Revoked:
		f := failure(now, "license revoked")
		return nil, &f, nil
	}
	return l, nil, nil
}
