package verdict

import (
	"slices"
	"strings"
	"unicode"
)

// Kind is what a refusal means, beyond "no". The spec's error is free text,
// so the kind comes from rules on that text that a vendor can replace.
type Kind uint8

// The refusal kinds.
const (
	// KindOther is a refusal no rule recognised. It still matches ErrRefused.
	KindOther Kind = iota
	// KindRevoked matches ErrRevoked.
	KindRevoked
	// KindSeatLimit matches ErrSeatLimit.
	KindSeatLimit
	// KindExpired matches ErrExpired.
	KindExpired
	// KindUnknownInstance matches ErrUnknownInstance. On begin_session the
	// client registers again, once, before it accepts the refusal.
	KindUnknownInstance
)

var kindNames = [...]string{"other", "revoked", "seat limit", "expired", "unknown instance"}

// String returns the kind's name, such as "seat limit".
func (k Kind) String() string { return enumName(kindNames[:], k, "Kind") }

// Final reports whether a refusal of this kind is the licence's final
// verdict, saved so that it outlives a restart and grants no offline time
// until the server says otherwise. Every kind is final but KindSeatLimit,
// the capacity kind: the licence is good but its seats are taken now, which
// changes as other sessions end, and which anyone who can burn a seat (the
// network path dropping a reply) can bring about. A capacity refusal refuses
// the call and saves nothing: the next start asks again. A vendor maps its
// own capacity wordings to KindSeatLimit with its rules.
func (k Kind) Final() bool { return k != KindSeatLimit }

var kindSentinels = [...]error{KindRevoked: ErrRevoked, KindSeatLimit: ErrSeatLimit, KindExpired: ErrExpired,
	KindUnknownInstance: ErrUnknownInstance}

// Rule maps refusal texts to a Kind. Phrase matches whole words, in order,
// ignoring case and punctuation: "seat limit" matches "Seat-limit reached"
// and "seat limit: 3 of 3", but not "seatlimit" or "loveseat limits".
type Rule struct {
	// Kind is the kind a match gives.
	Kind Kind
	// Endpoint restricts the rule to one v2 endpoint; "" applies it to all.
	Endpoint string
	// Phrase is one or more words.
	Phrase string
}

// Rules is an ordered table of refusal rules: the first match wins, no
// match is KindOther.
type Rules []Rule

// Classify returns the kind of a refusal of endpoint with text msg.
func (r Rules) Classify(endpoint, msg string) Kind {
	words := Words(msg)
	for _, rule := range r {
		if (rule.Endpoint == "" || rule.Endpoint == endpoint) && containsPhrase(words, Words(rule.Phrase)) {
			return rule.Kind
		}
	}
	return KindOther
}

// DefaultRules returns a fresh copy of the default table: the common
// English wordings, listed at license.DefaultRefusalRules.
func DefaultRules() Rules {
	var r Rules
	add := func(k Kind, phrases ...string) {
		for _, p := range phrases {
			r = append(r, Rule{Kind: k, Phrase: p})
		}
	}
	add(KindRevoked, "revoked", "revocation")
	add(KindSeatLimit, "seat limit", "seats in use", "no seats", "no free seats",
		"all seats", "too many seats", "too many sessions", "session limit")
	for _, l := range []string{"license", "licence"} {
		add(KindExpired, l+" expired", l+" has expired", l+" is expired", "expired "+l)
	}
	add(KindUnknownInstance, "unknown instance", "instance not found", "no such instance", "instance unknown")
	return r
}

// Words splits s into lower-case words of letters and digits; everything
// else separates words.
func Words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// containsPhrase reports whether phrase occurs in words as a contiguous run.
// An empty phrase never matches.
func containsPhrase(words, phrase []string) bool {
	for i := 0; len(phrase) > 0 && i+len(phrase) <= len(words); i++ {
		if slices.Equal(words[i:i+len(phrase)], phrase) {
			return true
		}
	}
	return false
}
