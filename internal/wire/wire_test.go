package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/v2")

const goldenDir = "../../testdata/v2"

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	require.NoError(t, err)
	return b
}

func machine() Machine {
	return Machine{
		IPAddress:    "192.0.2.10",
		CPUID:        "genuineintel-000906ea-bfebfbff",
		MBSerial:     "pf0abcde",
		MACAddresses: []string{"00:1b:21:3a:4f:5c", "3c:7c:3f:10:20:30"},
		VolumeHash:   "9f2c5b0e7d1a4c3b8e6f5a2d1c0b9a8e7f6d5c4b3a2918070605040302010000",
		HostName:     "build-box",
	}
}

// TestRequestsMatchGolden checks that each request type encodes to exactly
// the spec's field names and types, as recorded in testdata/v2.
func TestRequestsMatchGolden(t *testing.T) {
	user := map[string]string{"department": "engineering", "seat": "42"}
	cases := []struct {
		file string
		req  any
		into func() any
	}{
		{"register_instance.request.json", RegisterRequest{
			ProductGUID: "0b5e8c1e-4f7a-4b61-9d0c-6a2f1e3c4d5e", LicenseKey: "LK-TEST-0000-1111",
			Machine: machine(), Name: "Ada Lovelace", Email: "ada@example.com", UserHash: user,
		}, func() any { return new(RegisterRequest) }},
		{"begin_session.request.json", BeginRequest{
			ProductGUID: "0b5e8c1e-4f7a-4b61-9d0c-6a2f1e3c4d5e", LicenseKey: "LK-TEST-0000-1111",
			InstanceGUID: "6f1d2c3b-4a59-4e8f-9a7b-1c2d3e4f5a6b", Machine: machine(), UserHash: user, Duration: 1800,
		}, func() any { return new(BeginRequest) }},
		{"extend_session.request.json", ExtendRequest{Token: "tok-abf7158809cf4f3c", Duration: 1800},
			func() any { return new(ExtendRequest) }},
		{"end_session.request.json", EndRequest{Token: "tok-762e9c3b1a4d5f60"},
			func() any { return new(EndRequest) }},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			got, err := json.MarshalIndent(tc.req, "", "  ")
			require.NoError(t, err)
			if *update {
				require.NoError(t, os.WriteFile(filepath.Join(goldenDir, tc.file), append(got, '\n'), 0o644))
			}
			want := golden(t, tc.file)
			assert.JSONEq(t, string(want), string(got))

			// Round trip: the golden file decodes back into the same value.
			v := tc.into()
			require.NoError(t, json.Unmarshal(want, v))
			again, err := json.Marshal(v)
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(again))
		})
	}
}

func TestNilCollectionsEncodeEmpty(t *testing.T) {
	for _, req := range []any{RegisterRequest{}, BeginRequest{}} {
		b, err := json.Marshal(req)
		require.NoError(t, err)
		s := string(b)
		assert.Contains(t, s, `"mac_addresses":[]`)
		assert.Contains(t, s, `"user_hash":{}`)
		assert.NotContains(t, s, "null")
	}
	b, err := json.Marshal(ExtendRequest{Token: "t"})
	require.NoError(t, err)
	assert.Equal(t, `{"token":"t"}`, string(b), "duration must be omitted when zero")
}

func TestDecodeGoldenReplies(t *testing.T) {
	reg, err := DecodeRegister(golden(t, "register_instance.success.json"))
	require.NoError(t, err)
	assert.Equal(t, "6f1d2c3b-4a59-4e8f-9a7b-1c2d3e4f5a6b", reg.GUID)
	assert.Equal(t, time.Hour, reg.ControlOptions.Session())
	assert.Equal(t, 24*time.Hour, reg.ControlOptions.Grace())
	assert.Equal(t, time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC), reg.Time.Time)
	assert.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), reg.FirstRegisteredAt.Time)
	assert.Equal(t, "2026-01-02 03:04:05", reg.FirstRegisteredAt.Raw)

	begin, err := DecodeBegin(golden(t, "begin_session.success.json"))
	require.NoError(t, err)
	assert.Equal(t, "tok-abf7158809cf4f3c", begin.Token)
	assert.Equal(t, "sk-2b7e151628aed2a6", begin.SessionKey)
	assert.Equal(t, int64(1), begin.Status)
	assert.Equal(t, []string{"export", "pro", "reports"}, ParseFeatures(begin.Features))
	assert.Equal(t, 30*time.Minute, begin.ControlOptions.Session())

	ext, err := DecodeExtend(golden(t, "extend_session.success.json"))
	require.NoError(t, err)
	assert.Equal(t, "tok-762e9c3b1a4d5f60", ext.Token)

	end, err := DecodeEnd(golden(t, "end_session.success.json"))
	require.NoError(t, err)
	assert.True(t, end.Time.Valid())
}

func TestDecodeGoldenFailures(t *testing.T) {
	decoders := map[string]func([]byte) error{
		Register: func(b []byte) error { _, err := DecodeRegister(b); return err },
		Begin:    func(b []byte) error { _, err := DecodeBegin(b); return err },
		Extend:   func(b []byte) error { _, err := DecodeExtend(b); return err },
		End:      func(b []byte) error { _, err := DecodeEnd(b); return err },
	}
	wantMsg := map[string]string{
		Register: "unknown license",
		Begin:    "seat limit reached (5 of 5 in use)",
		Extend:   "unknown token or session lapsed",
		End:      "unknown token",
	}
	for _, ep := range Endpoints {
		t.Run(ep, func(t *testing.T) {
			body := golden(t, ep+".failure.json")
			err := decoders[ep](body)
			var f *Failure
			require.ErrorAs(t, err, &f)
			assert.Equal(t, ep, f.Endpoint)
			assert.Equal(t, wantMsg[ep], f.Message)
			assert.True(t, f.Time.Valid(), "time %q should parse", f.Time.Raw)
			assert.Contains(t, err.Error(), "wire: "+ep+": server refused: ")

			g := DecodeFailure(ep, body)
			require.NotNil(t, g)
			assert.Equal(t, wantMsg[ep], g.Message)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"empty", "", "empty reply"},
		{"array", "[]", "not a JSON object"},
		{"truncated", `{"guid":"g","control_options":{"session_duration":36`, "invalid JSON"},
		{"garbage", "\x00\xff<html>", "not a JSON object"},
		{"no guid", `{"success":true,"control_options":{"session_duration":60}}`, "guid missing"},
		{"no duration", `{"success":true,"guid":"g"}`, "session_duration missing"},
		{"zero duration", `{"guid":"g","control_options":{"session_duration":0}}`, "session_duration missing"},
		{"negative duration", `{"guid":"g","control_options":{"session_duration":-5}}`, "not positive"},
		{"negative grace", `{"guid":"g","control_options":{"session_duration":5,"validation_grace_period":-1}}`, "negative"},
		{"string duration", `{"guid":"g","control_options":{"session_duration":"60"}}`, "session_duration"},
		{"huge duration", `{"guid":"g","control_options":{"session_duration":1e300}}`, "bad number"},
		{"guid wrong type", `{"guid":7,"control_options":{"session_duration":60}}`, "guid: want string"},
		{"time wrong type", `{"guid":"g","time":true,"control_options":{"session_duration":60}}`, "time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRegister([]byte(tc.body))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrProtocol)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := DecodeBegin([]byte(`{"status":1,"control_options":{"session_duration":60}}`))
	assert.ErrorContains(t, err, "token missing")
	_, err = DecodeRegister(bytes.Repeat([]byte(" "), MaxBody+1))
	assert.ErrorContains(t, err, "larger than 1 MiB")
}

func TestDecodeTolerates(t *testing.T) {
	// Fractional seconds round down; extra fields are ignored; a missing
	// grace period is zero; an extend without a token keeps the old one.
	r, err := DecodeExtend([]byte(`{"status":0,"extra":[1,2],"control_options":{"session_duration":90.9}}`))
	require.NoError(t, err)
	assert.Equal(t, int64(90), r.ControlOptions.SessionDuration)
	assert.Equal(t, int64(0), r.ControlOptions.ValidationGracePeriod)
	assert.Empty(t, r.Token)

	// A failure whose error is not a string is still a failure.
	_, err = DecodeBegin([]byte(`{"success":false,"error":{"code":3}}`))
	var f *Failure
	require.ErrorAs(t, err, &f)
	assert.Contains(t, f.Error(), "no reason given")
}

func TestFailureMessageSanitised(t *testing.T) {
	long := strings.Repeat("x", 500)
	_, err := DecodeBegin([]byte(`{"success":false,"error":"bad\u0000\n` + long + `"}`))
	require.Error(t, err)
	msg := err.Error()
	assert.NotContains(t, msg, "\x00")
	assert.NotContains(t, msg, "\n")
	assert.Less(t, len(msg), 300)
}

func TestParseTimestamp(t *testing.T) {
	want := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-25T18:00:00Z", want},
		{"2026-11-25T19:00:00+01:00", want},
		{"2026-11-25 18:00:00", want},
		{"2026-11-25T18:00:00", want},
		{fmt.Sprint(want.Unix()), want},
		{fmt.Sprintf("%d.5", want.Unix()), want.Add(500 * time.Millisecond)},
		{"yesterday", time.Time{}},
		{"", time.Time{}},
		{"-5", time.Time{}},
		{"1e300", time.Time{}},
		{"NaN", time.Time{}},
		{"Inf", time.Time{}},
		{"-Inf", time.Time{}},
	}
	for _, tc := range cases {
		got := ParseTimestamp(tc.in)
		assert.True(t, tc.want.Equal(got.Time), "ParseTimestamp(%q) = %v; want %v", tc.in, got.Time, tc.want)
		assert.Equal(t, tc.in, got.Raw)
	}

	var ts Timestamp
	require.NoError(t, json.Unmarshal([]byte(fmt.Sprint(want.Unix())), &ts))
	assert.True(t, want.Equal(ts.Time))
	b, err := json.Marshal(ts)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%q", fmt.Sprint(want.Unix())), string(b))
	assert.Error(t, json.Unmarshal([]byte(`{}`), &ts))
	assert.Equal(t, "2026-11-25T18:00:00Z", FormatTime(want.In(time.FixedZone("x", 3600))))
}

func TestParseFeatures(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"pro", []string{"pro"}},
		{"pro,export", []string{"export", "pro"}},
		{" pro ; export\treports\nexport ", []string{"export", "pro", "reports"}},
		{`["b","a","a",""]`, []string{"a", "b"}},
		{`["a", 3, null]`, []string{"a"}},
		{`{"pro":true,"export":false,"seats":5,"beta":null,"tier":"gold","off":0,"none":""}`, []string{"pro", "seats", "tier"}},
		{`{broken`, []string{"{broken"}},
		{`[1,`, []string{"[1"}},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, ParseFeatures(tc.in), "ParseFeatures(%q)", tc.in)
	}
}

func TestProtocolErrorIs(t *testing.T) {
	var err error = &ProtocolError{Endpoint: Begin, Reason: "x"}
	assert.True(t, errors.Is(err, ErrProtocol))
	assert.False(t, errors.Is(&Failure{}, ErrProtocol))
}

func TestDecodeFailureRejectsOtherShapes(t *testing.T) {
	for _, body := range []string{"", "oops", `{"success":true}`, `{"error":5}`, "[]"} {
		assert.Nil(t, DecodeFailure(End, []byte(body)), "DecodeFailure(%q)", body)
	}
}

// TestDecodeFailureSpellings checks that the quick check which spares a
// success reply its probe misses no spelling of "success" that
// encoding/json accepts: any case, an escape, a Unicode fold.
func TestDecodeFailureSpellings(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"success":false,"error":"license revoked"}`,
		`{"SUCCESS":false,"error":"license revoked"}`,
		`{"\u0073uccess":false,"error":"license revoked"}`,
		`{"ſuccess":false,"error":"license revoked"}`,
	} {
		_, err := DecodeExtend([]byte(body))
		var f *Failure
		if !errors.As(err, &f) {
			t.Errorf("DecodeExtend(%s) = %v; want a *Failure", body, err)
		}
	}
	if _, err := DecodeExtend([]byte(`{"status":1,"time":"2026-12-07T10:00:00Z"`)); err == nil {
		t.Error("truncated JSON decoded")
	}
}
