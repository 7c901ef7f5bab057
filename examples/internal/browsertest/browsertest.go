// Package browsertest starts a headless Chromium for the examples' browser
// tests (the mock server's console, the vendor server's offline page) and
// reads pages in it. A test calls Need first: with no browser installed it
// skips, or fails when CI is set.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// find returns the path of a Chromium or Chrome, or "". The
// LICENSETEST_BROWSER environment variable names one explicitly.
func find() string {
	if p := os.Getenv("LICENSETEST_BROWSER"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Need returns the path of the browser, or skips the test when there is
// none; with CI set it fails instead.
func Need(t *testing.T) string {
	t.Helper()
	path := find()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and no Chromium was found: install it (apt-get install -y chromium) or set LICENSETEST_BROWSER")
		}
		t.Skip("no Chromium found (install chromium or set LICENSETEST_BROWSER)")
	}
	return path
}

// Errors collects what a page reports as errors: uncaught exceptions,
// console.error calls and failed loads.
type Errors struct {
	mu   sync.Mutex
	msgs []string
}

func (c *Errors) add(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, fmt.Sprintf(format, args...))
}

// All returns the errors seen so far.
func (c *Errors) All() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// Start starts headless Chromium at path (from Need), 1280x900, under ctx,
// and collects the page's errors. The test defers stop, which closes the
// browser.
func Start(t *testing.T, ctx context.Context, path string) (bctx context.Context, errs *Errors, stop func()) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
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
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	errs = &Errors{}
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
	return bctx, errs, func() {
		_ = chromedp.Cancel(bctx)
		<-consoleDone
		cancelBrowser()
		cancelAlloc()
	}
}

// Text waits for an element that sel (CSS) matches and returns its visible
// text. It finds and reads the element in one step in the page, because a
// page that re-renders on every live update would make a node found by one
// command stale for the next.
func Text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? e.innerText : null; })()`, q)
	s, err := chromedp.Run(ctx, chromedp.Poll[string](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, sel)
	return s
}

// AllowDownloads makes the browser save downloads into dir, each under its
// download GUID, and report their progress (Download waits for it).
func AllowDownloads(dir string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
		})
		return err
	})
}

// Download clicks the element sel matches, waits for the download it
// starts to complete, and returns the file's content from dir (the
// directory given to AllowDownloads).
func Download(t *testing.T, bctx context.Context, dir, sel string) []byte {
	t.Helper()
	progress := chromedp.Events(bctx, browser.DownloadProgress)
	require.NoError(t, chromedp.Do(bctx, chromedp.Click(chromedp.CSS(sel))))
	var guid string
	for ev, err := range progress {
		require.NoError(t, err)
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	out, err := os.ReadFile(filepath.Join(dir, guid))
	require.NoError(t, err)
	return out
}
