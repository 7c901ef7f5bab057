package verdict_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/licensekit/licensekit-go/internal/verdict"
)

// mockTexts are the refusal texts of licensetest by default.
var mockTexts = map[string]verdict.Kind{
	"unknown license":                         verdict.KindOther,
	"license revoked":                         verdict.KindRevoked,
	"license expired":                         verdict.KindExpired,
	"unknown instance":                        verdict.KindUnknownInstance,
	"unknown token":                           verdict.KindOther,
	"session lapsed":                          verdict.KindOther,
	"seat limit reached: 3 of 3 seats in use": verdict.KindSeatLimit,
}

// vendorTexts is a second server that words everything otherwise, with the
// vendor's own rules for it.
var vendorTexts = map[string]verdict.Kind{
	"Your subscription was cancelled by the publisher.":     verdict.KindRevoked,
	"Term ended on 2025-06-30 - please renew":               verdict.KindExpired,
	"Maximum concurrent activations (5) exceeded":           verdict.KindSeatLimit,
	"Device not registered for this product":                verdict.KindUnknownInstance,
	"Activation token invalid":                              verdict.KindOther,
	"Bitte wenden Sie sich an den Support (Fehler E-4711).": verdict.KindOther,
}

var vendorRules = verdict.Rules{
	{Kind: verdict.KindRevoked, Phrase: "subscription was cancelled"},
	{Kind: verdict.KindExpired, Phrase: "term ended"},
	{Kind: verdict.KindSeatLimit, Phrase: "concurrent activations"},
	{Kind: verdict.KindUnknownInstance, Endpoint: "begin_session", Phrase: "device not registered"},
}

func TestDefaultRulesOnMockTexts(t *testing.T) {
	t.Parallel()
	rules := verdict.DefaultRules()
	for msg, want := range mockTexts {
		assert.Equal(t, want, rules.Classify("begin_session", msg), "DefaultRules().Classify(%q)", msg)
	}
}

func TestVendorRulesOnSecondTextSet(t *testing.T) {
	t.Parallel()
	defaults := verdict.DefaultRules()
	for msg, want := range vendorTexts {
		assert.Equal(t, want, vendorRules.Classify("begin_session", msg), "vendorRules.Classify(%q)", msg)
		// The defaults know none of these wordings: every one is a plain
		// refusal, never a wrong kind.
		assert.Equal(t, verdict.KindOther, defaults.Classify("begin_session", msg), "DefaultRules().Classify(%q)", msg)
	}
	// Endpoint-scoped rules apply only there.
	assert.Equal(t, verdict.KindOther, vendorRules.Classify("extend_session", "Device not registered for this product"))
	// The vendor's table knows nothing of the mock's texts.
	assert.Equal(t, verdict.KindOther, vendorRules.Classify("begin_session", "license revoked"))
}

// TestDefaultRulesWholeWords pins the whole-word, phrase semantics: the
// substring traps of the first release are gone.
func TestDefaultRulesWholeWords(t *testing.T) {
	t.Parallel()
	rules := verdict.DefaultRules()
	cases := map[string]verdict.Kind{
		"license expired; session not created":   verdict.KindExpired,
		"LICENCE HAS EXPIRED":                    verdict.KindExpired,
		"Your licence expired on 2025-01-01":     verdict.KindExpired,
		"session expired":                        verdict.KindOther,
		"token expired, begin a new session":     verdict.KindOther,
		"no seats for you?":                      verdict.KindSeatLimit,
		"No seats left on this licence":          verdict.KindSeatLimit,
		"seatbelt required":                      verdict.KindOther,
		"loveseat limits apply":                  verdict.KindOther,
		"Seat-limit reached":                     verdict.KindSeatLimit,
		"no free seats":                          verdict.KindSeatLimit,
		"too many sessions for this licence":     verdict.KindSeatLimit,
		"Licence REVOKED by vendor":              verdict.KindRevoked,
		"unrevoked licence required":             verdict.KindOther,
		"irrevocable: unknown license":           verdict.KindOther,
		"instance not found":                     verdict.KindUnknownInstance,
		"unknown instance-id 42":                 verdict.KindUnknownInstance,
		"":                                       verdict.KindOther,
		"revoked expired seat limit":             verdict.KindRevoked, // first rule wins
		"license\u00a0expired (non-breaking sp)": verdict.KindExpired,
	}
	for msg, want := range cases {
		assert.Equal(t, want, rules.Classify("begin_session", msg), "Classify(%q)", msg)
	}
}

func TestRulesEdgeCases(t *testing.T) {
	t.Parallel()
	var none verdict.Rules
	assert.Equal(t, verdict.KindOther, none.Classify("begin_session", "license revoked"))
	empty := verdict.Rules{{Kind: verdict.KindRevoked, Phrase: "  ,, "}}
	assert.Equal(t, verdict.KindOther, empty.Classify("begin_session", "anything"), "an empty phrase never matches")
	assert.Equal(t, []string{"seat", "limit", "3", "of", "3"}, verdict.Words("Seat-Limit: 3/of/3!"))
	a, b := verdict.DefaultRules(), verdict.DefaultRules()
	a[0].Phrase = "changed"
	assert.NotEqual(t, a[0], b[0], "DefaultRules returns a fresh copy")
}

func TestAPIErrorKinds(t *testing.T) {
	t.Parallel()
	kinds := map[verdict.Kind]error{
		verdict.KindRevoked:         verdict.ErrRevoked,
		verdict.KindSeatLimit:       verdict.ErrSeatLimit,
		verdict.KindExpired:         verdict.ErrExpired,
		verdict.KindUnknownInstance: verdict.ErrUnknownInstance,
	}
	for k, sentinel := range kinds {
		e := &verdict.APIError{Endpoint: "begin_session", Kind: k}
		assert.ErrorIs(t, e, verdict.ErrRefused)
		assert.ErrorIs(t, e, sentinel)
		assert.NotErrorIs(t, e, verdict.ErrUnreachable)
		for k2, s2 := range kinds {
			if k2 != k {
				assert.NotErrorIs(t, e, s2)
			}
		}
		assert.ErrorIs(t, sentinel, verdict.ErrRefused, "the kind sentinels are refusals")
	}
	other := &verdict.APIError{Kind: verdict.KindOther}
	assert.ErrorIs(t, other, verdict.ErrRefused)
	for _, s := range kinds {
		assert.NotErrorIs(t, other, s)
	}
	for _, s := range []error{verdict.ErrIntercepted, verdict.ErrUnauthenticated, verdict.ErrMalformedReply} {
		assert.ErrorIs(t, s, verdict.ErrUnreachable)
		assert.NotErrorIs(t, s, verdict.ErrRefused)
	}
}

// TestKindFinal pins which refusal kinds are final: every kind but the
// capacity kind.
func TestKindFinal(t *testing.T) {
	t.Parallel()
	for k, final := range map[verdict.Kind]bool{
		verdict.KindOther: true, verdict.KindRevoked: true, verdict.KindSeatLimit: false,
		verdict.KindExpired: true, verdict.KindUnknownInstance: true,
	} {
		assert.Equal(t, final, k.Final(), k.String())
	}
}
