package envelope_test

import (
	"fmt"
	"log"

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
	data, _, err := sealer.Seal("ak_live_123", []byte(`{"license_key":"LK-1"}`))
	if err != nil {
		log.Fatal(err)
	}

	// Server: open the request's data field.
	opener, err := envelope.NewOpener(priv)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, _, err := opener.Open("ak_live_123", data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plaintext))
	// Output: {"license_key":"LK-1"}
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

	// Client seals; it keeps reply for this request's answer.
	data, reply, err := sealer.Seal("ak_live_123", []byte(`{"token":"t1"}`))
	if err != nil {
		log.Fatal(err)
	}

	// Server opens and seals its answer.
	_, replySealer, err := opener.Open("ak_live_123", data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sealed reply requested:", replySealer.Requested())
	body, err := replySealer.SealReply([]byte(`{"success":true}`))
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
	data, _, err := sealer.Seal("ak_live_123", []byte(`{"token":"t1"}`))
	if err != nil {
		log.Fatal(err)
	}
	plaintext, _, err := opener.Open("ak_live_123", data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plaintext))

	// The API key is authenticated: data cannot be replayed under another one.
	_, _, err = opener.Open("ak_live_456", data)
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
		data, _, _ := sealer.Seal("ak_live_123", []byte("hello "+k.KEM().String()))
		plaintext, _, err := opener.Open("ak_live_123", data)
		fmt.Println(string(plaintext), err)
	}
	// Output:
	// hello DHKEM(X25519, HKDF-SHA256) <nil>
	// hello MLKEM768-X25519 <nil>
}
