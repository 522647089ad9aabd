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

// BenchmarkEvaluateAttestations is the judgement of BenchmarkEvaluate's
// signatures under a policy that also requires two attestations (issue
// 15): SLSA provenance as GitHub writes it, with a condition over its
// workflow and builder, and an SBOM whose condition joins the provenance's
// run. What it adds to BenchmarkEvaluate is what two attestations cost in
// process once verified.
func BenchmarkEvaluateAttestations(b *testing.B) {
	spec := keySpec(2, "", "alice", "bob", "carol")
	spec.Repositories = []string{"registry.example.com/**"}
	spec.Attestations = []chartproofv1.AttestationRequirement{
		{Name: "provenance", PredicateType: slsaV1, Condition: `predicate.buildDefinition.buildType == "https://actions.github.io/buildtypes/workflow/v1" &&
predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/example/charts" &&
predicate.buildDefinition.externalParameters.workflow.ref == "refs/heads/main" &&
predicate.runDetails.builder.id == "https://github.com/actions/runner/github-hosted"`},
		{Name: "sbom", PredicateType: spdx, Condition: `predicate.creationInfo.comment == attestations.provenance.predicate.runDetails.metadata.invocationId`},
	}
	p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, nil)
	if err != nil {
		b.Fatal(err)
	}
	prov := `{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1",` +
		`"externalParameters":{"workflow":{"ref":"refs/heads/main","repository":"https://github.com/example/charts","path":".github/workflows/release.yml"}},` +
		`"internalParameters":{"github":{"event_name":"push","repository_id":"1","repository_owner_id":"2"}},` +
		`"resolvedDependencies":[{"uri":"git+https://github.com/example/charts@refs/heads/main","digest":{"gitCommit":"7b3f0c1d"}}]},` +
		`"runDetails":{"builder":{"id":"https://github.com/actions/runner/github-hosted"},"metadata":{"invocationId":"https://github.com/example/charts/actions/runs/1/attempts/1"}}}`
	ev := policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{
		signed("alice", digestA), signed("bob", digestA),
		{Layout: policy.LayoutSigstoreBundle, Ref: "sha256:x", Problem: "does not verify"},
		{Layout: policy.LayoutCosignLegacy, Ref: "sha256:y", Malformed: true, Problem: "not base64"},
	}, Attestations: []policy.Signature{
		attested("", "alice", slsaV1, prov, digestA),
		attested("", "bob", spdx, `{"spdxVersion":"SPDX-2.3","creationInfo":{"comment":"https://github.com/example/charts/actions/runs/1/attempts/1"}}`, digestA),
	}}
	b.ReportAllocs()
	for b.Loop() {
		if v := policy.Evaluate(p, ev); !v.Passed() {
			b.Fatalf("verdict %s %+v, want Verified", v.Code(), v.Reasons)
		}
	}
}
