package policy_test

import (
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
)

// BenchmarkEvaluate is the judgement alone: a policy of three key
// authorities, threshold two, over four signatures (two trusted, one
// untrusted, one malformed).
func BenchmarkEvaluate(b *testing.B) {
	spec := keySpec(2, "", "alice", "bob", "carol")
	spec.Repositories = []string{"registry.example.com/**"}
	p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, nil)
	if err != nil {
		b.Fatal(err)
	}
	ev := policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{
		signed("alice", digestA), signed("bob", digestA),
		{Layout: policy.LayoutSigstoreBundle, Ref: "sha256:x", Problem: "does not verify"},
		{Layout: policy.LayoutCosignLegacy, Ref: "sha256:y", Malformed: true, Problem: "not base64"},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if v := policy.Evaluate(p, ev); !v.Passed() {
			b.Fatalf("verdict %s, want Verified", v.Code())
		}
	}
	_ = chartproofv1.ReasonVerified
}
