package verify

import (
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestCapsAgree: Evaluate weighs every signature the collector may return.
func TestCapsAgree(t *testing.T) {
	if policy.MaxSignatures != limits.MaxSignatures {
		t.Errorf("policy.MaxSignatures = %d, limits.MaxSignatures = %d; want them equal", policy.MaxSignatures, limits.MaxSignatures)
	}
	if policy.MaxAttestationBytes != limits.MaxSignatureLayerBytes {
		t.Errorf("policy.MaxAttestationBytes = %d, limits.MaxSignatureLayerBytes = %d; want them equal", policy.MaxAttestationBytes, limits.MaxSignatureLayerBytes)
	}
}

// TestPreparedLikely: the hints that order cryptographic checks. A keyless
// bundle is likely when the identity its certificate names, read before
// anything is verified, matches a keyless authority; a keyed bundle when
// its key hint names a key authority's key, or it has no hint. The hint
// changes only the order: the verdict of Run is the same either way (the
// unlikely ones are refused by Run too).
func TestPreparedLikely(t *testing.T) {
	s := newSigstore(t)
	kp0, kv := compileKeyless(t, s, keylessSpec(1, releaseTags), false)
	stmt := testsign.Statement(repo, digestA)
	evil := ghCert()
	evil.Issuer = "https://evil.example"
	for _, tc := range []struct {
		name       string
		cert       testsign.Cert
		wantLikely bool
		wantCode   string
	}{
		{"control: a trusted identity", ghCert(), true, chartproofv1.ReasonVerified},
		{"another issuer", evil, false, chartproofv1.ReasonIdentityMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.SignKeyless(stmt, testsign.KeylessOptions{Cert: tc.cert})
			if err != nil {
				t.Fatal(err)
			}
			p := kv.prepareBundle(b, useReferrer)
			if p.Likely != tc.wantLikely || !p.Checked() {
				t.Errorf("Likely = %v, Checked = %v; want %v, true", p.Likely, p.Checked(), tc.wantLikely)
			}
			sig, _ := p.Run()
			ev := policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}}
			if got := policy.Evaluate(kp0, ev).Code(); got != tc.wantCode {
				t.Errorf("verdict %s; want %s", got, tc.wantCode)
			}
		})
	}

	trusted, _ := testsign.NewKey("p256")
	other, _ := testsign.NewKey("p256")
	kp, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "k"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{"registry.example.com/team/*"},
		Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: trusted.PublicPEM()}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(kp.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		key        *testsign.Key
		wantLikely bool
	}{
		{"control: the trusted key's hint", trusted, true},
		{"another key's hint", other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := testsign.Bundle(stmt, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if p := v.prepareBundle(b, useReferrer); p.Likely != tc.wantLikely {
				t.Errorf("Likely = %v; want %v", p.Likely, tc.wantLikely)
			}
		})
	}
}
