package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/testhome"
	"github.com/licensekit/licensekit-go/license"
)

// childEnv, set to 1, makes the test binary run the command instead of the
// tests, with the arguments after the binary's name (startProcess).
const childEnv = "VENDORSERVER_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(testhome.M(m))
}

const (
	apiKey     = "ak_test_vendor"
	adminToken = "test-admin-token-0123456789"
)

var lic = Licence{ProductGUID: "my-product", Key: "ABCD-1234", Features: "pro,export"}

// recorder keeps the raw request and reply bodies, to check what went over
// the wire and to replay requests.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	path, request, reply string
	status               int
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		r.mu.Lock()
		r.requests = append(r.requests, recorded{req.URL.Path, string(body), rec.Body.String(), rec.Code})
		r.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

func (r *recorder) replies() []string {
	var out []string
	for _, x := range r.all() {
		out = append(out, x.reply)
	}
	return out
}

// openStore opens a store in path (a new one in a temporary directory when
// path is empty), closed at the end of the test.
func openStore(t *testing.T, path string) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "vendorserver.db")
	}
	st, err := OpenStore(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// serveWith runs a vendor server for opener and store on loopback.
func serveWith(t *testing.T, opener envelope.Opener, st *Store) (*Server, string, *recorder) {
	t.Helper()
	s := NewServer(opener, []string{apiKey}, st)
	rec := &recorder{}
	ts := httptest.NewServer(rec.wrap(s))
	t.Cleanup(ts.Close)
	return s, ts.URL + "/api/v2", rec
}

// serveLic runs a vendor server for opener, with lic issued, on loopback.
func serveLic(t *testing.T, opener envelope.Opener) (*Server, string, *recorder) {
	t.Helper()
	st := openStore(t, "")
	require.NoError(t, st.Issue(context.Background(), lic, time.Now()))
	return serveWith(t, opener, st)
}

// liveSessions returns the number of sessions not ended or lapsed.
func liveSessions(t *testing.T, s *Server) int {
	t.Helper()
	ss, err := s.store.Sessions(context.Background(), time.Now())
	require.NoError(t, err)
	return len(ss)
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
				srv, url, rec := serveLic(t, opener)
				c, err := license.New(config(url, priv.Public(), sealed))
				require.NoError(t, err)
				ctx := context.Background()
				require.NoError(t, c.Start(ctx))
				assert.Equal(t, license.Active, c.Status().State)
				assert.True(t, c.HasFeature("pro"))
				assert.True(t, c.HasFeature("export"))
				require.NoError(t, c.ExtendSession(ctx))
				assert.Equal(t, 1, liveSessions(t, srv))
				require.NoError(t, c.Close(ctx))
				assert.Equal(t, 0, liveSessions(t, srv), "Close ended the session on the vendor server")

				bodies := rec.replies()
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
	srv, url, _ := serveLic(t, opener)
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
		yes := true
		require.NoError(t, srv.store.Set(ctx, lic.ProductGUID, lic.Key, Change{Revoked: &yes}))
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
	srv, url, _ := serveLic(t, envelope.MultiOpener(newOpener, oldOpener))
	ctx := context.Background()
	for _, k := range []*envelope.PrivateKey{oldKey, newKey} {
		c, err := license.New(config(url, k.Public(), true))
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx), "client of key %s", k.KeyID())
		require.NoError(t, c.Close(ctx))
	}
	assert.Equal(t, 0, liveSessions(t, srv))
}

// TestCommand runs the command as a user would, briefly.
func TestCommand(t *testing.T) {
	priv, _ := newKey(t, envelope.KEMX25519)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "server.key")
	db := filepath.Join(dir, "vendorserver.db")
	require.NoError(t, os.WriteFile(keyFile, priv.EncodePEM(), 0o600))
	t.Setenv(AdminTokenEnv, adminToken)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-key-file", keyFile,
		"-db", db, "-api-key", apiKey, "-license", "app:K-1:pro", "-for", "300ms"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	assert.Contains(t, out.String(), "at http://127.0.0.1:")
	assert.Contains(t, out.String(), "admin API at http://127.0.0.1:")
	assert.Contains(t, out.String(), "1 licences")
	assert.Contains(t, out.String(), priv.Public().EncodeBase64())
	assert.Contains(t, out.String(), "stopped")
	assert.NotContains(t, out.String(), "PRIVATE")
	assert.NotContains(t, out.String()+errOut.String(), adminToken, "the admin token is never printed")

	for _, args := range [][]string{
		{"-api-key", apiKey, "-db", db, "-key-file", ""},
		{"-key-file", keyFile, "-db", db},
		{"-key-file", keyFile, "-db", db, "-api-key", apiKey, "-license", "nokey"},
		{"-key-file", keyFile, "-db", db, "-api-key", apiKey, "-admin-token", "short"},
		{"nosuchcommand"},
		{"revoke", "-admin", "http://127.0.0.1:1", "-product", "p", "-key", "k", "extra"},
	} {
		err := run(context.Background(), args, &out, &errOut)
		assert.Error(t, err, "run %s", strings.Join(args, " "))
	}

	t.Setenv(AdminTokenEnv, "")
	err = run(context.Background(), []string{"-key-file", keyFile, "-db", db, "-api-key", apiKey}, &out, &errOut)
	assert.ErrorContains(t, err, AdminTokenEnv, "no admin API without a token")
	err = run(context.Background(), []string{"licences", "-admin", "http://127.0.0.1:1"}, &out, &errOut)
	assert.ErrorContains(t, err, AdminTokenEnv)
}
