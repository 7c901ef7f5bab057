package envelope_test

import (
	"fmt"
	"log"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
)

// A server generates a key pair once and ships the public key in its product.
// The client seals each request; only the server can open it.
func Example() {
	// Server, once: generate and keep the private key; publish the public key.
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	if err != nil {
		log.Fatal(err)
	}
	published := priv.Public().EncodeBase64()

	// Client: parse the built-in public key and seal a request.
	pub, err := envelope.ParsePublicKey([]byte(published))
	if err != nil {
		log.Fatal(err)
	}
	sealer, err := envelope.NewSealer(pub)
	if err != nil {
		log.Fatal(err)
	}
	req := envelope.Request{APIKey: "ak_live_123", Endpoint: "register_instance"}
	sealed, err := sealer.Seal(req, []byte(`{"license_key":"LK-1"}`))
	if err != nil {
		log.Fatal(err)
	}
	// The request body is {"key": sealed.Key, "data": sealed.Data}.

	// Server: open the request's data field, as posted to its endpoint.
	opener, err := envelope.NewOpener(priv)
	if err != nil {
		log.Fatal(err)
	}
	opened, err := opener.Open(envelope.Incoming{Key: sealed.Key, Data: sealed.Data, Endpoint: "register_instance"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(opened.Plaintext))

	// The same envelope posted to another endpoint does not open.
	_, err = opener.Open(envelope.Incoming{Key: sealed.Key, Data: sealed.Data, Endpoint: "begin_session"})
	fmt.Println(err)
	// Output:
	// {"license_key":"LK-1"}
	// envelope: open: sealed for another endpoint
}

// With sealed replies the server's answer is encrypted and authenticated, and
// bound to the one request it answers. The client rejects anything else.
func ExampleWithSealedReplies() {
	priv, err := envelope.GenerateKey(envelope.KEMMLKEM768X25519)
	if err != nil {
		log.Fatal(err)
	}
	sealer, err := envelope.NewSealer(priv.Public(), envelope.WithSealedReplies())
	if err != nil {
		log.Fatal(err)
	}
	opener, err := envelope.NewOpener(priv)
	if err != nil {
		log.Fatal(err)
	}

	// Client seals; it keeps sealed.Reply for this request's answer.
	sealed, err := sealer.Seal(envelope.Request{APIKey: "ak_live_123", Endpoint: "extend_session"}, []byte(`{"token":"t1"}`))
	if err != nil {
		log.Fatal(err)
	}
	reply := sealed.Reply
	fmt.Println("replies authenticated:", sealer.RepliesAuthenticated())

	// Server opens and seals its answer.
	opened, err := opener.Open(envelope.Incoming{Key: sealed.Key, Data: sealed.Data, Endpoint: "extend_session"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sealed reply requested:", opened.Reply.Requested())
	body, err := opened.Reply.SealReply([]byte(`{"success":true}`))
	if err != nil {
		log.Fatal(err)
	}

	// Client opens the HTTP body.
	answer, err := reply.OpenReply(body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(answer))

	// A plain (unsealed) answer is refused.
	_, err = reply.OpenReply([]byte(`{"success":true}`))
	fmt.Println(err)
	// Output:
	// replies authenticated: true
	// sealed reply requested: true
	// {"success":true}
	// envelope: open reply: reply is not sealed
}

// Shared-secret mode uses AES-256-GCM with a key derived from a secret both
// sides hold.
func ExampleNewSharedSecretSealer() {
	secret, err := envelope.GenerateSecret()
	if err != nil {
		log.Fatal(err)
	}
	sealer, err := envelope.NewSharedSecretSealer(secret)
	if err != nil {
		log.Fatal(err)
	}
	opener, err := envelope.NewSharedSecretOpener(secret)
	if err != nil {
		log.Fatal(err)
	}
	sealed, err := sealer.Seal(envelope.Request{APIKey: "ak_live_123", Endpoint: "extend_session"}, []byte(`{"token":"t1"}`))
	if err != nil {
		log.Fatal(err)
	}
	opened, err := opener.Open(envelope.Incoming{Key: sealed.Key, Data: sealed.Data, Endpoint: "extend_session"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(opened.Plaintext))

	// The API key is authenticated: data cannot be replayed under another one.
	_, err = opener.Open(envelope.Incoming{Key: "ak_live_456", Data: sealed.Data, Endpoint: "extend_session"})
	fmt.Println(err)
	// Output:
	// {"token":"t1"}
	// envelope: open: authentication failed
}

// During key rotation a server opens requests sealed to the old and the new
// key.
func ExampleMultiOpener() {
	oldKey, _ := envelope.GenerateKey(envelope.KEMX25519)
	newKey, _ := envelope.GenerateKey(envelope.KEMMLKEM768X25519)
	oldOpener, _ := envelope.NewOpener(oldKey)
	newOpener, _ := envelope.NewOpener(newKey)
	opener := envelope.MultiOpener(newOpener, oldOpener)

	for _, k := range []*envelope.PrivateKey{oldKey, newKey} {
		sealer, _ := envelope.NewSealer(k.Public())
		req := envelope.Request{APIKey: "ak_live_123", Endpoint: "begin_session"}
		sealed, _ := sealer.Seal(req, []byte("hello "+k.KEM().String()))
		opened, err := opener.Open(envelope.Incoming{Key: sealed.Key, Data: sealed.Data, Endpoint: "begin_session"})
		fmt.Println(string(opened.Plaintext), err)
	}
	// Output:
	// hello DHKEM(X25519, HKDF-SHA256) <nil>
	// hello MLKEM768-X25519 <nil>
}

// A server checks freshness after Open: a Guard rejects stale timestamps and
// answers a repeated request id with the stored reply instead of processing
// it twice. The server names what the request proved (here: the licence it
// names exists) so that only such requests take room in the Guard.
func ExampleGuard() {
	secret, _ := envelope.GenerateSecret()
	sealer, _ := envelope.NewSharedSecretSealer(secret)
	opener, _ := envelope.NewSharedSecretOpener(secret)
	guard := envelope.NewGuard(envelope.GuardConfig{}) // 5 minutes behind, 30 s ahead
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

	sealed, _ := sealer.Seal(envelope.Request{APIKey: "ak", Endpoint: "begin_session", Time: now}, []byte(`{}`))
	in := envelope.Incoming{Key: sealed.Key, Data: sealed.Data, Endpoint: "begin_session"}
	for _, at := range []time.Time{now, now.Add(time.Second), now.Add(10 * time.Minute)} {
		opened, err := opener.Open(in)
		if err != nil {
			log.Fatal(err)
		}
		ticket, cached, err := guard.Admit(opened, in.Data, at, envelope.Scope{Partition: "licence K-1"})
		switch {
		case ticket != nil:
			fmt.Println("new request: process it")
			ticket.Done(200, []byte(`{"token":"t1"}`))
		case cached != nil:
			fmt.Println("repeat: send the stored reply", string(cached.Body))
		default:
			status, body := envelope.RejectionReply(err, at)
			fmt.Println(status, string(body))
		}
	}
	// Output:
	// new request: process it
	// repeat: send the stored reply {"token":"t1"}
	// 401 {"success":false,"time":"2026-01-01T12:10:00Z","error":"envelope: timestamp outside the accepted window","envelope_error":"stale_timestamp"}
}
