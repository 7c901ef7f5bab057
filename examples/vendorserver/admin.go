package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// AdminTokenEnv is the environment variable that holds the admin token, for
// the server and for the command line alike. It is the better place for it:
// a -admin-token flag shows in the process list.
const AdminTokenEnv = "VENDORSERVER_ADMIN_TOKEN"

// minTokenLen is the shortest admin token accepted.
const minTokenLen = 16

// The admin API. Every request needs "Authorization: Bearer <token>".
//
//	GET  /admin/licences                       every licence, with its live sessions
//	POST /admin/licences                       issue: {"product","key","features","seats","session"}
//	POST /admin/licences/set                   change: {"product","key"} and any of features, seats, session
//	POST /admin/licences/revoke                {"product","key"}
//	POST /admin/licences/reinstate             {"product","key"}
//	GET  /admin/sessions                       the live sessions
//	GET  /admin/instances                      the registered instances
//	POST /admin/free                           end one instance's sessions: {"instance"}
//	GET  /admin/offline                        the offline activation upload page (no token: it holds no data)
//	POST /admin/offline/exchange               body: a carried request file; reply: the reply file
//
// session is a Go duration ("10m"); seats 0 means no limit.

// licenceJSON is a licence on the admin API.
type licenceJSON struct {
	Product      string  `json:"product"`
	Key          string  `json:"key"`
	Features     *string `json:"features,omitempty"`
	Seats        *int    `json:"seats,omitempty"`
	Session      string  `json:"session,omitempty"`
	Revoked      bool    `json:"revoked,omitempty"`
	LiveSessions int     `json:"live_sessions,omitempty"`
}

type freeJSON struct {
	Instance string `json:"instance"`
	Ended    int    `json:"ended"`
}

// NewAdmin returns the admin API's handler. Requests without the token get
// 401; the token is compared in constant time and never logged. A nil
// log logs nothing.
func NewAdmin(store *Store, token string, now func() time.Time, log *slog.Logger) http.Handler {
	return newAdmin(store, token, now, log, nil)
}

// newAdmin is NewAdmin, with the offline activation routes when srv is set
// (Server.AdminHandler).
func newAdmin(store *Store, token string, now func() time.Time, log *slog.Logger, srv *Server) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &admin{store: store, now: now, log: log, srv: srv}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/licences", a.licences)
	mux.HandleFunc("POST /admin/licences", a.issue)
	mux.HandleFunc("POST /admin/licences/{op}", a.change)
	mux.HandleFunc("GET /admin/sessions", a.sessions)
	mux.HandleFunc("GET /admin/instances", a.instances)
	mux.HandleFunc("POST /admin/free", a.free)
	if srv != nil {
		mux.HandleFunc("POST /admin/offline/exchange", a.exchange)
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv != nil && servesOfflinePage(r) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
			_, _ = io.WriteString(w, offlinePage)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got)) // equal lengths, so the compare is constant-time
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vendorserver admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token missing or wrong"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type admin struct {
	store *Store
	now   func() time.Time
	log   *slog.Logger
	srv   *Server // nil: no offline activation routes
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	out, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(out, '\n'))
}

// fail answers err with its status: 404 no licence, 409 issued, 400 bad
// value, else 500 (logged; database errors carry no secret).
func (a *admin) fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNoLicence):
		status = http.StatusNotFound
	case errors.Is(err, ErrIssued):
		status = http.StatusConflict
	case errors.Is(err, ErrBadValue):
		status = http.StatusBadRequest
	default:
		a.log.Error("admin request failed", "error", err)
		err = errors.New("internal error")
	}
	writeJSON(w, status, map[string]string{"error": strings.TrimPrefix(err.Error(), "vendorserver: ")})
}

// read decodes a bounded JSON body into a T; when it cannot, it answers
// 400 and ok is false.
func read[T any](a *admin, w http.ResponseWriter, r *http.Request) (v T, ok bool) {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		a.fail(w, fmt.Errorf("%w: body: %v", ErrBadValue, err))
		return v, false
	}
	return v, true
}

// answer writes v, or fails with err.
func (a *admin) answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func parseSession(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("%w: session %q: want a duration of at least 1s, such as 10m", ErrBadValue, s)
	}
	return d, nil
}

func (a *admin) licences(w http.ResponseWriter, r *http.Request) {
	ls, err := a.store.Licences(r.Context(), a.now())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]licenceJSON, len(ls))
	for i, l := range ls {
		out[i] = licenceJSON{Product: l.ProductGUID, Key: l.Key, Features: &l.Features, Seats: &l.Seats,
			Session: l.Session.String(), Revoked: l.Revoked, LiveSessions: l.LiveSessions}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *admin) issue(w http.ResponseWriter, r *http.Request) {
	in, ok := read[licenceJSON](a, w, r)
	if !ok {
		return
	}
	l := Licence{ProductGUID: in.Product, Key: in.Key}
	if in.Features != nil {
		l.Features = *in.Features
	}
	if in.Seats != nil {
		l.Seats = *in.Seats
	}
	if in.Session != "" {
		d, err := parseSession(in.Session)
		if err != nil {
			a.fail(w, err)
			return
		}
		l.Session = d
	}
	if err := a.store.Issue(r.Context(), l, a.now()); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"issued": l.ProductGUID})
}

func (a *admin) change(w http.ResponseWriter, r *http.Request) {
	in, ok := read[licenceJSON](a, w, r)
	if !ok {
		return
	}
	var c Change
	yes, no := true, false
	switch op := r.PathValue("op"); op {
	case "revoke":
		c.Revoked = &yes
	case "reinstate":
		c.Revoked = &no
	case "set":
		c.Features, c.Seats = in.Features, in.Seats
		if in.Session != "" {
			d, err := parseSession(in.Session)
			if err != nil {
				a.fail(w, err)
				return
			}
			c.Session = &d
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err := a.store.Set(r.Context(), in.Product, in.Key, c); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{r.PathValue("op"): in.Product})
}

func (a *admin) sessions(w http.ResponseWriter, r *http.Request) {
	s, err := a.store.Sessions(r.Context(), a.now())
	a.answer(w, s, err)
}

func (a *admin) instances(w http.ResponseWriter, r *http.Request) {
	in, err := a.store.Instances(r.Context())
	a.answer(w, in, err)
}

func (a *admin) free(w http.ResponseWriter, r *http.Request) {
	in, ok := read[freeJSON](a, w, r)
	if !ok {
		return
	}
	if in.Instance == "" {
		a.fail(w, fmt.Errorf("%w: want an instance guid", ErrBadValue))
		return
	}
	n, err := a.store.FreeSeat(r.Context(), in.Instance)
	a.answer(w, freeJSON{Instance: in.Instance, Ended: n}, err)
}
