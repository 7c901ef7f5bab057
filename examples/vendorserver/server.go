package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
)

// maxBody bounds a request body: envelope.MaxDataSize of data plus the key
// and the JSON around them.
const maxBody = envelope.MaxDataSize + 64<<10

// Server is a small licence server for API v2. Its HTTP handling is the part
// a vendor adapts: Open the request's data with the private key, act on the
// plaintext, Seal the reply when the client asked for it. Its licence logic
// (licences in a map, sessions in memory) stands in for the vendor's own.
type Server struct {
	opener  envelope.Opener
	guard   *envelope.Guard
	apiKeys map[string]bool
	now     func() time.Time
	log     *slog.Logger

	session time.Duration // session_duration sent to clients
	grace   time.Duration // validation_grace_period sent to clients

	mu        sync.Mutex
	licences  map[string]*Licence  // by product_guid + "\x00" + license_key
	instances map[string]string    // hardware and user digest -> instance guid
	sessions  map[string]*liveSess // by token
}

// Licence is one product licence the server grants.
type Licence struct {
	ProductGUID string
	Key         string
	Features    string
	Revoked     bool
}

type liveSess struct {
	licence  string
	instance string
	lapses   time.Time
}

// NewServer returns a server that opens requests with opener (for instance
// envelope.NewOpener(priv), or envelope.MultiOpener of an old and a new key
// during a rotation) and accepts the given API keys.
func NewServer(opener envelope.Opener, apiKeys []string, licences []Licence) *Server {
	s := &Server{
		opener:    opener,
		guard:     envelope.NewGuard(envelope.GuardConfig{}),
		apiKeys:   map[string]bool{},
		now:       time.Now,
		log:       slog.New(slog.DiscardHandler),
		session:   10 * time.Minute,
		grace:     24 * time.Hour,
		licences:  map[string]*Licence{},
		instances: map[string]string{},
		sessions:  map[string]*liveSess{},
	}
	for _, k := range apiKeys {
		s.apiKeys[k] = true
	}
	for _, l := range licences {
		s.licences[l.ProductGUID+"\x00"+l.Key] = &l
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
		status, out := envelope.RejectionReply(envelope.ErrMalformed, s.now())
		s.writeRaw(w, status, out)
		return
	}
	if !s.apiKeys[req.Key] {
		status, out := envelope.RejectionReply(envelope.ErrUnauthentic, s.now())
		s.writeRaw(w, status, out)
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
	// reply and is never processed twice. Only a request that names a
	// licence or a session the server knows is remembered (its scope), so
	// envelopes sealed by anyone holding a copy of the product take no room
	// from customers.
	ticket, cached, err := s.guard.Admit(opened, req.Data, s.now(), s.scope(endpoint, opened.Plaintext))
	switch {
	case err != nil:
		status, out := envelope.RejectionReply(err, s.now())
		s.writeRaw(w, status, out)
		return
	case cached != nil:
		s.writeRaw(w, cached.Status, cached.Body)
		return
	}
	plaintext, reply := opened.Plaintext, opened.Reply

	// 3. The licence logic, on the plaintext payload.
	status, answer := s.dispatch(endpoint, plaintext)

	// 4. The reply: sealed when the client asked (reply.Requested() reads a
	// flag from the authenticated header), success and failure alike.
	out, err := json.Marshal(answer)
	if err != nil {
		s.writePlain(w, http.StatusInternalServerError, failure(s.now(), "internal error"))
		return
	}
	if reply.Requested() {
		if out, err = reply.SealReply(out); err != nil {
			s.writePlain(w, http.StatusInternalServerError, failure(s.now(), "internal error"))
			return
		}
	}
	ticket.Done(status, out)
	s.writeRaw(w, status, out)
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

// dispatch runs one endpoint on an opened payload and returns the HTTP
// status and the reply object.
func (s *Server) dispatch(endpoint string, payload []byte) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	opts := controlOptions{int64(s.session / time.Second), int64(s.grace / time.Second)}
	switch endpoint {
	case "register_instance":
		var d registerData
		if json.Unmarshal(payload, &d) != nil || d.ProductGUID == "" || d.LicenseKey == "" {
			return http.StatusBadRequest, failure(now, errMalformed.Error())
		}
		if st, f := s.checkLicence(now, d.ProductGUID, d.LicenseKey); f != nil {
			return st, f
		}
		id := strings.Join([]string{d.ProductGUID, d.LicenseKey, d.CPUID, d.MBSerial, d.VolumeHash, d.HostName, d.Name, d.Email}, "\x00")
		guid, ok := s.instances[id]
		if !ok {
			guid = randomHex(16)
			s.instances[id] = guid
		}
		return http.StatusOK, map[string]any{"success": true, "time": stamp(now), "guid": guid,
			"control_options": opts, "first_registered_at": stamp(now)}

	case "begin_session":
		var d beginData
		if json.Unmarshal(payload, &d) != nil || d.InstanceGUID == "" {
			return http.StatusBadRequest, failure(now, errMalformed.Error())
		}
		if st, f := s.checkLicence(now, d.ProductGUID, d.LicenseKey); f != nil {
			return st, f
		}
		token := randomHex(24)
		s.sessions[token] = &liveSess{licence: d.ProductGUID + "\x00" + d.LicenseKey, instance: d.InstanceGUID,
			lapses: now.Add(s.session)}
		return http.StatusOK, map[string]any{"status": 1, "time": stamp(now), "session_key": randomHex(16),
			"token": token, "features": s.licences[d.ProductGUID+"\x00"+d.LicenseKey].Features, "control_options": opts}

	case "extend_session":
		var d tokenData
		if json.Unmarshal(payload, &d) != nil || d.Token == "" {
			return http.StatusBadRequest, failure(now, errMalformed.Error())
		}
		sess, ok := s.sessions[d.Token]
		if !ok || now.After(sess.lapses) {
			return http.StatusNotFound, failure(now, "unknown token")
		}
		if l := s.licences[sess.licence]; l == nil || l.Revoked {
			return http.StatusForbidden, failure(now, "license revoked")
		}
		sess.lapses = now.Add(s.session)
		return http.StatusOK, map[string]any{"status": 1, "time": stamp(now), "token": d.Token, "control_options": opts}

	case "end_session":
		var d tokenData
		if json.Unmarshal(payload, &d) != nil {
			return http.StatusUnprocessableEntity, failure(now, errMalformed.Error())
		}
		if _, ok := s.sessions[d.Token]; !ok {
			return http.StatusUnprocessableEntity, failure(now, "unknown token")
		}
		delete(s.sessions, d.Token)
		return http.StatusOK, map[string]any{"time": stamp(now)}
	}
	return http.StatusNotFound, failure(now, "unknown endpoint")
}

// scope names what a request proved for the replay cache: a licence that
// exists (register, begin) or a live session token (extend, end). It decodes
// the payload as dispatch does. Anything else gets the empty scope and is
// refused by dispatch without any change.
func (s *Server) scope(endpoint string, payload []byte) envelope.Scope {
	var d struct {
		ProductGUID string `json:"product_guid"`
		LicenseKey  string `json:"license_key"`
		Token       string `json:"token"`
	}
	if json.Unmarshal(payload, &d) != nil {
		return envelope.Scope{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch endpoint {
	case "register_instance", "begin_session":
		if s.licences[d.ProductGUID+"\x00"+d.LicenseKey] != nil {
			return envelope.Scope{Partition: "licence\x00" + d.ProductGUID + "\x00" + d.LicenseKey}
		}
	case "extend_session", "end_session":
		if _, ok := s.sessions[d.Token]; ok {
			return envelope.Scope{Partition: "session\x00" + d.Token}
		}
	}
	return envelope.Scope{}
}

// checkLicence returns a refusal for an unknown or revoked licence.
func (s *Server) checkLicence(now time.Time, product, key string) (int, *failureReply) {
	l := s.licences[product+"\x00"+key]
	switch {
	case l == nil:
		f := failure(now, "unknown license")
		return http.StatusForbidden, &f
	case l.Revoked:
		f := failure(now, "license revoked")
		return http.StatusForbidden, &f
	}
	return 0, nil
}

// Revoke marks a licence revoked; the next extend or begin is refused.
func (s *Server) Revoke(product, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.licences[product+"\x00"+key]; l != nil {
		l.Revoked = true
	}
}

// LiveSessions returns the number of sessions that have not been ended.
func (s *Server) LiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
