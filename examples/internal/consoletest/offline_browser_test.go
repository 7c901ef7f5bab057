package consoletest_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/admin"
)

// airGap is the network of an offline machine.
type airGap struct{}

func (airGap) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("offline machine: no network")
}

// TestConsoleOfflineInBrowser drives the console's offline activation page
// in headless Chromium: a real client on a machine without a network writes
// its request file, the page uploads it and the browser downloads the reply
// file, which activates the client. A new machine carries two files
// (register, then begin), so the page is used twice. With CI set it fails
// when no browser is installed; otherwise it skips.
func TestConsoleOfflineInBrowser(t *testing.T) {
	browserPath := findBrowser()
	if browserPath == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and no Chromium was found: install it (apt-get install -y chromium) or set LICENSETEST_BROWSER")
		}
		t.Skip("no Chromium found (install chromium or set LICENSETEST_BROWSER)")
	}
	t.Parallel()

	s := licensetest.NewServer(nil)
	defer s.Close()
	require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: "K-OFFLINE-1", Seats: 1,
		SessionDuration: 90 * 24 * time.Hour, GracePeriod: 14 * 24 * time.Hour, Features: "pro"}))
	adm := admin.NewHandler(s, admin.Options{})
	hs := httptest.NewUnstartedServer(adm)
	licensetest.DefaultTimeouts().Apply(hs.Config)
	hs.Start()
	defer hs.Close()
	defer adm.Close()

	// The offline machine.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := license.New(license.Config{
		ServerURL: s.URL, APIKey: s.Info().APIKey, ServerPublicKey: s.Info().PublicKey.EncodeBase64(),
		ProductGUID: product, LicenseKey: "K-OFFLINE-1", StateDir: t.TempDir(),
	},
		license.WithFingerprintSource(func(context.Context) (*fingerprint.Fingerprint, error) { return scenarioFingerprint(), nil }),
		license.WithRoundTripper(airGap{}),
		license.WithRetry(license.Retry{Attempts: 1}),
	)
	require.NoError(t, err)
	defer c.Close(context.Background()) //nolint:errcheck // offline: Close cannot end the session

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	errs := &consoleErrors{}
	consoleDone := make(chan struct{})
	messages := chromedp.Console(bctx)
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				errs.add("%s", m.String())
			}
		}
	}()
	defer func() {
		_ = chromedp.Cancel(bctx)
		<-consoleDone
	}()

	// Open the console with its token, then follow the link to the
	// offline activation page.
	downloads := t.TempDir()
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(adm.ConsoleURL(hs.URL)),
		chromedp.Click(css("#offline-link")),
		chromedp.WaitVisible(css("#offline-file")),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true),
			})
			return err
		}),
	))
	location, err := chromedp.Run(bctx, chromedp.Location())
	require.NoError(t, err)
	assert.Equal(t, hs.URL+"/admin/offline", location)

	files := t.TempDir()
	for trip := 1; ; trip++ {
		// The offline machine writes its request file; a person uploads it.
		var req bytes.Buffer
		require.NoError(t, c.OfflineRequest(ctx, &req))
		reqPath := filepath.Join(files, "request.txt")
		require.NoError(t, os.WriteFile(reqPath, req.Bytes(), 0o600))
		require.NoError(t, chromedp.Do(bctx,
			chromedp.SetUploadFiles(css("#offline-file"), []string{reqPath}),
			chromedp.Click(css("#offline-submit")),
			chromedp.WaitVisible(css("#offline-download")),
		))
		assert.Contains(t, text(t, bctx, "#offline-status"), "Answered request.txt")
		assert.Contains(t, text(t, bctx, "#offline-summary"), " 200")

		// And downloads the reply file.
		progress := chromedp.Events(bctx, browser.DownloadProgress)
		require.NoError(t, chromedp.Do(bctx, chromedp.Click(css("#offline-download"))))
		var guid string
		for ev, err := range progress {
			require.NoError(t, err)
			if ev.State == browser.DownloadProgressStateCompleted {
				guid = ev.GUID
				break
			}
		}
		reply, err := os.ReadFile(filepath.Join(downloads, guid))
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(reply, []byte("licensekit offline reply\n")), "%s", reply)

		// Back on the offline machine.
		more, err := c.ActivateOffline(ctx, bytes.NewReader(reply))
		require.NoError(t, err, "trip %d", trip)
		if !more {
			break
		}
		require.Less(t, trip, 2, "a new machine carries two files")
	}
	assert.Equal(t, license.Active, c.Status().State)
	assert.True(t, c.HasFeature("pro"))
	assert.Equal(t, 1, s.SeatsInUse(product, "K-OFFLINE-1"))

	assert.Empty(t, errs.all(), "the offline page logged errors")

	// A file that is not a request file: the page says so (the browser
	// logs the 400 it got).
	bad := filepath.Join(files, "notes.txt")
	require.NoError(t, os.WriteFile(bad, []byte("hello"), 0o600))
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SetUploadFiles(css("#offline-file"), []string{bad}),
		chromedp.Click(css("#offline-submit")),
	))
	assert.Contains(t, text(t, bctx, "#offline-status.bad-text"), "not a licensekit offline request file")
}
