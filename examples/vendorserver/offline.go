package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/licensekit/licensekit-go/license"
)

// Offline activation (docs/offline-activation.md) on the vendor's side: a
// person uploads the request file an air-gapped machine wrote, the server
// answers each carried request through its own v2 handler, unchanged (the
// same checks, the same database, the same replay memory as any request),
// and the reply file goes back as a download.
//
//	GET  /admin/offline           the upload page (static; it asks for the admin token)
//	POST /admin/offline/exchange  body: the request file; reply: the reply file

// maxOfflineFile bounds an uploaded request file.
const maxOfflineFile = 256 << 10

// AdminHandler returns the admin API (NewAdmin) with the offline activation
// page and its exchange endpoint, which answer through s.
func (s *Server) AdminHandler(token string) http.Handler {
	return newAdmin(s.store, token, s.now, s.log, s)
}

// exchange posts each carried request of the uploaded file to the server's
// own v2 handler, in process, with the server's first API key (the file
// does not carry one), and writes the reply file.
func (a *admin) exchange(w http.ResponseWriter, r *http.Request) {
	text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfflineFile))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("the file is larger than %d bytes", maxOfflineFile)})
		return
	}
	var out bytes.Buffer
	cfg := license.ExchangeConfig{ServerURL: "http://vendorserver/api/v2", APIKey: a.srv.firstAPIKey(),
		HTTPClient: &http.Client{Transport: inProcess{a.srv}}}
	if err := license.ExchangeOffline(r.Context(), cfg, bytes.NewReader(text), &out); err != nil {
		var oe *license.OfflineError
		msg := "the request file could not be answered"
		if errors.As(err, &oe) {
			msg = oe.Reason
		}
		a.log.Info("offline exchange failed", "error", err) // offline errors carry no file content or secret
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
		return
	}
	a.log.Info("offline exchange answered", "bytes", out.Len())
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="licensekit-reply.txt"`)
	_, _ = w.Write(out.Bytes())
}

// firstAPIKey is an API key the server accepts, for requests it answers
// for a person (the carried file has none).
func (s *Server) firstAPIKey() string {
	for k := range s.apiKeys {
		return k
	}
	return ""
}

// inProcess is a RoundTripper that serves a request with the server's own
// handler, without a network.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// offlinePage is the upload page. It holds no data: it asks for the admin
// token and sends it only with the upload.
const offlinePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Offline activation · vendorserver</title>
<style>body{font:15px system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:1rem 0 .3rem}button{margin-top:1rem}#msg{margin-top:1rem}</style></head>
<body><h1>Offline activation</h1>
<p>Upload the request file an offline machine wrote; download the reply file and carry it back.</p>
<label for="token">Admin token</label><input id="token" type="password" autocomplete="off" size="40">
<label for="file">Request file</label><input id="file" type="file" accept=".txt,text/plain">
<div><button id="go">Answer the request</button></div><p id="msg" role="status"></p>
<script>
document.getElementById('go').onclick = async () => {
  const msg = document.getElementById('msg'); msg.textContent = '';
  const f = document.getElementById('file').files[0];
  if (!f) { msg.textContent = 'Choose a request file first.'; return; }
  const r = await fetch('/admin/offline/exchange', {method: 'POST', body: await f.text(),
    headers: {'Authorization': 'Bearer ' + document.getElementById('token').value, 'Content-Type': 'text/plain'}});
  if (!r.ok) { let e = r.statusText; try { e = (await r.json()).error; } catch (_) {} msg.textContent = 'Not answered: ' + e; return; }
  const a = document.createElement('a'); a.href = URL.createObjectURL(await r.blob());
  a.download = 'licensekit-reply.txt'; a.textContent = 'Download the reply file'; msg.replaceChildren(a);
};
</script></body></html>
`

// servesOfflinePage reports whether r asks for the static upload page,
// which needs no token (it has no data; the upload does).
func servesOfflinePage(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == "/admin/offline"
}
