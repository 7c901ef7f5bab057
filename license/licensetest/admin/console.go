package admin

import (
	"embed"
	"net/http"
	"path"
)

// consoleFiles are the console's page, script and style sheet: plain files,
// no build step, nothing fetched from elsewhere.
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP keeps the console to its own origin.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (a *Handler) serveConsole(w http.ResponseWriter, _ *http.Request) {
	a.serveFile(w, "index.html", "text/html; charset=utf-8")
}

func (a *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	switch path.Ext(name) {
	case ".js":
		a.serveFile(w, name, "text/javascript; charset=utf-8")
	case ".css":
		a.serveFile(w, name, "text/css; charset=utf-8")
	default:
		writeJSON(w, http.StatusNotFound, errorReply("licensetest admin: no such file"))
	}
}

func (a *Handler) serveFile(w http.ResponseWriter, name, ct string) {
	b, err := consoleFiles.ReadFile("console/" + name)
	if err != nil {
		writeJSON(w, http.StatusNotFound, errorReply("licensetest admin: no such file"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", consoleCSP)
	_, _ = w.Write(b)
}
