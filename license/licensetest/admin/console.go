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

func (a *Handler) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { serveFile(w, name, "text/html; charset=utf-8") }
}

var assetTypes = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

func (a *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	serveFile(w, name, assetTypes[path.Ext(name)])
}

// serveFile serves a file of the console, or 404 when ct is "".
func serveFile(w http.ResponseWriter, name, ct string) {
	b, err := consoleFiles.ReadFile("console/" + name)
	if err != nil || ct == "" {
		writeJSON(w, http.StatusNotFound, adminReply{Error: "licensetest admin: no such file"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", consoleCSP)
	_, _ = w.Write(b)
}
