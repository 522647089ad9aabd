package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestKeylessAttestInterop (issue 15): SLSA provenance attested keyless by
// the real `cosign attest` (v3) on the throwaway Sigstore (Fulcio, Rekor v2,
// the TSA): a Sigstore bundle referrer in the fallback tag, whose
// certificate names the release workflow. The real `chartproof verify`
// allows the chart under a policy requiring that provenance from that
// workflow's identity, naming the attestation that held and its signer; its
// twins are refused: the same provenance required from another identity
// (IdentityMismatch, the requirement named), and a provenance of another
// ref (PredicateRejected). cosign itself agrees the attestation is genuine
// (`cosign verify-attestation` naming the identity).
func TestKeylessAttestInterop(t *testing.T) {
	cosign := newCosign(t, tools.cosignV3, true)
	ss := startSigstore(t, cosign)
	trustedRoot, err := os.ReadFile(ss.trustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t)
	workflow := ss.uri.URL + "/example/charts/.github/workflows/release.yml@refs/heads/main"
	id := chartproofv1.Identity{Issuer: ss.uri.URL, Subject: workflow}

	for _, tc := range []struct {
		name, repo, ref string
		// requiredSubject is the identity the requirement names.
		requiredSubject string
		want            string // "" allowed
	}{
		{"provenance of main, from the workflow", "main/hello", "refs/heads/main", workflow, ""},
		{"provenance required from another workflow", "other/hello", "refs/heads/main",
			ss.uri.URL + "/example/charts/.github/workflows/other.yml@refs/heads/main", chartproofv1.ReasonIdentityMismatch},
		{"provenance of a feature branch", "feature/hello", "refs/heads/feature", workflow, chartproofv1.ReasonPredicateRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := signChart(t, cosign, ss, reg.Host, tc.repo, ss.uri.token(t, workflow))
			pred := filepath.Join(t.TempDir(), "provenance.json")
			writeFile(t, pred, []byte(slsaPredicate(tc.ref)))
			cosign.mustRun("attest", "--yes", "--identity-token", ss.uri.token(t, workflow),
				"--signing-config", ss.signingConfig, "--trusted-root", ss.trustedRoot,
				"--type", "slsaprovenance1", "--predicate", pred, "--allow-http-registry", c.ref)
			if res := cosign.run(cosignVerifyArgs(ss, id, "verify-attestation", "--type", "slsaprovenance1", "--allow-http-registry", c.ref)...); res.code != 0 {
				t.Errorf("cosign verify-attestation naming the workflow: got %s, want exit 0", res)
			}

			spec := keylessPolicySpec(reg.Host+"/"+tc.repo, policyFileNamespace, id)
			builder := *spec.Authorities[0].DeepCopy()
			builder.Name = "github"
			builder.Keyless.Identities = []chartproofv1.Identity{{Issuer: ss.uri.URL, Subject: tc.requiredSubject}}
			spec.Attestations = []chartproofv1.AttestationRequirement{{
				Name: "provenance", PredicateType: "https://slsa.dev/provenance/v1",
				Authorities: []chartproofv1.Authority{builder},
				Condition:   `predicate.buildDefinition.externalParameters.workflow.ref == "refs/heads/main"`,
			}}
			res, out := chartproofVerify(t, "oci://"+c.ref, writePolicyWithRoot(t, spec, trustedRoot))
			if tc.want == "" {
				if res.code != 0 || !out.Passed || len(out.Attestations) != 1 {
					t.Fatalf("chartproof verify: %s; want exit 0 with the provenance held", res)
				}
				if a := out.Attestations[0]; a.Name != "provenance" || a.Authority != "provenance/github" || a.Layout != layoutBundle {
					t.Errorf("held %+v; want provenance by provenance/github, a bundle", a)
				}
				if !strings.Contains(res.stdout, workflow) {
					t.Errorf("chartproof verify does not name the attestation's signer %s:\n%s", workflow, res.stdout)
				}
				return
			}
			if res.code == 0 || out.Allowed || len(out.Reasons) == 0 || out.Reasons[0].Code != tc.want ||
				!strings.Contains(out.Reasons[0].Message, "attestation provenance") {
				t.Fatalf("chartproof verify: %s; want %s naming the requirement", res, tc.want)
			}
		})
	}
}
