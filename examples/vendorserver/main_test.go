package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/license"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const apiKey = "ak_test_vendor"

var lic = Licence{ProductGUID: "my-product", Key: "ABCD-1234", Features: "pro,export"}

// recorder keeps the raw reply bodies, to check what went over the wire.
type recorder struct {
	mu     sync.Mutex
	bodies []string
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		r.mu.Lock()
		r.bodies = append(r.bodies, rec.Body.String())
		r.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// serve runs a vendor server for opener on loopback.
func serve(t *testing.T, opener envelope.Opener) (*Server, string, *recorder) {
	t.Helper()
	s := NewServer(opener, []string{apiKey}, []Licence{lic})
	rec := &recorder{}
	ts := httptest.NewServer(rec.wrap(s))
	t.Cleanup(ts.Close)
	return s, ts.URL + "/api/v2", rec
}

func newKey(t *testing.T, kem envelope.KEM) (*envelope.PrivateKey, envelope.Opener) {
	t.Helper()
	priv, err := envelope.GenerateKey(kem)
	require.NoError(t, err)
	opener, err := envelope.NewOpener(priv)
	require.NoError(t, err)
	return priv, opener
}

func config(url string, pub *envelope.PublicKey, sealed bool) license.Config {
	return license.Config{
		ServerURL:       url,
		APIKey:          apiKey,
		ServerPublicKey: pub.EncodeBase64(),
		ProductGUID:     lic.ProductGUID,
		LicenseKey:      lic.Key,
		// Sealed replies are the default; the plain case opts out loudly.
		InsecureUnsealedReplies: !sealed,
	}
}

// TestSDKClient runs the SDK's client through a whole lifecycle against the
// vendor server, with and without sealed replies, for both KEMs.
func TestSDKClient(t *testing.T) {
	for _, kem := range []envelope.KEM{envelope.KEMX25519, envelope.KEMMLKEM768X25519} {
		for _, sealed := range []bool{true, false} {
			t.Run(kem.String()+map[bool]string{true: " sealed", false: " plain"}[sealed], func(t *testing.T) {
				priv, opener := newKey(t, kem)
				srv, url, rec := serve(t, opener)
				c, err := license.New(config(url, priv.Public(), sealed))
				require.NoError(t, err)
				ctx := context.Background()
				require.NoError(t, c.Start(ctx))
				assert.Equal(t, license.Active, c.Status().State)
				assert.True(t, c.HasFeature("pro"))
				assert.True(t, c.HasFeature("export"))
				require.NoError(t, c.ExtendSession(ctx))
				assert.Equal(t, 1, srv.LiveSessions())
				require.NoError(t, c.Close(ctx))
				assert.Equal(t, 0, srv.LiveSessions(), "Close ended the session on the vendor server")

				bodies := rec.all()
				require.GreaterOrEqual(t, len(bodies), 4)
				for _, b := range bodies {
					var m map[string]any
					require.NoError(t, json.Unmarshal([]byte(b), &m))
					_, isSealed := m["data"]
					assert.Equal(t, sealed, isSealed && len(m) == 1, "reply %q sealed: want %v", b, sealed)
					if sealed {
						assert.NotContains(t, b, "token", "a sealed reply shows its fields")
					}
				}
			})
		}
	}
}

// TestRefusals: a revoked licence is the server's word (sealed), so the
// client is refused; a request the server cannot open gets a plain refusal,
// which a client that wants sealed replies must not take as the server's
// word.
func TestRefusals(t *testing.T) {
	priv, opener := newKey(t, envelope.KEMX25519)
	srv, url, _ := serve(t, opener)
	ctx := context.Background()

	t.Run("wrong public key", func(t *testing.T) {
		other, _ := newKey(t, envelope.KEMX25519)
		c, err := license.New(config(url, other.Public(), true), license.WithRetry(license.Retry{Attempts: 1}))
		require.NoError(t, err)
		err = c.Start(ctx)
		assert.ErrorIs(t, err, license.ErrUnreachable, "a plain 401 is not the licence server's word")
		assert.NotErrorIs(t, err, license.ErrRefused)
		_ = c.Close(ctx)
	})

	t.Run("revoked", func(t *testing.T) {
		srv.Revoke(lic.ProductGUID, lic.Key)
		c, err := license.New(config(url, priv.Public(), true))
		require.NoError(t, err)
		err = c.Start(ctx)
		assert.ErrorIs(t, err, license.ErrRefused)
		assert.ErrorIs(t, err, license.ErrRevoked)
		assert.NotErrorIs(t, err, license.ErrUnreachable)
		_ = c.Close(ctx)
	})
}

// TestKeyRotation serves clients of the old and the new key at once.
func TestKeyRotation(t *testing.T) {
	oldKey, oldOpener := newKey(t, envelope.KEMX25519)
	newKey, newOpener := newKey(t, envelope.KEMMLKEM768X25519)
	srv, url, _ := serve(t, envelope.MultiOpener(newOpener, oldOpener))
	ctx := context.Background()
	for _, k := range []*envelope.PrivateKey{oldKey, newKey} {
		c, err := license.New(config(url, k.Public(), true))
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx), "client of key %s", k.KeyID())
		require.NoError(t, c.Close(ctx))
	}
	assert.Equal(t, 0, srv.LiveSessions())
}

// TestCommand runs the command as a user would, briefly.
func TestCommand(t *testing.T) {
	priv, _ := newKey(t, envelope.KEMX25519)
	keyFile := filepath.Join(t.TempDir(), "server.key")
	require.NoError(t, os.WriteFile(keyFile, priv.EncodePEM(), 0o600))
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-key-file", keyFile, "-api-key", apiKey,
		"-license", "app:K-1:pro", "-for", "300ms"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	assert.Contains(t, out.String(), "at http://127.0.0.1:")
	assert.Contains(t, out.String(), priv.Public().EncodeBase64())
	assert.Contains(t, out.String(), "stopped")
	assert.NotContains(t, out.String(), "PRIVATE")

	for _, args := range [][]string{
		{"-api-key", apiKey},
		{"-key-file", keyFile},
		{"-key-file", keyFile, "-api-key", apiKey, "-license", "nokey"},
	} {
		err := run(context.Background(), args, &out, &errOut)
		assert.Error(t, err, "run %s", strings.Join(args, " "))
	}
}
