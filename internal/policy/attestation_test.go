package policy_test

import (
	"encoding/json"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
)

const (
	slsaV1 = "https://slsa.dev/provenance/v1"
	spdx   = "https://spdx.dev/Document"
)

// attested is an attestation of predicateType over subject, verified under
// authority (of set), with predicate as its predicate.
func attested(set, authority, predicateType, predicate, subject string) policy.Signature {
	return policy.Signature{
		Layout: policy.LayoutSigstoreBundle, Ref: "sha256:att-" + predicateType, Authority: authority, KeyID: "id-" + authority,
		Subjects: []string{subject}, PredicateType: predicateType,
		Attestation: &policy.AttestationFacts{
			Set: set, Claimed: predicateType, Predicate: json.RawMessage(predicate),
			Subject: []policy.StatementSubject{{Name: repo, Digest: map[string]string{"sha256": strings.TrimPrefix(subject, "sha256:")}}},
		},
	}
}

// TestAttestationConditionsCompile: a condition that does not compile, is
// not a boolean, reads a requirement not listed before it, or whose
// worst-case cost exceeds the limit makes the policy invalid, with a
// message naming the requirement; each has a control that compiles.
func TestAttestationConditionsCompile(t *testing.T) {
	for _, tc := range []struct {
		name, condition, control, want string
	}{
		{"syntax", `predicate.builder.id ==`, `predicate.builder.id == "x"`, "Syntax error"},
		{"not a bool", `predicate.builder.id`, `predicate.builder.id == "x"`, "not a bool"},
		{"a later requirement", `attestations.sbom.predicateType == "x"`, `attestations.provenance.predicateType == "x"`, "not a requirement listed before"},
		{"attestations as a whole", `size(attestations) == 1`, `has(attestations.provenance.predicate)`, "attestations.<name>"},
		{"cost", `predicate.materials.all(a, predicate.materials.all(b, a.uri != b.uri || a == b))`,
			`predicate.materials.all(a, a.uri.startsWith("git+https://github.com/example/"))`, "exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, twin := range []struct {
				cond string
				ok   bool
			}{{tc.condition, false}, {tc.control, true}} {
				spec := keySpec(1, "", "alice")
				spec.Attestations = []chartproofv1.AttestationRequirement{
					{Name: "provenance", PredicateType: slsaV1},
					{Name: "check", PredicateType: spdx, Condition: twin.cond},
					{Name: "sbom", PredicateType: spdx},
				}
				_, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, nil)
				switch {
				case twin.ok && err != nil:
					t.Fatalf("control %q: %v", twin.cond, err)
				case !twin.ok && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `attestation "check"`)):
					t.Fatalf("%q: error %v; want one naming attestation \"check\" and %q", twin.cond, err, tc.want)
				}
			}
		})
	}
	for _, tc := range []struct {
		name string
		mut  func(*chartproofv1.TrustPolicySpec)
		want string
	}{
		{"two requirements of one name", func(s *chartproofv1.TrustPolicySpec) {
			s.Attestations = append(s.Attestations, chartproofv1.AttestationRequirement{Name: "a", PredicateType: spdx})
		}, "listed twice"},
		{"a Helm provenance authority", func(s *chartproofv1.TrustPolicySpec) {
			s.Attestations[0].Authorities = []chartproofv1.Authority{{Name: "pgp", HelmProvenance: &chartproofv1.HelmProvenanceAuthority{}}}
		}, "signs charts, not in-toto attestations"},
		{"an authority named like a requirement's", func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Name = "a/builder"
		}, "may not contain /"},
		{"more than 4 authorities", func(s *chartproofv1.TrustPolicySpec) {
			for _, n := range []string{"k1", "k2", "k3", "k4", "k5"} {
				s.Attestations[0].Authorities = append(s.Attestations[0].Authorities, chartproofv1.Authority{Name: n, Key: &chartproofv1.KeyAuthority{PublicKey: pemFor["bob"]}})
			}
		}, "more than 4"},
	} {
		spec := keySpec(1, "", "alice")
		spec.Attestations = []chartproofv1.AttestationRequirement{{Name: "a", PredicateType: slsaV1}}
		if _, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Name: "p"}, spec, nil); err != nil {
			t.Fatalf("control of %s: %v", tc.name, err)
		}
		tc.mut(&spec)
		if _, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Name: "p"}, spec, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
}

// TestAttestationsJoin: a condition may join two attestations — the SBOM
// and the provenance come from the same workflow run — which no admission
// controller of images can (policy-controller#2005). The control: the same
// run passes; an SBOM of another run is refused with PredicateRejected.
// The provenance is signed by the requirement's own authority (the
// builder), which never counts for the chart's signatures.
func TestAttestationsJoin(t *testing.T) {
	spec := keySpec(1, "", "alice")
	spec.Attestations = []chartproofv1.AttestationRequirement{
		{Name: "provenance", PredicateType: slsaV1,
			Authorities: []chartproofv1.Authority{{Name: "builder", Key: &chartproofv1.KeyAuthority{PublicKey: pemFor["bob"]}}},
			Condition:   `predicate.runDetails.builder.id == "https://github.com/actions/runner/github-hosted"`},
		{Name: "sbom", PredicateType: spdx,
			Condition: `predicate.creationInfo.comment == attestations.provenance.predicate.runDetails.metadata.invocationId`},
	}
	p := compile(t, spec)
	prov := attested("provenance", "provenance/builder", slsaV1,
		`{"runDetails":{"builder":{"id":"https://github.com/actions/runner/github-hosted"},"metadata":{"invocationId":"run-1"}}}`, digestA)
	for _, tc := range []struct {
		run  string
		want string
	}{{"run-1", chartproofv1.ReasonVerified}, {"run-2", chartproofv1.ReasonPredicateRejected}} {
		sbom := attested("", "alice", spdx, `{"creationInfo":{"comment":"`+tc.run+`"}}`, digestA)
		v := policy.Evaluate(p, policy.Evidence{
			Repository: repo, Digest: digestA,
			Signatures:   []policy.Signature{signed("alice", digestA)},
			Attestations: []policy.Signature{prov, sbom},
		})
		if v.Code() != tc.want {
			t.Fatalf("SBOM of %s: %s %+v; want %s", tc.run, v.Code(), v.Reasons, tc.want)
		}
		if tc.want == chartproofv1.ReasonVerified {
			if len(v.Attestations) != 2 || v.Attestations[0].Authority != "provenance/builder" || v.Attestations[1].Authority != "alice" {
				t.Errorf("held %+v; want provenance by provenance/builder, sbom by alice", v.Attestations)
			}
			continue
		}
		if !strings.Contains(v.Reasons[0].Message, "attestation sbom") {
			t.Errorf("reason %q does not name the sbom requirement", v.Reasons[0].Message)
		}
	}

	// The builder's key signing the chart itself does not count for the
	// chart's signatures: only the policy's authorities do.
	v := policy.Evaluate(p, policy.Evidence{
		Repository: repo, Digest: digestA,
		Signatures:   []policy.Signature{signed("provenance/builder", digestA)},
		Attestations: []policy.Signature{prov, attested("", "alice", spdx, `{"creationInfo":{"comment":"run-1"}}`, digestA)},
	})
	if v.Allowed() {
		t.Errorf("a chart signed by the attestation's own authority only: allowed; want refused")
	}
}

// TestAttestationAuditAndSubject: Audit mode waives a failed attestation
// as it waives a failed signature (and says so); a statement naming
// another digest does not hold (AttestationSubjectMismatch); its control,
// naming the manifest digest, holds.
func TestAttestationAuditAndSubject(t *testing.T) {
	spec := keySpec(1, chartproofv1.ModeAudit, "alice")
	spec.Attestations = []chartproofv1.AttestationRequirement{{Name: "provenance", PredicateType: slsaV1}}
	p := compile(t, spec)
	v := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)}})
	if !v.Audited() || v.Code() != chartproofv1.ReasonAttestationMissing {
		t.Errorf("Audit without provenance: audited %v, %s; want audited, AttestationMissing", v.Audited(), v.Code())
	}
	// The subject is the manifest digest; a statement naming another
	// artifact does not hold.
	v = policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)},
		Attestations: []policy.Signature{attested("", "alice", slsaV1, `{}`, digestB)}})
	if v.Code() != chartproofv1.ReasonAttestationSubjectMismatch {
		t.Errorf("provenance of another digest: %s; want AttestationSubjectMismatch", v.Code())
	}
	v = policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)},
		Attestations: []policy.Signature{attested("", "alice", slsaV1, `{}`, digestA)}})
	if !v.Passed() || len(v.Attestations) != 1 {
		t.Errorf("control: %s %+v; want Verified with provenance held", v.Code(), v.Reasons)
	}
}
