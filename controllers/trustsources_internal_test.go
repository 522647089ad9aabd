package controllers

import (
	"slices"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestTrustSourcesOfAttestations (issue 15): what an attestation
// requirement's own authorities read is read and watched as the policy's
// authorities' is — a key's Secret, an x509 authority (whose revocation
// status is checked in the background), a TUF repository — so that a
// change of it re-verifies at once. The control: the same policy without
// the requirement reads none of them.
func TestTrustSourcesOfAttestations(t *testing.T) {
	spec := chartproofv1.TrustPolicySpec{
		Authorities: []chartproofv1.Authority{{Name: "release", Key: &chartproofv1.KeyAuthority{PublicKey: "PEM"}}},
	}
	control := spec
	spec.Attestations = []chartproofv1.AttestationRequirement{{
		Name: "provenance", PredicateType: "https://slsa.dev/provenance/v1",
		Authorities: []chartproofv1.Authority{
			{Name: "builder", Key: &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "builder-key"}}},
			{Name: "pki", X509: &chartproofv1.X509Authority{}},
			{Name: "github", Keyless: &chartproofv1.KeylessAuthority{TrustedRoot: &chartproofv1.TrustedRootReference{
				TUF: &chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com"}}}},
		},
	}}
	for _, tc := range []struct {
		name string
		spec chartproofv1.TrustPolicySpec
		want bool
	}{{"with the requirement", spec, true}, {"control, without", control, false}} {
		if got := slices.Contains(trustSources("ns", tc.spec), "Secret/ns/builder-key"); got != tc.want {
			t.Errorf("%s: trustSources lists the builder's Secret: %v, want %v", tc.name, got, tc.want)
		}
		if got := len(hasX509(tc.spec)) > 0; got != tc.want {
			t.Errorf("%s: hasX509 %v, want %v", tc.name, got, tc.want)
		}
		if got := slices.Contains(tufLocations(tc.spec), "https://tuf.example.com"); got != tc.want {
			t.Errorf("%s: tufLocations lists the requirement's TUF repository: %v, want %v", tc.name, got, tc.want)
		}
	}
}
