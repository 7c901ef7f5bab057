package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/examples/internal/browsertest"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/license"
)

// TestOfflinePageInBrowser drives the offline activation page in headless
// Chromium as a vendor's operator would: a real vendor server on loopback
// with its SQLite file, an air-gapped client writing its request files, the
// operator entering the admin token, choosing each file and submitting, and
// the downloaded reply file activating the client (register, then begin).
// A request from a machine of another vendor (sealed to another key) and a
// tampered request are refused on the page with a message, and change
// nothing in the database. With CI set it fails when no browser is
// installed; otherwise it skips.
func TestOfflinePageInBrowser(t *testing.T) {
	browserPath := browsertest.Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	priv, opener := newKey(t, envelope.KEMX25519)
	st := openStore(t, "")
	require.NoError(t, st.Issue(ctx, Licence{ProductGUID: lic.ProductGUID, Key: lic.Key, Features: "pro", Seats: 1}, time.Now()))
	srv, url, _ := serveWith(t, opener, st)
	adm := httptest.NewServer(srv.AdminHandler(adminToken))
	t.Cleanup(adm.Close)

	offlineClient := func(pub *envelope.PublicKey) *license.Client {
		cfg := config(url, pub, true)
		cfg.StateDir = t.TempDir()
		c, err := license.New(cfg, license.WithRoundTripper(testkit.AirGap{}), license.WithRetry(license.Retry{Attempts: 1}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	files := t.TempDir()
	requestFile := func(c *license.Client, name string, edit func([]byte) []byte) string {
		var b bytes.Buffer
		require.NoError(t, c.OfflineRequest(ctx, &b))
		p := filepath.Join(files, name)
		require.NoError(t, os.WriteFile(p, edit(b.Bytes()), 0o600))
		return p
	}
	same := func(b []byte) []byte { return b }

	bctx, errs, stop := browsertest.Start(t, ctx, browserPath)
	defer stop()
	downloads := t.TempDir()
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(adm.URL+"/admin/offline"),
		browsertest.AllowDownloads(downloads),
		chromedp.SetValue(chromedp.CSS("#token"), adminToken),
	))
	// submit uploads the file at path and returns what the page then says.
	submit := func(path string) string {
		t.Helper()
		require.NoError(t, chromedp.Do(bctx,
			chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path}),
			chromedp.Click(chromedp.CSS("#go")),
		))
		return browsertest.Text(t, bctx, "#msg:not(:empty)")
	}

	c := offlineClient(priv.Public())
	for trip := 1; ; trip++ {
		said := submit(requestFile(c, "request.txt", same))
		require.NotContains(t, said, "Not answered", "trip %d", trip)
		reply := browsertest.Download(t, bctx, downloads, "#msg a")
		more, err := c.ActivateOffline(ctx, bytes.NewReader(reply))
		require.NoError(t, err, "trip %d", trip)
		if !more {
			break
		}
		require.Less(t, trip, 2, "a new machine carries two files")
	}
	assert.True(t, c.Valid())
	assert.Equal(t, license.Active, c.Status().State)
	assert.True(t, c.HasFeature("pro"))
	assert.Empty(t, errs.All(), "the offline page logged errors")
	before, err := st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, before["instances"])
	assert.Equal(t, 1, before["sessions"])

	// Refused on the page, with a reason, and no reply file to download.
	other, _ := newKey(t, envelope.KEMX25519)
	foreign := requestFile(offlineClient(other.Public()), "foreign.txt", same)
	tampered := requestFile(offlineClient(priv.Public()), "tampered.txt", tamper)
	for _, path := range []string{foreign, tampered} {
		said := submit(path)
		t.Logf("%s: %s", filepath.Base(path), said)
		assert.Contains(t, said, "Not answered", filepath.Base(path))
		assert.Contains(t, said, "rejected", filepath.Base(path))
		links, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#msg a").length`))
		require.NoError(t, err)
		assert.Zero(t, links, "%s: the page offers a reply file", filepath.Base(path))
	}
	after, err := st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, before["instances"], after["instances"], "a refused request registered an instance")
	assert.Equal(t, before["sessions"], after["sessions"], "a refused request began a session")
}

// tamper changes one character in the middle of the sealed data of a
// request file, as a person editing the file (or a damaged copy) would.
func tamper(file []byte) []byte {
	lines := strings.Split(string(file), "\n")
	for i, l := range lines {
		if len(l) == 64 && !strings.ContainsAny(l, ":- ") {
			r := byte('A')
			if l[32] == 'A' {
				r = 'B'
			}
			lines[i] = l[:32] + string(r) + l[33:]
			return []byte(strings.Join(lines, "\n"))
		}
	}
	panic("tamper: no data line in the request file")
}
