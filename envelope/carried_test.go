package envelope

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const carriedVectorFile = "carried.json"

// carriedFile is the layout of testdata/envelope/carried.json: carried
// requests in both modes, the header bytes that mark them, replies, and the
// exported reply opener a client keeps until the reply comes back.
type carriedFile struct {
	Comment       string          `json:"comment"`
	PrivateKeyPEM string          `json:"private_key_pem"`
	Secret        string          `json:"secret"`
	Vectors       []carriedVector `json:"vectors"`
}

type carriedVector struct {
	Name     string `json:"name"`
	Mode     string `json:"mode"`
	APIKey   string `json:"api_key"`
	PostedTo string `json:"posted_to"`
	Data     string `json:"data"`
	Result   string `json:"result"`
	// For requests that open.
	Carried     bool          `json:"carried,omitempty"`
	Endpoint    string        `json:"endpoint,omitempty"`
	Time        string        `json:"time,omitempty"`
	RequestID   string        `json:"request_id,omitempty"`
	Plaintext   string        `json:"plaintext,omitempty"`
	ReplyOpener string        `json:"reply_opener_hex,omitempty"` // ExportReplyOpener of the client's side
	Replies     []replyVector `json:"replies,omitempty"`
}

// opener builds the server side for a vector of the given mode.
func (f *carriedFile) opener(tb testing.TB, mode string) Opener {
	tb.Helper()
	return (&vectorFile{Mode: mode, Secret: f.Secret, PrivateKeyPEM: f.PrivateKeyPEM}).opener(tb)
}

// TestCarriedVectors opens every stored carried request, checks the
// authenticated flag, and opens the stored replies with the stored exported
// reply opener, as a client does days after writing the request.
func TestCarriedVectors(t *testing.T) {
	if *update {
		generateCarried(t)
	}
	b, err := os.ReadFile(filepath.Join(vectorDir, carriedVectorFile))
	require.NoError(t, err)
	var f carriedFile
	require.NoError(t, json.Unmarshal(b, &f))
	require.GreaterOrEqual(t, len(f.Vectors), 6)
	for _, v := range f.Vectors {
		op, err := f.opener(t, v.Mode).Open(Incoming{Key: v.APIKey, Data: v.Data, Endpoint: v.PostedTo})
		require.Equal(t, v.Result, resultOf(err), "Open(%q)", v.Name)
		if err != nil {
			continue
		}
		require.Equal(t, v.Carried, op.Carried, "Open(%q).Carried", v.Name)
		require.Equal(t, v.Plaintext, string(op.Plaintext), "Open(%q) plaintext", v.Name)
		require.Equal(t, v.Endpoint, op.Endpoint)
		require.Equal(t, v.Time, op.Time.UTC().Format(time.RFC3339))
		require.Equal(t, v.RequestID, hex.EncodeToString(op.ID[:]))
		if v.ReplyOpener == "" {
			continue
		}
		raw, err := hex.DecodeString(v.ReplyOpener)
		require.NoError(t, err)
		ro, err := ImportReplyOpener(raw)
		require.NoError(t, err)
		for _, r := range v.Replies {
			got, err := ro.OpenReply([]byte(r.Body))
			if r.Result == resOK {
				require.NoError(t, err, "OpenReply(%q/%q)", v.Name, r.Name)
				require.Equal(t, r.Plaintext, string(got))
				continue
			}
			require.ErrorIs(t, err, ErrUnauthentic, "OpenReply(%q/%q)", v.Name, r.Name)
		}
	}
}

func generateCarried(t *testing.T) {
	priv, err := GenerateKey(KEMX25519)
	require.NoError(t, err)
	secret, err := GenerateSecret()
	require.NoError(t, err)
	f := carriedFile{
		Comment: "Carried (offline) requests, format 2 flag bit 1 (0x02). See FORMAT.md, Carried requests. " +
			"reply_opener_hex is ExportReplyOpener of the client's side of the request; replies open with it.",
		PrivateKeyPEM: string(priv.EncodePEM()),
		Secret:        b64.EncodeToString(secret),
	}
	pkSealer, err := NewSealer(priv.Public(), WithSealedReplies())
	require.NoError(t, err)
	skSealer, err := NewSharedSecretSealer(secret, WithSealedReplies())
	require.NoError(t, err)
	plainSealer, err := NewSealer(priv.Public())
	require.NoError(t, err)
	const api = "api-key-0001"
	when := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	pt := `{"product_guid":"prod-1","license_key":"LK-1","instance_guid":"i-1"}`
	add := func(name, mode string, s Sealer, req Request, mutate func([]byte), replies bool) {
		sd, err := s.Seal(req, []byte(pt))
		require.NoError(t, err)
		data := sd.Data
		if mutate != nil {
			raw, err := b64.DecodeString(data)
			require.NoError(t, err)
			mutate(raw)
			data = b64.EncodeToString(raw)
		}
		v := carriedVector{Name: name, Mode: mode, APIKey: api, PostedTo: req.Endpoint, Data: data}
		o := f.opener(t, mode)
		op, err := o.Open(Incoming{Key: api, Data: data, Endpoint: req.Endpoint})
		v.Result = resultOf(err)
		if err == nil {
			v.Carried, v.Endpoint, v.Plaintext = op.Carried, op.Endpoint, string(op.Plaintext)
			v.Time, v.RequestID = op.Time.UTC().Format(time.RFC3339), hex.EncodeToString(op.ID[:])
			if replies {
				exp, err := ExportReplyOpener(sd.Reply)
				require.NoError(t, err)
				v.ReplyOpener = hex.EncodeToString(exp)
				body, err := op.Reply.SealReply([]byte(`{"status":1,"token":"t"}`))
				require.NoError(t, err)
				v.Replies = append(v.Replies, replyVector{Name: "sealed reply", Body: string(body), Result: resOK, Plaintext: `{"status":1,"token":"t"}`})
				other, err := s.Seal(req, []byte(pt))
				require.NoError(t, err)
				op2, err := o.Open(Incoming{Key: api, Data: other.Data, Endpoint: req.Endpoint})
				require.NoError(t, err)
				body2, err := op2.Reply.SealReply([]byte(`{"status":1,"token":"x"}`))
				require.NoError(t, err)
				v.Replies = append(v.Replies, replyVector{Name: "reply to another request", Body: string(body2), Result: resUnauthentic})
				v.Replies = append(v.Replies, replyVector{Name: "plain reply", Body: `{"status":1,"token":"t"}`, Result: resMalformed})
			}
		}
		f.Vectors = append(f.Vectors, v)
	}
	carried := Request{APIKey: api, Endpoint: "begin_session", Time: when, Carried: true}
	add("public-key carried begin_session", "public-key", pkSealer, carried, nil, true)
	add("shared-secret carried begin_session", "shared-secret", skSealer, carried, nil, true)
	add("public-key ordinary request (flag clear)", "public-key", pkSealer, Request{APIKey: api, Endpoint: "begin_session", Time: when}, nil, false)
	add("carried flag set on an ordinary request (header altered)", "public-key", pkSealer,
		Request{APIKey: api, Endpoint: "begin_session", Time: when}, func(b []byte) { b[1] |= 0x02 }, false)
	add("carried flag cleared (header altered)", "public-key", pkSealer, carried, func(b []byte) { b[1] &^= 0x02 }, false)
	add("carried without a sealed reply", "public-key", plainSealer,
		Request{APIKey: api, Endpoint: "begin_session", Time: when}, func(b []byte) { b[1] |= 0x02 }, false)
	add("reserved flag bit 2 set", "public-key", pkSealer, carried, func(b []byte) { b[1] |= 0x04 }, false)
	add("shared-secret carried flag cleared (header altered)", "shared-secret", skSealer, carried, func(b []byte) { b[1] &^= 0x02 }, false)
	out, err := json.MarshalIndent(&f, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(vectorDir, carriedVectorFile), append(out, '\n'), 0o644))
}

// TestCarriedSeal covers the sealing side: the flag needs sealed replies, and
// an exported opener round-trips while bad bytes are rejected.
func TestCarriedSeal(t *testing.T) {
	priv, err := GenerateKey(KEMX25519)
	require.NoError(t, err)
	plain, err := NewSealer(priv.Public())
	require.NoError(t, err)
	_, err = plain.Seal(Request{APIKey: "k", Endpoint: "begin_session", Carried: true}, []byte("{}"))
	require.ErrorIs(t, err, ErrNotRequested)
	sd, err := plain.Seal(Request{APIKey: "k", Endpoint: "begin_session"}, []byte("{}"))
	require.NoError(t, err)
	_, err = ExportReplyOpener(sd.Reply)
	require.ErrorIs(t, err, ErrNotRequested)

	for _, b := range [][]byte{nil, {0xA1}, append([]byte{0xA1}, make([]byte, 32+31)...), append([]byte{0xA3}, make([]byte, 64)...),
		append([]byte{0xA2}, make([]byte, 32+33)...)} {
		_, err := ImportReplyOpener(b)
		require.ErrorIs(t, err, ErrMalformed, "ImportReplyOpener(%x)", b)
	}
}
