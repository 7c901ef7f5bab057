package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/license"
)

// airGap is the network of a machine that never reaches the server.
type airGap struct{}

func (airGap) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("network is unreachable")
}

// TestOfflineActivationThroughAdmin is the vendor's side of the offline
// ceremony: an air-gapped machine's request files are uploaded to the admin
// endpoint, answered by the server's own v2 handler, and the reply files
// activate the machine (register, then begin). The same file uploaded again
// gets the same reply and takes no second seat, also after a restart and
// after the ordinary window: carried requests are remembered in the
// database for the carried window. The page needs no token, the upload
// does.
func TestOfflineActivationThroughAdmin(t *testing.T) {
	ctx := context.Background()
	priv, opener := newKey(t, envelope.KEMX25519)
	path := t.TempDir() + "/vendor.db"
	st := openStore(t, path)
	require.NoError(t, st.Issue(ctx, lic, time.Now()))
	srv, url, _ := serveWith(t, opener, st)
	adm := httptest.NewServer(srv.AdminHandler(adminToken))
	t.Cleanup(adm.Close)

	upload := func(adm *httptest.Server, file []byte, token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, adm.URL+"/admin/offline/exchange", bytes.NewReader(file))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	cfg := config(url, priv.Public(), true)
	cfg.StateDir = t.TempDir()
	c, err := license.New(cfg, license.WithRoundTripper(airGap{}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(ctx) })
	next := func() []byte {
		var b bytes.Buffer
		require.NoError(t, c.OfflineRequest(ctx, &b))
		return b.Bytes()
	}

	page, err := http.Get(adm.URL + "/admin/offline")
	require.NoError(t, err)
	pageBody, _ := io.ReadAll(page.Body)
	page.Body.Close()
	assert.Equal(t, http.StatusOK, page.StatusCode)
	assert.Contains(t, string(pageBody), "Request file")

	registerFile := next()
	code, _ := upload(adm, registerFile, "wrong-token-0123456789")
	assert.Equal(t, http.StatusUnauthorized, code, "the upload needs the admin token")
	code, reply := upload(adm, registerFile, adminToken)
	require.Equal(t, http.StatusOK, code, string(reply))
	more, err := c.ActivateOffline(ctx, bytes.NewReader(reply))
	require.NoError(t, err)
	require.True(t, more, "a new machine registers first")

	beginFile := next()
	code, beginReply := upload(adm, beginFile, adminToken)
	require.Equal(t, http.StatusOK, code, string(beginReply))
	more, err = c.ActivateOffline(ctx, bytes.NewReader(beginReply))
	require.NoError(t, err)
	require.False(t, more)
	require.True(t, c.Valid())
	require.Equal(t, 1, liveSessions(t, srv))

	// Later, after a restart and past the ordinary 5-minute window: the same
	// file is answered from the database, byte for byte, with no new seat.
	body := func(replyFile []byte) string {
		i := bytes.Index(replyFile, []byte("-----BEGIN"))
		require.Positive(t, i)
		return string(replyFile[i:])
	}
	srv2 := NewServer(opener, []string{apiKey}, openStore(t, path))
	srv2.now = func() time.Time { return time.Now().Add(20 * time.Minute) }
	adm2 := httptest.NewServer(srv2.AdminHandler(adminToken))
	t.Cleanup(adm2.Close)
	code, again := upload(adm2, beginFile, adminToken)
	require.Equal(t, http.StatusOK, code, string(again))
	assert.Equal(t, body(beginReply), body(again), "a carried request is answered once; a copy gets the stored reply")
	assert.Equal(t, 1, liveSessions(t, srv2))

	code, msg := upload(adm2, []byte("not a request file"), adminToken)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.True(t, strings.Contains(string(msg), "error"), string(msg))
}
