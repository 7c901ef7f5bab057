package envelope_test

import (
	"crypto/ecdh"
	"crypto/hpke"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/testkit"
)

// The figure that matters is the ratio BenchmarkSealOpen_1KiB /
// BenchmarkBareHPKE_1KiB for the same KEM, measured in the same run.

var benchKEMs = []struct {
	name string
	kem  envelope.KEM
	hpke hpke.KEM
}{
	{"x25519", envelope.KEMX25519, hpke.DHKEM(ecdh.X25519())},
	{"mlkem768x25519", envelope.KEMMLKEM768X25519, hpke.MLKEM768X25519()},
}

func benchPayload() []byte {
	p := make([]byte, 1024)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

// benchPair returns a Sealer and an Opener for a new key pair of kem.
func benchPair(b *testing.B, kem envelope.KEM, opts ...envelope.Option) (envelope.Sealer, envelope.Opener) {
	priv, err := envelope.GenerateKey(kem)
	if err != nil {
		b.Fatal(err)
	}
	s, _ := envelope.NewSealer(priv.Public(), opts...)
	o, _ := envelope.NewOpener(priv)
	return s, o
}

// sealOpen seals pt with s and opens it with o once, returning the reply
// opener and sealer of the exchange.
func sealOpen(b *testing.B, s envelope.Sealer, o envelope.Opener, pt []byte) (envelope.ReplyOpener, envelope.ReplySealer) {
	data, ro, err := sealV(s, apiKey, pt)
	if err != nil {
		b.Fatal(err)
	}
	_, rs, err := openV(o, apiKey, data)
	if err != nil {
		b.Fatal(err)
	}
	return ro, rs
}

// bareSealOpen is sealOpen with bare crypto/hpke, the same suite and an info
// of the same length.
func bareSealOpen(b *testing.B, sk hpke.PrivateKey, pt []byte) {
	kdf, aead := hpke.HKDFSHA256(), hpke.AES256GCM()
	info := []byte("licensekit-envelope v2 request\x00" + apiKey)
	ct, err := hpke.Seal(sk.PublicKey(), kdf, aead, info, pt)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := hpke.Open(sk, kdf, aead, info, ct); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSealOpen_1KiB measures this package's Seal plus Open of 1 KiB
// (public-key mode, no sealed reply).
func BenchmarkSealOpen_1KiB(b *testing.B) {
	for _, k := range benchKEMs {
		b.Run(k.name, func(b *testing.B) {
			s, o := benchPair(b, k.kem)
			pt := benchPayload()
			b.ReportAllocs()
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				sealOpen(b, s, o, pt)
			}
		})
	}
}

// BenchmarkBareHPKE_1KiB is the baseline: crypto/hpke single-shot Seal plus
// Open of the same bytes with the same suite and an info of the same length.
func BenchmarkBareHPKE_1KiB(b *testing.B) {
	for _, k := range benchKEMs {
		b.Run(k.name, func(b *testing.B) {
			sk, err := k.hpke.GenerateKey()
			if err != nil {
				b.Fatal(err)
			}
			pt := benchPayload()
			b.ReportAllocs()
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				bareSealOpen(b, sk, pt)
			}
		})
	}
}

// BenchmarkSealOpenVsBare_1KiB alternates this package's Seal+Open and bare
// crypto/hpke Seal+Open of the same bytes in every iteration, and reports
// the ratio of their median per-iteration times as the "x_bare" metric.
// Interleaving and the median keep the ratio meaningful on a shared machine
// whose load changes during the run.
func BenchmarkSealOpenVsBare_1KiB(b *testing.B) {
	for _, k := range benchKEMs {
		b.Run(k.name, func(b *testing.B) {
			s, o := benchPair(b, k.kem)
			sk, err := k.hpke.GenerateKey()
			if err != nil {
				b.Fatal(err)
			}
			pt := benchPayload()
			var ours, bare []time.Duration
			for b.Loop() {
				t0 := time.Now()
				sealOpen(b, s, o, pt)
				t1 := time.Now()
				bareSealOpen(b, sk, pt)
				t2 := time.Now()
				ours = append(ours, t1.Sub(t0))
				bare = append(bare, t2.Sub(t1))
			}
			if m := testkit.Median(bare); m > 0 {
				b.ReportMetric(float64(testkit.Median(ours))/float64(m), "x_bare")
			}
		})
	}
}

// BenchmarkSealedRoundTrip_1KiB measures a full exchange with a sealed reply:
// Seal, Open, SealReply, OpenReply, with 1 KiB each way.
func BenchmarkSealedRoundTrip_1KiB(b *testing.B) {
	s, o := benchPair(b, envelope.KEMX25519, envelope.WithSealedReplies())
	pt := benchPayload()
	b.ReportAllocs()
	for b.Loop() {
		ro, rs := sealOpen(b, s, o, pt)
		body, err := rs.SealReply(pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ro.OpenReply(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSharedSecretSealOpen_1KiB measures shared-secret mode Seal plus
// Open of 1 KiB.
func BenchmarkSharedSecretSealOpen_1KiB(b *testing.B) {
	secret, _ := envelope.GenerateSecret()
	s, _ := envelope.NewSharedSecretSealer(secret)
	o, _ := envelope.NewSharedSecretOpener(secret)
	pt := benchPayload()
	b.ReportAllocs()
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		sealOpen(b, s, o, pt)
	}
}
