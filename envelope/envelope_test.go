package envelope_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
)

const (
	apiKey    = "ak_live_SECRETAPIKEY_4f9a2b"
	plaintext = `{"license_key":"LK-SECRET-PAYLOAD-0001","cpu_id":"BFEBFBFF000906EA"}`
	replyText = `{"success":true,"token":"tok_SECRET_REPLY"}`
)

// pair is a matched Sealer and Opener of one mode.
type pair struct {
	name   string
	sealer func(opts ...envelope.Option) envelope.Sealer
	opener func(opts ...envelope.Option) envelope.Opener
}

// pairs returns one pair per mode: public key with each KEM, shared secret.
func pairs(t testing.TB) []pair {
	t.Helper()
	var ps []pair
	for _, kem := range []envelope.KEM{envelope.KEMX25519, envelope.KEMMLKEM768X25519} {
		priv, err := envelope.GenerateKey(kem)
		require.NoError(t, err)
		ps = append(ps, pair{
			name: kem.String(),
			sealer: func(opts ...envelope.Option) envelope.Sealer {
				s, err := envelope.NewSealer(priv.Public(), opts...)
				require.NoError(t, err)
				return s
			},
			opener: func(opts ...envelope.Option) envelope.Opener {
				o, err := envelope.NewOpener(priv, opts...)
				require.NoError(t, err)
				return o
			},
		})
	}
	secret, err := envelope.GenerateSecret()
	require.NoError(t, err)
	ps = append(ps, pair{
		name: "shared secret",
		sealer: func(opts ...envelope.Option) envelope.Sealer {
			s, err := envelope.NewSharedSecretSealer(secret, opts...)
			require.NoError(t, err)
			return s
		},
		opener: func(opts ...envelope.Option) envelope.Opener {
			o, err := envelope.NewSharedSecretOpener(secret, opts...)
			require.NoError(t, err)
			return o
		},
	})
	return ps
}

// inEachPair runs f in a parallel subtest for each pair, with a sealer that
// asks for sealed replies and an opener.
func inEachPair(t *testing.T, f func(t *testing.T, p pair, s envelope.Sealer, o envelope.Opener)) {
	for _, p := range pairs(t) {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f(t, p, p.sealer(envelope.WithSealedReplies()), p.opener())
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		for _, sealed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/sealed=%v", p.name, sealed), func(t *testing.T) {
				t.Parallel()
				var opts []envelope.Option
				if sealed {
					opts = append(opts, envelope.WithSealedReplies())
				}
				s, o := p.sealer(opts...), p.opener()
				for _, msg := range []string{plaintext, "", "x", strings.Repeat("a", 4096)} {
					data, ro, err := sealV(s, apiKey, []byte(msg))
					require.NoError(t, err)
					_, err = base64.StdEncoding.DecodeString(data)
					require.NoError(t, err, "data is standard base64")
					got, rs, err := openV(o, apiKey, data)
					require.NoError(t, err)
					assert.Equal(t, msg, string(got))
					assert.Equal(t, sealed, rs.Requested())
					if !sealed {
						plain := []byte(replyText)
						out, err := ro.OpenReply(plain)
						require.NoError(t, err)
						assert.Equal(t, replyText, string(out), "plain reply passes through")
						_, err = rs.SealReply(plain)
						require.ErrorIs(t, err, envelope.ErrNotRequested)
						continue
					}
					body, err := rs.SealReply([]byte(replyText))
					require.NoError(t, err)
					assert.True(t, strings.HasPrefix(string(body), `{"data":"`), "body %s", body)
					out, err := ro.OpenReply(body)
					require.NoError(t, err)
					assert.Equal(t, replyText, string(out))
					// A second, fresh reply opens too and differs.
					body2, err := rs.SealReply([]byte(replyText))
					require.NoError(t, err)
					assert.NotEqual(t, body, body2)
					out, err = ro.OpenReply(body2)
					require.NoError(t, err)
					assert.Equal(t, replyText, string(out))
				}
			})
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		s := p.sealer()
		a, _, err := sealV(s, apiKey, []byte(plaintext))
		require.NoError(t, err)
		b, _, err := sealV(s, apiKey, []byte(plaintext))
		require.NoError(t, err)
		assert.NotEqual(t, a, b, p.name)
	}
}

func TestWrongAPIKeyRejected(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		data, _, err := sealV(p.sealer(), apiKey, []byte(plaintext))
		require.NoError(t, err)
		for _, k := range []string{"", apiKey + "x", strings.ToUpper(apiKey), apiKey[:len(apiKey)-1]} {
			_, _, err := openV(p.opener(), k, data)
			require.ErrorIs(t, err, envelope.ErrUnauthentic, "%s: Open(%q)", p.name, k)
		}
	}
}

func TestWrongKeyRejected(t *testing.T) {
	t.Parallel()
	a, b := pairs(t), pairs(t)
	for i := range a {
		data, _, err := sealV(a[i].sealer(), apiKey, []byte(plaintext))
		require.NoError(t, err)
		_, _, err = openV(b[i].opener(), apiKey, data)
		require.ErrorIs(t, err, envelope.ErrUnauthentic, a[i].name)
	}
}

// TestTamper flips one bit in every byte of the decoded data: no change may
// go unnoticed, and every failure is one of the three categories.
func TestTamper(t *testing.T) {
	t.Parallel()
	inEachPair(t, func(t *testing.T, p pair, s envelope.Sealer, o envelope.Opener) {
		data, _, err := sealV(s, apiKey, []byte(plaintext))
		require.NoError(t, err)
		raw, err := base64.StdEncoding.DecodeString(data)
		require.NoError(t, err)
		for i := range raw {
			c := bytes.Clone(raw)
			c[i] ^= 1 << (i % 8)
			_, _, err := openV(o, apiKey, base64.StdEncoding.EncodeToString(c))
			require.Error(t, err, "flip in byte %d went unnoticed", i)
			requireCategory(t, err)
		}
		for n := range raw {
			_, _, err := openV(o, apiKey, base64.StdEncoding.EncodeToString(raw[:n]))
			require.Error(t, err, "truncation to %d bytes went unnoticed", n)
			requireCategory(t, err)
		}
	})
}

func requireCategory(t *testing.T, err error) {
	t.Helper()
	var e *envelope.Error
	require.ErrorAs(t, err, &e)
	n := 0
	for _, c := range []error{envelope.ErrMalformed, envelope.ErrUnauthentic, envelope.ErrUnsupportedVersion} {
		if errors.Is(err, c) {
			n++
		}
	}
	require.Equal(t, 1, n, "error %q matches %d categories; want 1", err, n)
	require.True(t, strings.HasPrefix(err.Error(), "envelope: "), "error %q", err)
}

func TestReplyTamperAndReplay(t *testing.T) {
	t.Parallel()
	inEachPair(t, func(t *testing.T, p pair, s envelope.Sealer, o envelope.Opener) {
		data1, ro1, err := sealV(s, apiKey, []byte(plaintext))
		require.NoError(t, err)
		data2, ro2, err := sealV(s, apiKey, []byte(plaintext))
		require.NoError(t, err)
		_, rs1, err := openV(o, apiKey, data1)
		require.NoError(t, err)
		_, rs2, err := openV(o, apiKey, data2)
		require.NoError(t, err)
		body1, err := rs1.SealReply([]byte(replyText))
		require.NoError(t, err)
		body2, err := rs2.SealReply([]byte(replyText))
		require.NoError(t, err)

		// Replayed onto another request.
		_, err = ro2.OpenReply(body1)
		require.ErrorIs(t, err, envelope.ErrUnauthentic)
		_, err = ro1.OpenReply(body2)
		require.ErrorIs(t, err, envelope.ErrUnauthentic)

		// Every bit flip in the sealed reply is caught.
		raw := replyRaw(t, body1)
		for i := range raw {
			c := bytes.Clone(raw)
			c[i] ^= 1 << (i % 8)
			_, err := ro1.OpenReply(replyBody(c))
			require.ErrorIs(t, err, envelope.ErrUnauthentic, "flip in reply byte %d", i)
		}
		for n := range raw {
			_, err := ro1.OpenReply(replyBody(raw[:n]))
			require.ErrorIs(t, err, envelope.ErrUnauthentic, "reply truncated to %d", n)
		}
	})
}

func TestReplyFailsClosed(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		s, o := p.sealer(envelope.WithSealedReplies()), p.opener()
		data, ro, err := sealV(s, apiKey, []byte(plaintext))
		require.NoError(t, err)
		_, rs, err := openV(o, apiKey, data)
		require.NoError(t, err)
		good, err := rs.SealReply([]byte(replyText))
		require.NoError(t, err)
		goodData := string(good[len(`{"data":"`) : len(good)-2])
		for _, body := range []string{
			"",
			"   ",
			"null",
			"[]",
			`"x"`,
			replyText,
			`{"success":false,"error":"revoked"}`,
			`{"data":null}`,
			`{"data":123}`,
			`{"data":""}`,
			`{"Data":"` + goodData + `"}`,
			`{"data":"` + goodData + `","token":"x"}`,
			`{"data":"` + goodData + `"} trailing`,
			`{"data":"` + goodData[:len(goodData)-4] + `"}`,
			`{"data":"` + goodData + `"`,
			strings.Repeat(" ", envelope.MaxDataSize+1),
		} {
			out, err := ro.OpenReply([]byte(body))
			require.ErrorIs(t, err, envelope.ErrUnauthentic, "%s: OpenReply(%.40q)", p.name, body)
			require.Nil(t, out)
		}
		// White space around the JSON is fine.
		out, err := ro.OpenReply([]byte("\n " + string(good) + "\r\n"))
		require.NoError(t, err)
		require.Equal(t, replyText, string(out))
	}
}

func TestCrossModeReplyRejected(t *testing.T) {
	t.Parallel()
	ps := pairs(t)
	var bodies [][]byte
	var openers []envelope.ReplyOpener
	for _, p := range ps {
		data, ro, err := sealV(p.sealer(envelope.WithSealedReplies()), apiKey, []byte(plaintext))
		require.NoError(t, err)
		_, rs, err := openV(p.opener(), apiKey, data)
		require.NoError(t, err)
		b, err := rs.SealReply([]byte(replyText))
		require.NoError(t, err)
		bodies, openers = append(bodies, b), append(openers, ro)
	}
	for i, ro := range openers {
		for j, b := range bodies {
			_, err := ro.OpenReply(b)
			if i == j {
				require.NoError(t, err)
				continue
			}
			require.ErrorIs(t, err, envelope.ErrUnauthentic, "reply of %s opened by %s", ps[j].name, ps[i].name)
		}
	}
}

func TestOpenerRequiringSealedReplies(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		o := p.opener(envelope.WithSealedReplies())
		data, _, err := sealV(p.sealer(), apiKey, []byte(plaintext))
		require.NoError(t, err)
		_, _, err = openV(o, apiKey, data)
		require.ErrorIs(t, err, envelope.ErrMalformed, p.name)
		data, _, err = sealV(p.sealer(envelope.WithSealedReplies()), apiKey, []byte(plaintext))
		require.NoError(t, err)
		_, rs, err := openV(o, apiKey, data)
		require.NoError(t, err, p.name)
		require.True(t, rs.Requested())
	}
}

// maxPlaintext returns the largest plaintext whose envelope fits MaxDataSize,
// given the envelope's fixed overhead in bytes.
func maxPlaintext(overhead int) int { return envelope.MaxDataSize/4*3 - overhead }

func TestSizeLimits(t *testing.T) {
	t.Parallel()
	// Header: fixed part, timestamp (8), request id (16), endpoint length
	// (1) and the endpoint; then enc or salt, then the tag.
	hdr := 8 + 16 + 1 + len(testEndpoint)
	overheads := map[string]int{
		envelope.KEMX25519.String():         16 + hdr + 32 + 16,
		envelope.KEMMLKEM768X25519.String(): 16 + hdr + 1120 + 16,
		"shared secret":                     10 + hdr + 32 + 16,
	}
	inEachPair(t, func(t *testing.T, p pair, s envelope.Sealer, o envelope.Opener) {
		n := maxPlaintext(overheads[p.name])
		_, _, err := sealV(s, apiKey, make([]byte, n+1))
		require.ErrorIs(t, err, envelope.ErrTooLarge)
		data, ro, err := sealV(s, apiKey, make([]byte, n))
		require.NoError(t, err)
		require.LessOrEqual(t, len(data), envelope.MaxDataSize)
		got, rs, err := openV(o, apiKey, data)
		require.NoError(t, err)
		require.Len(t, got, n)

		_, _, err = openV(o, apiKey, data+"AAAA")
		require.ErrorIs(t, err, envelope.ErrMalformed, "data over MaxDataSize")

		// Largest sealed reply: 9+2 bytes of JSON around the base64 of
		// 1 + 32 + n + 16 bytes.
		rn := (envelope.MaxDataSize-11)/4*3 - 49
		_, err = rs.SealReply(make([]byte, rn+1))
		require.ErrorIs(t, err, envelope.ErrTooLarge)
		body, err := rs.SealReply(make([]byte, rn))
		require.NoError(t, err)
		require.LessOrEqual(t, len(body), envelope.MaxDataSize)
		out, err := ro.OpenReply(body)
		require.NoError(t, err)
		require.Len(t, out, rn)
	})
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	for _, p := range pairs(t) {
		s, o := p.sealer(envelope.WithSealedReplies()), p.opener()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := range 10 {
					msg := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
					data, ro, err := sealV(s, apiKey, []byte(msg))
					if err != nil {
						errs <- err
						return
					}
					got, rs, err := openV(o, apiKey, data)
					if err != nil || string(got) != msg {
						errs <- fmt.Errorf("open: %v (plaintext match %v)", err, string(got) == msg)
						return
					}
					body, err := rs.SealReply(got)
					if err != nil {
						errs <- err
						return
					}
					out, err := ro.OpenReply(body)
					if err != nil || string(out) != msg {
						errs <- fmt.Errorf("open reply: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", p.name, err)
		}
	}
}

// TestErrorsCarryNoSecrets checks that no error text contains the API key,
// the payload or key material.
func TestErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{apiKey, "SECRET"}
	for _, p := range pairs(t) {
		s, o := p.sealer(envelope.WithSealedReplies()), p.opener()
		data, ro, err := sealV(s, apiKey, []byte(plaintext))
		require.NoError(t, err)
		var errs []error
		_, _, err = openV(o, apiKey+"SECRET", data)
		errs = append(errs, err)
		_, _, err = openV(o, apiKey, data[:len(data)-4])
		errs = append(errs, err)
		_, _, err = openV(o, apiKey, "SECRET"+data)
		errs = append(errs, err)
		_, err = ro.OpenReply([]byte(replyText))
		errs = append(errs, err)
		_, err = ro.OpenReply([]byte(`{"data":"SECRET=="}`))
		errs = append(errs, err)
		_, err = envelope.ParsePublicKey([]byte("SECRET"))
		errs = append(errs, err)
		for _, err := range errs {
			require.Error(t, err)
			for _, sec := range secrets {
				require.NotContains(t, err.Error(), sec)
			}
		}
	}
}

func TestConstructorsRejectBadInput(t *testing.T) {
	t.Parallel()
	_, err := envelope.NewSealer(nil)
	require.Error(t, err)
	_, err = envelope.NewOpener(nil)
	require.Error(t, err)
	_, err = envelope.NewSealer(&envelope.PublicKey{})
	require.Error(t, err)
	_, err = envelope.NewOpener(&envelope.PrivateKey{})
	require.Error(t, err)
	_, err = envelope.NewSharedSecretSealer(make([]byte, 31))
	require.ErrorIs(t, err, envelope.ErrMalformed)
	_, err = envelope.NewSharedSecretOpener(nil)
	require.ErrorIs(t, err, envelope.ErrMalformed)
	// A nil option is ignored.
	secret, err := envelope.GenerateSecret()
	require.NoError(t, err)
	_, err = envelope.NewSharedSecretSealer(secret, nil)
	require.NoError(t, err)
}

func TestSharedSecretIsCopied(t *testing.T) {
	t.Parallel()
	secret, err := envelope.GenerateSecret()
	require.NoError(t, err)
	s, err := envelope.NewSharedSecretSealer(secret)
	require.NoError(t, err)
	o, err := envelope.NewSharedSecretOpener(bytes.Clone(secret))
	require.NoError(t, err)
	clear(secret)
	data, _, err := sealV(s, apiKey, []byte(plaintext))
	require.NoError(t, err)
	got, _, err := openV(o, apiKey, data)
	require.NoError(t, err)
	require.Equal(t, plaintext, string(got))
}

// foreign is an Opener from "another package": a custom scheme.
type foreign struct{ calls int }

func (f *foreign) Open(in envelope.Incoming) (*envelope.Opened, error) {
	f.calls++
	if in.Data == "custom:"+in.Key {
		return &envelope.Opened{Plaintext: []byte("custom"), Endpoint: in.Endpoint}, nil
	}
	return nil, errors.New("custom: no")
}

func TestMultiOpener(t *testing.T) {
	t.Parallel()
	ps := pairs(t)
	old := pairs(t)[0] // a retired X25519 key
	var openers []envelope.Opener
	for _, p := range ps {
		openers = append(openers, p.opener())
	}
	m := envelope.MultiOpener(nil, envelope.MultiOpener(openers[:2]...), openers[2], old.opener())
	for _, p := range append(ps, old) {
		data, _, err := sealV(p.sealer(envelope.WithSealedReplies()), apiKey, []byte(plaintext))
		require.NoError(t, err)
		got, rs, err := openV(m, apiKey, data)
		require.NoError(t, err, p.name)
		require.Equal(t, plaintext, string(got))
		require.True(t, rs.Requested())
		_, _, err = openV(m, "wrong", data)
		require.ErrorIs(t, err, envelope.ErrUnauthentic, p.name)
	}
	stranger := pairs(t)
	for _, p := range stranger {
		data, _, err := sealV(p.sealer(), apiKey, []byte(plaintext))
		require.NoError(t, err)
		_, _, err = openV(m, apiKey, data)
		require.ErrorIs(t, err, envelope.ErrUnauthentic, "unknown %s key", p.name)
		require.Contains(t, err.Error(), "unknown key id")
	}
	data, _, err := sealV(ps[0].sealer(), apiKey, []byte(plaintext))
	require.NoError(t, err)
	raw, _ := base64.StdEncoding.DecodeString(data)
	for _, tc := range []struct {
		data string
		want error
	}{
		{"", envelope.ErrMalformed},
		{"!!!!", envelope.ErrMalformed},
		{base64.StdEncoding.EncodeToString([]byte{0x09, 0, 0, 0}), envelope.ErrUnsupportedVersion},
		{base64.StdEncoding.EncodeToString(raw[:20]), envelope.ErrMalformed},
		{base64.StdEncoding.EncodeToString(raw[:5]), envelope.ErrMalformed},
	} {
		_, _, err := openV(m, apiKey, tc.data)
		require.ErrorIs(t, err, tc.want, "Open(%q)", tc.data)
	}

	// Custom openers are tried after no key id matched.
	f := &foreign{}
	mf := envelope.MultiOpener(openers[0], f)
	got, _, err := openV(mf, apiKey, "custom:"+apiKey)
	require.NoError(t, err)
	require.Equal(t, "custom", string(got))
	_, _, err = openV(mf, apiKey, data)
	require.NoError(t, err)
	require.Equal(t, 1, f.calls, "custom opener not consulted when a key id matches")

	_, _, err = openV(envelope.MultiOpener(), apiKey, data)
	require.Error(t, err)
}

func replyRaw(t *testing.T, body []byte) []byte {
	t.Helper()
	s := strings.TrimSuffix(strings.TrimPrefix(string(body), `{"data":"`), `"}`)
	raw, err := base64.StdEncoding.DecodeString(s)
	require.NoError(t, err)
	return raw
}

func replyBody(raw []byte) []byte {
	return []byte(`{"data":"` + base64.StdEncoding.EncodeToString(raw) + `"}`)
}
