package consoletest_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/examples/internal/browsertest"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/testhome"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/admin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testhome.M(m))
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// waitState waits for the client to reach want.
func waitState(t *testing.T, c *license.Client, want license.State, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c.Status().State == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("client state = %s after %s; want %s", c.Status().State, within, want)
}

// startConsole starts a mock server holding lic and its admin handler on
// loopback; the test's cleanup stops them.
func startConsole(t *testing.T, lic licensetest.License) (*licensetest.Server, *admin.Handler, *httptest.Server) {
	t.Helper()
	s := licensetest.NewServer(nil)
	t.Cleanup(s.Close)
	require.NoError(t, s.AddLicense(lic))
	adm := admin.NewHandler(s, admin.Options{})
	hs := httptest.NewUnstartedServer(adm)
	licensetest.DefaultTimeouts().Apply(hs.Config)
	hs.Start()
	t.Cleanup(adm.Close)
	t.Cleanup(hs.Close)
	return s, adm, hs
}

// newClient is a real client of s for licence key, on the fixed machine of
// testkit.Fingerprint.
func newClient(t *testing.T, s *licensetest.Server, key string, opts ...license.Option) *license.Client {
	t.Helper()
	c, err := license.New(license.Config{
		ServerURL: s.URL, APIKey: s.Info().APIKey, ServerPublicKey: s.Info().PublicKey.EncodeBase64(),
		ProductGUID: product, LicenseKey: key, StateDir: t.TempDir(),
	}, append([]license.Option{license.WithFingerprintSource(
		func(context.Context) (*fingerprint.Fingerprint, error) { return testkit.Fingerprint(), nil })}, opts...)...)
	require.NoError(t, err)
	return c
}

// TestConsoleInBrowser drives the console in headless Chromium: it opens
// the console URL with the token, sees a real client's session appear,
// clicks "Down", sees the failed requests in the log while the client goes
// to Grace, clicks "Up" and sees the client return to Active. It saves a
// screenshot and checks that the page logged no error. With CI set it fails
// when no browser is installed; otherwise it skips.
//
// LICENSETEST_CONSOLE_SCREENSHOT=path also writes the screenshot there (the
// one in docs/ was made so).
func TestConsoleInBrowser(t *testing.T) {
	browser := browsertest.Need(t)
	t.Parallel()

	s, adm, hs := startConsole(t, licensetest.License{ProductGUID: product, Key: "K-1", Seats: 1,
		SessionDuration: 2 * time.Second, GracePeriod: 40 * time.Second, Features: "pro"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	bctx, errs, stop := browsertest.Start(t, ctx, browser)
	defer stop()

	// Open the console URL: the token goes into a cookie and out of the
	// address bar.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(adm.ConsoleURL(hs.URL)),
	))
	assert.Equal(t, "live", browsertest.Text(t, bctx, "#live.on"))
	location, err := chromedp.Run(bctx, chromedp.Location())
	require.NoError(t, err)
	assert.Equal(t, hs.URL+"/admin/", location)
	assert.NotContains(t, location, adm.Token())

	// A real client, over real loopback HTTP.
	c := newClient(t, s, "K-1",
		license.WithRetry(license.Retry{MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}))
	require.NoError(t, c.Start(ctx))
	defer func() { _ = c.Close(context.Background()) }()
	require.Equal(t, license.Active, c.Status().State)

	// The session appears in the console.
	sessionRow := browsertest.Text(t, bctx, "#sessions tbody tr")
	assert.Contains(t, sessionRow, c.Status().InstanceGUID[:8])
	assert.Equal(t, "1 / 1", browsertest.Text(t, bctx, "#licences tbody tr td:nth-child(4)"))

	// At 1280 px the live sessions table does not scroll sideways, and no
	// column is cut off by its container.
	type fitT struct {
		ScrollWidth, ClientWidth int
		Clipped                  []string
	}
	require.NoError(t, chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900)))
	fit, err := chromedp.Run(bctx, chromedp.Evaluate[fitT](`(() => {
		const box = document.querySelector("#sessions").closest(".scroll");
		const edge = box.getBoundingClientRect().right;
		const clipped = [...document.querySelectorAll("#sessions th, #sessions tbody tr:first-child td")]
			.filter((c) => c.getBoundingClientRect().right > edge + 0.5).map((c) => c.innerText);
		return {ScrollWidth: box.scrollWidth, ClientWidth: box.clientWidth, Clipped: clipped};
	})()`))
	require.NoError(t, err)
	assert.LessOrEqual(t, fit.ScrollWidth, fit.ClientWidth, "the live sessions table scrolls sideways at 1280 px")
	assert.Empty(t, fit.Clipped, "columns of the live sessions table are cut off at 1280 px")

	// Inputs hold no value that reads like a current setting: examples are
	// placeholders.
	type inputT struct{ ID, Value, Placeholder string }
	inputs, err := chromedp.Run(bctx, chromedp.Evaluate[[]inputT](`["lat-d", "skew-d", "ra-d", "ct-ct"].map((id) => {
		const e = document.getElementById(id);
		return {ID: id, Value: e.value, Placeholder: e.placeholder};
	})`))
	require.NoError(t, err)
	require.Len(t, inputs, 4)
	for _, in := range inputs {
		assert.Empty(t, in.Value, "#%s is pre-filled", in.ID)
		assert.NotEmpty(t, in.Placeholder, "#%s has no placeholder", in.ID)
	}

	// A fault set from its form shows at the top, above the fold at
	// 1280x900.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SetValue(css("#lat-d"), "2s"),
		chromedp.Click(css("#lat-d ~ button")),
	))
	assert.Contains(t, browsertest.Text(t, bctx, "#faults li.active"), "latency 2s")
	type whereT struct{ Top, Bottom, ScrollY float64 }
	where, err := chromedp.Run(bctx, chromedp.Evaluate[whereT](`(() => {
		const r = document.querySelector("#faults").getBoundingClientRect();
		return {Top: r.top, Bottom: r.bottom, ScrollY: window.scrollY};
	})()`))
	require.NoError(t, err)
	assert.Zero(t, where.ScrollY)
	assert.GreaterOrEqual(t, where.Top, 0.0)
	assert.LessOrEqual(t, where.Bottom, 900.0, "the faults in effect are below the fold at 1280x900")
	require.NoError(t, chromedp.Do(bctx, chromedp.Click(css("#clear-btn"))))
	assert.Equal(t, "none", browsertest.Text(t, bctx, "#faults li:not(.active)"))

	// Down (answer 503): the log shows failed requests and the client goes
	// to Grace.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SetValue(css("#down-mode"), "503"),
		chromedp.Click(css("#down-btn")),
	))
	assert.Equal(t, "down (503)", browsertest.Text(t, bctx, "#server-status.down"))
	assert.Equal(t, "curl -X POST -H 'Authorization: Bearer $TOKEN' '"+hs.URL+"/admin/down?mode=503'", browsertest.Text(t, bctx, "#down-form .curl"))
	waitState(t, c, license.Grace, 20*time.Second)
	failed := browsertest.Text(t, bctx, "#log tbody tr.bad")
	assert.Contains(t, failed, "503")
	assert.Contains(t, failed, "down (503)")

	// Up: the client returns to Active.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(css("#up-btn")),
	))
	assert.Equal(t, "up", browsertest.Text(t, bctx, "#server-status.up"))
	waitState(t, c, license.Active, 20*time.Second)

	// A scenario started from the console shows as a timeline with its
	// current step.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SetValue(css("#scenario-text"), "at 0s   latency 5ms endpoint=extend\nat 1h   revoke product="+product+" key=K-1\n"),
		chromedp.Click(css("#scenario-run")),
	))
	assert.Equal(t, "at 1h0m0srevoke product="+product+" key=K-1", browsertest.Text(t, bctx, "#timeline li.current"))
	assert.Contains(t, browsertest.Text(t, bctx, "#timeline li.done"), "latency 5ms endpoint=extend")
	require.NoError(t, chromedp.Do(bctx, chromedp.Sleep(600*time.Millisecond))) // one more live update

	// Readable without sideways scrolling at 1280x800 and in a narrow
	// window.
	noOverflow := "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
	fits, err := chromedp.Run(bctx, chromedp.Evaluate[bool](noOverflow))
	require.NoError(t, err)
	assert.True(t, fits, "the page scrolls sideways at 1280x800")

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "console.png")
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	if p := os.Getenv("LICENSETEST_CONSOLE_SCREENSHOT"); p != "" {
		require.NoError(t, os.WriteFile(p, shot, 0o644))
	}
	assert.Greater(t, len(shot), 10000, "a screenshot of the page")
	require.NoError(t, chromedp.Do(bctx, chromedp.EmulateViewport(400, 800), chromedp.Sleep(100*time.Millisecond)))
	fits, err = chromedp.Run(bctx, chromedp.Evaluate[bool](noOverflow))
	require.NoError(t, err)
	assert.True(t, fits, "the page scrolls sideways in a 400 px window")
	if p := os.Getenv("LICENSETEST_CONSOLE_SCREENSHOT_NARROW"); p != "" {
		narrow, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, narrow, 0o644))
	}
	assert.Empty(t, errs.All(), "the console page logged errors")
}

// product is a product GUID as long as a real one: a short name would hide
// a table too narrow for real data.
const product = "com.example.photo-editor-pro"

// TestConsoleOfflineInBrowser drives the console's offline activation page
// in headless Chromium: a real client on a machine without a network writes
// its request file, the page uploads it and the browser downloads the reply
// file, which activates the client. A new machine carries two files
// (register, then begin), so the page is used twice. With CI set it fails
// when no browser is installed; otherwise it skips.
func TestConsoleOfflineInBrowser(t *testing.T) {
	browserPath := browsertest.Need(t)
	t.Parallel()

	s, adm, hs := startConsole(t, licensetest.License{ProductGUID: product, Key: "K-OFFLINE-1", Seats: 1,
		SessionDuration: 90 * 24 * time.Hour, GracePeriod: 14 * 24 * time.Hour, Features: "pro"})

	// The offline machine.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t, s, "K-OFFLINE-1", license.WithRoundTripper(testkit.AirGap{}), license.WithRetry(license.Retry{Attempts: 1}))
	defer c.Close(context.Background()) //nolint:errcheck // offline: Close cannot end the session

	bctx, errs, stop := browsertest.Start(t, ctx, browserPath)
	defer stop()

	// Open the console with its token, then follow the link to the
	// offline activation page.
	downloads := t.TempDir()
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(adm.ConsoleURL(hs.URL)),
		chromedp.Click(css("#offline-link")),
		chromedp.WaitVisible(css("#offline-file")),
		browsertest.AllowDownloads(downloads),
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
		assert.Contains(t, browsertest.Text(t, bctx, "#offline-status"), "Answered request.txt")
		assert.Contains(t, browsertest.Text(t, bctx, "#offline-summary"), " 200")

		// And downloads the reply file.
		reply := browsertest.Download(t, bctx, downloads, "#offline-download")
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

	assert.Empty(t, errs.All(), "the offline page logged errors")

	// A file that is not a request file: the page says so (the browser
	// logs the 400 it got).
	bad := filepath.Join(files, "notes.txt")
	require.NoError(t, os.WriteFile(bad, []byte("hello"), 0o600))
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SetUploadFiles(css("#offline-file"), []string{bad}),
		chromedp.Click(css("#offline-submit")),
	))
	assert.Contains(t, browsertest.Text(t, bctx, "#offline-status.bad-text"), "not a licensekit offline request file")
}
