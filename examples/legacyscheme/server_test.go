package main

// A licence server written from the description of the scheme in
// docs/server.md (section 6) with only the standard library: it does not
// call package legacyscheme or envelope, so the tests check the client
// against the description, not against the example's own server code.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// From docs/server.md, section 6.
const (
	docKeyLabel     = "legacyscheme v1 content key"
	docRequestLabel = "legacyscheme v1 request"
	docReplyLabel   = "legacyscheme v1 reply"
)

type seenRequest struct {
	digest [32]byte
	ts     int64 // the request's timestamp, to forget it once stale
	status int
	body   []byte
}

// docServer is the independent server, around the program's licence logic
// (licences, whose mu also guards docServer's own fields).
type docServer struct {
	*licences
	priv   *rsa.PrivateKey
	now    func() time.Time
	window time.Duration // behind the server's clock
	future time.Duration // ahead of it

	forgePlain bool                   // answer in plain JSON, as a fake server would
	seen       map[string]seenRequest // by hex request id

	rmu      sync.Mutex     // guards rejected: reject runs with or without mu held
	rejected map[string]int // envelope-level rejections, by code
}

func newDocServer(priv *rsa.PrivateKey) *docServer {
	return &docServer{licences: newLicences(), priv: priv, now: time.Now, window: 5 * time.Minute,
		future: 30 * time.Second, seen: map[string]seenRequest{}, rejected: map[string]int{}}
}

// reject writes an envelope-level rejection: never sealed.
func (s *docServer) reject(w http.ResponseWriter, status int, code string) {
	s.rmu.Lock()
	s.rejected[code]++
	s.rmu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "time": s.now().UTC().Format(time.RFC3339),
		"error": "request rejected: " + code, "envelope_error": code})
}

func (s *docServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, ok := strings.CutPrefix(r.URL.Path, "/api/v2/")
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	var in struct{ Key, Data string }
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil || json.Unmarshal(body, &in) != nil {
		s.reject(w, http.StatusBadRequest, "malformed")
		return
	}
	// 1. Unwrap the content key.
	wrapped, err := base64.StdEncoding.DecodeString(in.Key)
	if err != nil {
		s.reject(w, http.StatusBadRequest, "malformed")
		return
	}
	k, err := rsa.DecryptOAEP(sha256.New(), nil, s.priv, wrapped, []byte(docKeyLabel))
	if err != nil || len(k) != 32 {
		s.reject(w, http.StatusUnauthorized, "unauthentic")
		return
	}
	// 2. Open the data for the endpoint it was posted to.
	data, err := base64.StdEncoding.DecodeString(in.Data)
	if err != nil || len(data) < 25+12+16 {
		s.reject(w, http.StatusBadRequest, "malformed")
		return
	}
	if data[0] != 0x01 {
		s.reject(w, http.StatusBadRequest, "unsupported_version")
		return
	}
	aad := []byte(docRequestLabel + "\x00" + endpoint + "\x00")
	aad = append(aad, data[:25]...)
	block, _ := aes.NewCipher(k)
	gcm, _ := cipher.NewGCM(block)
	payload, err := gcm.Open(nil, data[25:37], data[37:], aad)
	if err != nil {
		s.reject(w, http.StatusUnauthorized, "unauthentic")
		return
	}
	// 3. Freshness: the timestamp window (whole seconds, both ends
	// included), then the request id.
	ts, now := int64(binary.BigEndian.Uint64(data[1:9])), s.now().Unix()
	if ts < now-int64(s.window/time.Second) || ts > now+int64(s.future/time.Second) {
		s.reject(w, http.StatusUnauthorized, "stale_timestamp")
		return
	}
	id := data[9:25]
	digest := sha256.Sum256([]byte(in.Data))
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.seen {
		if e.ts < now-int64(s.window/time.Second) {
			delete(s.seen, k)
		}
	}
	if prev, ok := s.seen[hex.EncodeToString(id)]; ok {
		if prev.digest != digest {
			s.reject(w, http.StatusUnauthorized, "replayed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(prev.status)
		_, _ = w.Write(prev.body)
		return
	}
	// 4. Act, then seal the answer under a key derived from the content key.
	// Only a request that proved a licence or a session is remembered: one
	// sealed by anyone else is refused without a change and takes no room.
	proven := s.proves(endpoint, payload)
	status, answer := s.dispatch(endpoint, payload)
	plain, _ := json.Marshal(answer)
	out := plain
	if !s.forgePlain {
		out = sealReply(k, id, endpoint, plain)
	}
	if proven {
		s.seen[hex.EncodeToString(id)] = seenRequest{digest: digest, ts: ts, status: status, body: out}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// sealReply follows the description: 0x81 ‖ response nonce ‖ AES-256-GCM
// under HKDF-SHA256(K, request id ‖ response nonce, label ‖ 0 ‖ endpoint).
func sealReply(k, id []byte, endpoint string, plain []byte) []byte {
	rn := make([]byte, 32)
	_, _ = rand.Read(rn)
	okm, _ := hkdf.Key(sha256.New, k, append(append([]byte{}, id...), rn...), docReplyLabel+"\x00"+endpoint, 44)
	block, _ := aes.NewCipher(okm[:32])
	gcm, _ := cipher.NewGCM(block)
	r := append([]byte{0x81}, rn...)
	r = gcm.Seal(r, okm[32:], plain, []byte{0x81})
	out, _ := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString(r)})
	return out
}

func (s *docServer) set(f func(*docServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *docServer) rejections(code string) int {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.rejected[code]
}

// handSeal builds a request from the description alone, with a chosen
// timestamp and request id, so that tests can make what the Sealer never
// does (the same id for two different requests).
func handSeal(pub *rsa.PublicKey, endpoint string, ts time.Time, id, payload []byte) (key, data string) {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, k, []byte(docKeyLabel))
	if err != nil {
		panic(err)
	}
	header := binary.BigEndian.AppendUint64([]byte{0x01}, uint64(ts.Unix()))
	header = append(header, id...)
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	block, _ := aes.NewCipher(k)
	gcm, _ := cipher.NewGCM(block)
	aad := append([]byte(docRequestLabel+"\x00"+endpoint+"\x00"), header...)
	raw := append(append(header, nonce...), gcm.Seal(nil, nonce, payload, aad)...)
	return base64.StdEncoding.EncodeToString(wrapped), base64.StdEncoding.EncodeToString(raw)
}
