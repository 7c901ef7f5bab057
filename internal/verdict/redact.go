package verdict

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/licensekit/licensekit-go/internal/text"
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
	// minRun is the shortest run of a secret's characters removed wherever
	// it appears, whatever its case and separators; docs/security.md
	// ("Errors and logs") says why 8, and why a shorter secret is removed
	// only as typed (and escaped).
	minRun = 8
	// minPayload is the shortest request value removed.
	minPayload = 8
	// maxLive is how many live values (tokens, session keys) are always
	// remembered, in case a server echoes an old one. Up to liveSlack more
	// are kept between trims, so that AddLive extends the derived tables in
	// place (a few hundred nanoseconds) instead of rebuilding them (tens of
	// microseconds, on every begin and extend).
	maxLive   = 64
	liveSlack = 16
)

// Redactor removes the client's secrets from text that came from the
// network. It knows the fixed secrets given to NewRedactor and AddSecret
// (API key, licence key, shared secret) and the live values added with
// AddLive (the last few tokens and session keys). It is safe for concurrent
// use; the zero value removes nothing until values are added.
//
// A secret is removed in its exact, JSON-escaped and URL-escaped forms and,
// when its normalised form (ASCII letters and digits, lower-cased) has at
// least 8 characters, wherever a run of 8 or more of its normalised
// characters appears in the text's normalised form (docs/security.md,
// "Errors and logs", lists the echoes this catches). The cost is about one
// bitmap test per letter or digit; a text holding no secret is returned as
// it is, without allocating.
type Redactor struct {
	mu    sync.RWMutex
	fixed []string // the fixed secrets, and each printed form of a binary one
	live  []string // the last maxLive to maxLive+liveSlack live values, oldest first
	// Derived by rebuild from fixed and live, and extended in place by
	// AddLive; stale means they lack a change AddLive made, and the next
	// Redact rebuilds them first.
	short []string // forms of values too short for runs, longest first
	runs  runSet   // the 8-character windows of the others
	stale bool
}

// NewRedactor returns a Redactor that removes each secret.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.addFixed(s)
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
		r.addFixed(s)
	}
	r.rebuild()
}

func (r *Redactor) addFixed(s string) {
	if len(s) >= minSecret && !slices.Contains(r.fixed, s) {
		r.fixed = append(r.fixed, s)
	}
}

// AddLive adds values the server issued (a token, a session key). At least
// the last 64 are kept, so that a rotated token stays hidden.
func (r *Redactor) AddLive(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range values {
		if len(s) < minSecret || slices.Contains(r.live, s) {
			continue
		}
		r.live = append(r.live, s)
		// A long value extends the windows in place when they have room;
		// anything else leaves them to be rebuilt, by the next Redact
		// (rarely needed: most calls succeed and redact nothing).
		r.stale = r.stale || !long(s) || !r.runs.add(s)
	}
	if over := len(r.live) - maxLive; over > liveSlack {
		r.live = slices.Delete(r.live, 0, over)
		r.stale = true
	}
}

// appendForms appends s and its escaped forms; s is never shorter than
// minSecret (addFixed and AddLive drop such values).
func appendForms(out []string, s string) []string {
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

// normalise appends s's ASCII letters and digits, lower-cased, to out.
func normalise(out []byte, s string) []byte {
	for i := range len(s) {
		if c := foldTable[s[i]]; c != 0 {
			out = append(out, c)
		}
	}
	return out
}

// foldTable maps each ASCII letter or digit to its lower case, and every
// other byte to 0. It is never written after initialisation.
var foldTable = func() (t [256]byte) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			t[c] = byte(c)
		case 'A' <= c && c <= 'Z':
			t[c] = byte(c + 'a' - 'A')
		}
	}
	return t
}()

func (r *Redactor) rebuild() {
	var short []string
	var norm []byte // the long values normalised, each followed by a space
	for _, s := range slices.Concat(r.fixed, r.live) {
		if !long(s) {
			short = appendForms(short, s)
			continue
		}
		norm = append(normalise(norm, s), ' ')
	}
	// Longest first, so that a secret containing another is hidden whole.
	slices.SortStableFunc(short, func(a, b string) int { return len(b) - len(a) })
	r.short = slices.Clip(slices.Compact(short))
	r.runs = newRunSet(norm)
	r.stale = false
}

// rlockFresh read-locks r, its derived tables rebuilt first if stale.
func (r *Redactor) rlockFresh() {
	r.mu.RLock()
	for r.stale {
		r.mu.RUnlock()
		r.mu.Lock()
		if r.stale {
			r.rebuild()
		}
		r.mu.Unlock()
		r.mu.RLock()
	}
}

// long reports whether s has at least minRun letters and digits, and so
// windows.
func long(s string) bool {
	n := 0
	for i := 0; i < len(s) && n < minRun; i++ {
		if foldTable[s[i]] != 0 {
			n++
		}
	}
	return n >= minRun
}

// Redact returns s with every known secret, and every extra value of at
// least 8 bytes, replaced by "[redacted]". A nil Redactor removes only the
// extras (exactly as given).
func (r *Redactor) Redact(s string, extra ...string) string {
	if s == "" {
		return s
	}
	extra = slices.Clone(extra)
	slices.SortFunc(extra, func(a, b string) int { return len(b) - len(a) })
	for _, x := range extra {
		if len(x) >= minPayload {
			s = strings.ReplaceAll(s, x, Redacted)
		}
	}
	if r == nil {
		return s
	}
	r.rlockFresh()
	defer r.mu.RUnlock()
	s = r.redactRuns(s)
	for _, x := range r.short {
		s = strings.ReplaceAll(s, x, Redacted)
	}
	return s
}

// redactRuns removes the secrets long enough to have windows: first as
// they are, so that one marker replaces a whole value (base64 padding and
// all), then every remaining run of their windows. (A value that contains
// another may so get two markers; its windows still remove all of it.)
func (r *Redactor) redactRuns(s string) string {
	if !r.runs.find(s, nil) {
		return s
	}
	for _, vals := range [][]string{r.fixed, r.live} {
		for _, x := range vals {
			if long(x) {
				s = strings.ReplaceAll(s, x, Redacted)
			}
		}
	}
	var spans [][2]int
	r.runs.find(s, &spans)
	if len(spans) == 0 {
		return s
	}
	// One pass, linear in the text however many spans it has: a reply that
	// echoes a secret thousands of times costs no more than its length.
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for _, sp := range spans {
		b.WriteString(s[at:sp[0]])
		b.WriteString(Redacted)
		at = sp[1]
	}
	b.WriteString(s[at:])
	return b.String()
}

// runSet finds the 8-character windows of normalised secrets in a text.
// A window is 8 letters or digits packed in a uint64. A Bloom filter of the
// secrets' windows (16 bits and two hashes per window: about 1.5 % of other
// windows pass) turns most windows away; one that passes is confirmed by
// searching the normalised secrets. Memory is about 3 bytes per character
// of secret.
type runSet struct {
	norm []byte   // the normalised secrets, each followed by a space
	bits []uint64 // the Bloom filter
	n    uint64   // its size in bits
	room int      // windows add may still set without raising the false-positive rate
}

func newRunSet(norm []byte) runSet {
	windows := 0
	for f := range bytes.FieldsSeq(norm) {
		windows += len(f) - minRun + 1
	}
	if windows == 0 {
		return runSet{}
	}
	// Room for twice the windows (and at least 1024), so that add can
	// extend the set in place until the next trim of the live values.
	words := (2*16*max(windows, 512) + 63) / 64
	set := runSet{norm: norm, bits: make([]uint64, words), n: uint64(words * 64), room: 2*max(windows, 512) - windows}
	for f := range bytes.FieldsSeq(norm) {
		set.mark(f)
	}
	return set
}

// mark sets the filter bits of the windows of f, one normalised secret.
func (set *runSet) mark(f []byte) {
	var w uint64
	for i, c := range f {
		w = w<<8 | uint64(c)
		if i >= minRun-1 {
			a, b := set.index(w)
			set.bits[a/64] |= 1 << (a % 64)
			set.bits[b/64] |= 1 << (b % 64)
		}
	}
}

// add extends the set with the long value s in place and reports whether
// it had room; if not, the set is unchanged and must be rebuilt.
func (set *runSet) add(s string) bool {
	start := len(set.norm)
	norm := normalise(set.norm, s)
	windows := len(norm) - start - minRun + 1
	if set.n == 0 || windows > set.room {
		return false // what normalise wrote lies past len(set.norm): unused
	}
	set.norm = append(norm, ' ')
	set.room -= windows
	set.mark(set.norm[start : len(set.norm)-1])
	return true
}

// index returns a window's two bit positions.
func (set *runSet) index(w uint64) (uint64, uint64) {
	h1 := (w * 0x9e3779b97f4a7c15) >> 32
	h2 := ((w ^ w>>29) * 0xbf58476d1ce4e5b9) >> 32
	return h1 * set.n >> 32, h2 * set.n >> 32
}

func (set *runSet) has(w uint64) bool {
	a, b := set.index(w)
	if set.bits[a/64]&(1<<(a%64)) == 0 || set.bits[b/64]&(1<<(b%64)) == 0 {
		return false
	}
	var win [minRun]byte
	binary.BigEndian.PutUint64(win[:], w)
	return bytes.Contains(set.norm, win[:])
}

// find reports whether s holds a run of a secret. With spans non-nil it
// sets them to the byte ranges of s to replace, in order and disjoint: each
// from the first to the last character of a run of windows. It reads s as
// it is and, when s holds an escape, again with \u00XX and %XX escapes
// decoded.
func (set *runSet) find(s string, spans *[][2]int) bool {
	if len(set.norm) == 0 {
		return false
	}
	found := set.scan(s, false, spans)
	if (found && spans == nil) || (!strings.Contains(s, `\u00`) && !strings.Contains(s, "%")) {
		return found
	}
	if spans == nil { // a yes or no: the scan stops at the first run found
		return set.scan(s, true, nil)
	}
	var decoded [][2]int
	if !set.scan(s, true, &decoded) {
		return found
	}
	*spans = mergeSpans(*spans, decoded)
	return true
}

// scan is one pass of find; decode reads a \u00XX or %XX escape as the
// byte it encodes.
func (set *runSet) scan(s string, decode bool, spans *[][2]int) bool {
	var (
		w      uint64
		starts [minRun]int // where each of the last minRun characters began
		n      uint        // characters seen
		found  bool
	)
	for i := 0; i < len(s); i++ {
		start, c := i, s[i]
		if decode {
			switch {
			case c == '\\' && i+5 < len(s) && s[i+1] == 'u' && s[i+2] == '0' && s[i+3] == '0':
				if v, err := strconv.ParseUint(s[i+4:i+6], 16, 8); err == nil {
					c, i = byte(v), i+5
				}
			case c == '%' && i+2 < len(s):
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					c, i = byte(v), i+2
				}
			}
		}
		c = foldTable[c]
		if c == 0 {
			continue
		}
		w = w<<8 | uint64(c)
		starts[n%minRun] = start
		n++
		if n < minRun || !set.has(w) {
			continue
		}
		found = true
		if spans == nil {
			return true
		}
		from := starts[n%minRun] // the window's first character
		if k := len(*spans); k > 0 && (*spans)[k-1][1] >= from {
			(*spans)[k-1][1] = i + 1
		} else {
			*spans = append(*spans, [2]int{from, i + 1})
		}
	}
	return found
}

// mergeSpans merges two ordered lists of disjoint spans into one.
func mergeSpans(a, b [][2]int) [][2]int {
	all := append(slices.Clone(a), b...)
	slices.SortFunc(all, func(x, y [2]int) int { return x[0] - y[0] })
	out := all[:0]
	for _, sp := range all {
		if k := len(out); k > 0 && out[k-1][1] >= sp[0] {
			out[k-1][1] = max(out[k-1][1], sp[1])
			continue
		}
		out = append(out, sp)
	}
	return out
}

// Text redacts s, then makes it one printable line of at most n bytes
// (text.Clean). Redaction comes first, so a cut can never leave a piece of
// a secret the redactor would not have recognised.
func (r *Redactor) Text(s string, n int, extra ...string) string {
	return text.Clean(r.Redact(s, extra...), n)
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
