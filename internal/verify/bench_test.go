package verify

import (
	"testing"

	"github.com/chartproof/chartproof/internal/testsign"
)

// BenchmarkLegacy is one cosign simple-signing signature checked against
// one ECDSA P-256 authority: payload parsing and the signature.
func BenchmarkLegacy(b *testing.B) {
	k, err := testsign.NewKey("p256")
	if err != nil {
		b.Fatal(err)
	}
	v := verifierFor(b, map[string]*testsign.Key{"team": k})
	payload := testsign.SimpleSigningPayload("r.example/app", digestA)
	sig := legacySig(b, k, payload)
	b.ReportAllocs()
	for b.Loop() {
		if s := v.Legacy(payload, map[string]string{SignatureAnnotation: sig}); s.Authority == "" {
			b.Fatalf("not verified: %s", s.Problem)
		}
	}
}

// BenchmarkBundle is one Sigstore bundle (DSSE, keyed) checked against one
// ECDSA P-256 authority with sigstore-go.
func BenchmarkBundle(b *testing.B) {
	k, err := testsign.NewKey("p256")
	if err != nil {
		b.Fatal(err)
	}
	v := verifierFor(b, map[string]*testsign.Key{"team": k})
	bundle, err := testsign.Bundle(testsign.Statement("app", digestA), k)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s, ok := v.Bundle(bundle); !ok || s.Authority == "" {
			b.Fatalf("not verified: %s", s.Problem)
		}
	}
}
