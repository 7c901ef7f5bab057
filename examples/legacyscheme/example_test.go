package legacyscheme_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/examples/legacyscheme"
	"github.com/licensekit/licensekit-go/license"
)

// newLegacyClient is the client side of docs/server.md, section 6, as the
// page prints it.
func newLegacyClient(serverURL string, publicKeyPEM []byte, licenseKey string) (*license.Client, error) {
	pub, err := legacyscheme.ParsePublicKey(publicKeyPEM) // the server's RSA "PUBLIC KEY" block
	if err != nil {
		return nil, err
	}
	sealer, err := legacyscheme.NewSealer(pub)
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
	opener, err := legacyscheme.NewOpener(priv)
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

// Example runs a licence lifecycle through the scheme: the client above
// against the handler above.
func Example() {
	priv, err := legacyscheme.ParsePrivateKey(mustRead("testdata/server-rsa.key"))
	if err != nil {
		log.Fatal(err)
	}
	licences := newDocServer(priv) // only its licence logic (act) is used here
	srv := httptest.NewServer(newLegacyHandler(priv, licences.act, licences.scope))
	defer srv.Close()

	client, err := newLegacyClient(srv.URL+"/api/v2", mustRead("testdata/server-rsa.pub"), "K-1")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(client.Status().State, "pro:", client.HasFeature("pro"))
	if err := client.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(client.Status().State, "sessions left:", licences.liveSessions())
	// Output:
	// Active pro: true
	// Ended sessions left: 0
}

func mustRead(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		log.Fatal(err)
	}
	return b
}
