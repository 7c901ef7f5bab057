package verdict

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Redacted replaces every secret the Redactor removes.
const Redacted = "[redacted]"

// Bounds of the texts the classifier keeps.
const (
	// MaxMessage bounds a refusal's message, in bytes.
	MaxMessage = 200
	// MaxExcerpt bounds an excerpt of a body or header, in bytes.
	MaxExcerpt = 80
	// minSecret is the shortest configured secret removed; shorter values
	// ("a", "ok") would mangle every text without protecting anything.
	minSecret = 4
	// minPayload is the shortest request value removed.
	minPayload = 8
	// maxLive bounds the remembered live values (tokens, session keys): a
	// long run hands out many, and an ended session's token is worthless,
	// but the last few dozen are kept in case a server echoes an old one.
	maxLive = 64
)

// Redactor removes the client's secrets from text that came from the
// network. It knows the fixed secrets given to NewRedactor and AddSecret
// (API key, licence key, shared secret) and the live values added with
// AddLive (the last few tokens and session keys). It is safe for concurrent
// use; the zero value removes nothing until values are added.
type Redactor struct {
	mu    sync.RWMutex
	fixed []string // forms of the fixed secrets
	live  []string // the last maxLive live values, oldest first
	// liveForms[i] are live[i]'s forms (appendForms), computed once when
	// the value is added rather than at every rebuild.
	liveForms [][]string
	all       []string // fixed and live forms, longest first
}

// NewRedactor returns a Redactor that removes each secret (in its plain,
// JSON-escaped and URL-escaped forms).
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.fixed = appendForms(r.fixed, s)
	}
	r.rebuild()
	return r
}

// AddSecret adds a binary secret in every form it might be printed in: raw,
// hex, and standard and URL base64, padded or not.
func (r *Redactor) AddSecret(b []byte) {
	if len(b) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range []string{
		string(b), hex.EncodeToString(b),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
	} {
		r.fixed = appendForms(r.fixed, s)
	}
	r.rebuild()
}

// AddLive adds a value the server issued (a token, a session key). The last
// few are kept, so that a rotated token stays hidden.
func (r *Redactor) AddLive(s string) {
	if len(s) < minSecret {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.live, s) {
		return
	}
	r.live = append(r.live, s)
	r.liveForms = append(r.liveForms, appendForms(nil, s))
	if over := len(r.live) - maxLive; over > 0 {
		r.live = slices.Delete(r.live, 0, over)
		r.liveForms = slices.Delete(r.liveForms, 0, over)
	}
	r.rebuild()
}

// appendForms appends s and its escaped forms, when long enough.
func appendForms(out []string, s string) []string {
	if len(s) < minSecret {
		return out
	}
	out = append(out, s)
	if q, err := json.Marshal(s); err == nil {
		if e := string(q[1 : len(q)-1]); e != s {
			out = append(out, e)
		}
	}
	if e := strings.ReplaceAll(s, "/", `\/`); e != s {
		out = append(out, e)
	}
	if e := url.QueryEscape(s); e != s {
		out = append(out, e)
	}
	return out
}

func (r *Redactor) rebuild() {
	all := make([]string, 0, len(r.fixed)+2*len(r.live))
	all = append(all, r.fixed...)
	for _, forms := range r.liveForms {
		all = append(all, forms...)
	}
	// Longest first, so that a secret containing another is hidden whole.
	slices.SortStableFunc(all, func(a, b string) int { return len(b) - len(a) })
	r.all = slices.Compact(all)
}

// Redact returns s with every known secret, and every extra value of at
// least 8 bytes, replaced by "[redacted]". A nil Redactor removes only the
// extras.
func (r *Redactor) Redact(s string, extra ...string) string {
	if s == "" {
		return s
	}
	if len(extra) > 0 {
		extra = slices.Clone(extra)
		slices.SortFunc(extra, func(a, b string) int { return len(b) - len(a) })
		for _, x := range extra {
			if len(x) >= minPayload {
				s = strings.ReplaceAll(s, x, Redacted)
			}
		}
	}
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, x := range r.all {
		s = strings.ReplaceAll(s, x, Redacted)
	}
	return s
}

// Text redacts s, then makes it one printable line of at most n bytes:
// control characters and invalid UTF-8 become spaces, runs of spaces
// collapse, and a longer text is cut on a rune boundary and ends in "…".
// Redaction comes first, so a cut can never expose part of a secret.
func (r *Redactor) Text(s string, n int, extra ...string) string {
	return Clean(r.Redact(s, extra...), n)
}

// Clean makes s one printable line of at most n bytes, as Text does, without
// redacting.
func Clean(s string, n int) string {
	var b strings.Builder
	pending := false
	for _, c := range s {
		if c == utf8.RuneError || unicode.IsControl(c) || unicode.IsSpace(c) {
			pending = b.Len() > 0
			continue
		}
		add := utf8.RuneLen(c)
		if pending {
			add++
		}
		if b.Len()+add > n {
			return truncate(b.String(), n) + "…"
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteRune(c)
	}
	return b.String()
}

// truncate leaves room for the ellipsis.
func truncate(s string, n int) string {
	limit := n - len("…")
	if limit < 0 {
		limit = 0
	}
	for len(s) > limit {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// PayloadValues returns the string values of at least 8 bytes in a JSON
// request payload, for Redact's extras: a server that echoes a request
// must not get its values into an error. Object keys are field names and
// are skipped; depth is bounded.
func PayloadValues(payload []byte) []string {
	var v any
	if json.Unmarshal(payload, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any, int)
	walk = func(v any, depth int) {
		if depth > 32 {
			return
		}
		switch x := v.(type) {
		case string:
			if len(x) >= minPayload {
				out = append(out, x)
			}
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		case map[string]any:
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	walk(v, 0)
	return out
}
