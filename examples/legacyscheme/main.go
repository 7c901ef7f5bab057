// Command legacyscheme shows how to keep an existing licence server's own
// encryption: package scheme (in the scheme directory) is an RSA-OAEP
// envelope scheme, and this program wires it into both sides. The product
// side is newLegacyClient (license.WithSealer); the server side is
// newLegacyHandler (scheme.Opener with envelope.Guard). It makes an RSA key
// pair as the vendor would, serves the scheme on loopback with a stand-in
// for the vendor's licence logic (one licence, K-1, feature "pro"), and runs
// one licence lifecycle through it:
//
//	go run ./examples/legacyscheme
//
// The byte-level description of the scheme, for a server in any language,
// is in docs/server.md, section 6.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/examples/legacyscheme/scheme"
	"github.com/licensekit/licensekit-go/license"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "legacyscheme:", err)
		os.Exit(1)
	}
}

// run makes the server's key pair, serves the scheme on loopback and runs a
// licence lifecycle through it, printing the state after Start and after
// Close.
func run(ctx context.Context, w io.Writer) error {
	priv, err := rsa.GenerateKey(rand.Reader, scheme.MinRSABits)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return err
	}
	publicKeyPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}) // built into the product
	lic := newLicences()
	srv := httptest.NewServer(newLegacyHandler(priv, lic.act, lic.scope))
	defer srv.Close()

	client, err := newLegacyClient(srv.URL+"/api/v2", publicKeyPEM, licenceKey)
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		_ = client.Close(ctx)
		return err
	}
	fmt.Fprintln(w, client.Status().State, "pro:", client.HasFeature("pro"))
	if err := client.Close(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, client.Status().State, "sessions left:", lic.liveSessions())
	return nil
}

// newLegacyClient is the client side of docs/server.md, section 6, as the
// page prints it.
func newLegacyClient(serverURL string, publicKeyPEM []byte, licenseKey string) (*license.Client, error) {
	pub, err := scheme.ParsePublicKey(publicKeyPEM) // the server's RSA "PUBLIC KEY" block
	if err != nil {
		return nil, err
	}
	sealer, err := scheme.NewSealer(pub)
	if err != nil {
		return nil, err
	}
	return license.New(license.Config{
		ServerURL:   serverURL,
		APIKey:      "my-product", // required by New; this scheme sends the wrapped key as "key" instead
		ProductGUID: "my-product",
		LicenseKey:  licenseKey,
	}, license.WithSealer(sealer)) // its replies are authenticated, so the secure default holds
}

// newLegacyHandler is the server side of docs/server.md, section 6, as the
// page prints it: open with the RSA private key, check freshness and replay
// with an envelope.Guard, act, and seal every answer, refusals included.
// act stands in for the vendor's licence logic; scope names the licence or
// session a request proved, so that only those take room in the Guard.
func newLegacyHandler(priv *rsa.PrivateKey, act func(endpoint string, payload []byte) (int, []byte),
	scope func(endpoint string, payload []byte) envelope.Scope) http.Handler {
	opener, err := scheme.NewOpener(priv)
	if err != nil {
		log.Fatal(err)
	}
	guard := envelope.NewGuard(envelope.GuardConfig{}) // 5 min behind, 30 s ahead; up to 65,536 request ids
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint, _ := strings.CutPrefix(r.URL.Path, "/api/v2/")
		var req struct{ Key, Data string }
		if json.NewDecoder(io.LimitReader(r.Body, envelope.MaxDataSize+64<<10)).Decode(&req) != nil {
			http.Error(w, "malformed request", http.StatusBadRequest)
			return
		}
		write := func(status int, body []byte) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}
		opened, err := opener.Open(envelope.Incoming{Key: req.Key, Data: req.Data, Endpoint: endpoint})
		if err != nil { // unreadable: a plain rejection, never a licence verdict
			write(envelope.RejectionReply(err, time.Now()))
			return
		}
		ticket, cached, err := guard.Admit(opened, req.Data, time.Now(), scope(endpoint, opened.Plaintext))
		switch {
		case err != nil: // stale timestamp or reused request id
			write(envelope.RejectionReply(err, time.Now()))
			return
		case cached != nil: // a retry of a request already answered
			write(cached.Status, cached.Body)
			return
		}
		status, answer := act(endpoint, opened.Plaintext)
		sealed, err := opened.Reply.SealReply(answer)
		if err != nil {
			ticket.Forget()
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		ticket.Done(status, sealed)
		write(status, sealed)
	})
}

// licenceKey is the one licence the stand-in licence logic grants.
const licenceKey = "K-1"

// licences stands in for the vendor's licence logic: the least that lets a
// client run a lifecycle, one licence and sessions in a map. Its answers
// are plain JSON; the handler seals them.
type licences struct {
	mu        sync.Mutex
	revoked   bool
	sessions  map[string]bool
	processed map[string]int // requests acted on, by endpoint
}

func newLicences() *licences {
	return &licences{sessions: map[string]bool{}, processed: map[string]int{}}
}

// act answers one opened request.
func (s *licences) act(endpoint string, payload []byte) (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status, answer := s.dispatch(endpoint, payload)
	out, _ := json.Marshal(answer)
	return status, out
}

func (s *licences) dispatch(endpoint string, payload []byte) (int, map[string]any) {
	s.processed[endpoint]++
	now := time.Now().UTC().Format(time.RFC3339)
	refuse := func(status int, msg string) (int, map[string]any) {
		return status, map[string]any{"success": false, "time": now, "error": msg}
	}
	opts := map[string]int{"session_duration": 600, "validation_grace_period": 3600}
	var p struct {
		LicenseKey string `json:"license_key"`
		Token      string `json:"token"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return refuse(http.StatusBadRequest, "bad payload")
	}
	switch endpoint {
	case "register_instance", "begin_session":
		if p.LicenseKey != licenceKey {
			return refuse(http.StatusNotFound, "unknown license")
		}
	}
	switch endpoint {
	case "register_instance":
		if s.revoked {
			return refuse(http.StatusForbidden, "license revoked")
		}
		return http.StatusOK, map[string]any{"success": true, "time": now, "guid": "inst-1", "control_options": opts}
	case "begin_session":
		if s.revoked {
			return refuse(http.StatusForbidden, "license revoked")
		}
		tok := rand.Text()
		s.sessions[tok] = true
		return http.StatusOK, map[string]any{"status": 1, "time": now, "token": tok, "session_key": "sk",
			"features": "pro", "control_options": opts}
	case "extend_session":
		if s.revoked {
			return refuse(http.StatusForbidden, "license revoked")
		}
		if !s.sessions[p.Token] {
			return refuse(http.StatusNotFound, "no such session")
		}
		return http.StatusOK, map[string]any{"status": 1, "time": now, "token": p.Token, "control_options": opts}
	case "end_session":
		if !s.sessions[p.Token] {
			return refuse(http.StatusUnprocessableEntity, "no such session")
		}
		delete(s.sessions, p.Token)
		return http.StatusOK, map[string]any{"time": now}
	}
	return refuse(http.StatusNotFound, "no such endpoint")
}

// proves reports whether payload names the licence (register, begin) or a
// live session (extend, end). The caller holds mu.
func (s *licences) proves(endpoint string, payload []byte) bool {
	var p struct {
		LicenseKey string `json:"license_key"`
		Token      string `json:"token"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return false
	}
	if endpoint == "register_instance" || endpoint == "begin_session" {
		return p.LicenseKey == licenceKey
	}
	return s.sessions[p.Token]
}

// scope is what a request proves, in the terms of envelope.Guard: the
// licence, or the live session's token.
func (s *licences) scope(endpoint string, payload []byte) envelope.Scope {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.proves(endpoint, payload) {
		return envelope.Scope{}
	}
	if endpoint == "register_instance" || endpoint == "begin_session" {
		return envelope.Scope{Partition: "licence " + licenceKey}
	}
	var p struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(payload, &p)
	return envelope.Scope{Partition: "session " + p.Token}
}

func (s *licences) count(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.processed[endpoint]
}

func (s *licences) liveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
