package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// slsaPredicate is an SLSA v1 predicate as GitHub's
// attest-build-provenance writes it, built from ref.
func slsaPredicate(ref string) string {
	return `{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1",` +
		`"externalParameters":{"workflow":{"ref":"` + ref + `","repository":"https://github.com/example/charts","path":".github/workflows/release.yml"}},` +
		`"internalParameters":{"github":{"event_name":"push"}},"resolvedDependencies":[]},` +
		`"runDetails":{"builder":{"id":"https://github.com/actions/runner/github-hosted"},"metadata":{"invocationId":"https://github.com/example/charts/actions/runs/1/attempts/1"}}}`
}

// TestCosignAttestInterop (issue 15): SLSA provenance attached by the real
// `cosign attest --key` — v2 in its `.att` tag, v3 as a bundle referrer in
// the fallback tag, whose index carries no annotation (cosign#4641) — is
// read and verified by the real `chartproof verify`, which allows the chart
// when the predicate satisfies the policy's condition and names the
// attestation that held; the control twin, a predicate of another ref, is
// refused with PredicateRejected naming the requirement. cosign itself
// agrees each attestation is genuine (`cosign verify-attestation`, v2 and
// v3).
func TestCosignAttestInterop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		v3     bool
		flags  []string
		layout string
	}{
		{"v2/.att", false, []string{"--tlog-upload=false"}, layoutLegacy},
		{"v3/bundle/referrers-tag", true, []string{"--tlog-upload=false", "--use-signing-config=false", "--new-bundle-format"}, layoutBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, ref := range []string{"refs/heads/main", "refs/heads/feature"} {
				host := startRegistry(t).Host
				v2, v3 := newCosign(t, tools.cosignV2, false), newCosign(t, tools.cosignV3, true)
				c := v2
				if tc.v3 {
					c = v3
				}
				// The chart is signed by the release key, in the layout of
				// the cosign that attests: cosign v2's verify-attestation
				// reads the referrers tag too, and fails on a bundle by
				// another key there.
				digest := pushChart(t, host, chartRepo, chartVersion)
				image := host + "/" + chartRepo + "@" + digest
				releaseKey, releasePubFile := c.generateKeyPair("release")
				signArgs := []string{"sign", "--key", releaseKey, "--tlog-upload=false"}
				if tc.v3 {
					signArgs = append(signArgs, "--use-signing-config=false", "--new-bundle-format", "--trusted-root", v3.trustedRoot)
				}
				c.mustRun(append(signArgs, "--allow-http-registry", "--yes", image)...)
				releasePub, _ := readPublicKey(t, releasePubFile)
				key, pub := c.generateKeyPair("builder")
				pred := filepath.Join(t.TempDir(), "provenance.json")
				if err := os.WriteFile(pred, []byte(slsaPredicate(ref)), 0o600); err != nil {
					t.Fatal(err)
				}
				args := append([]string{"attest", "--key", key, "--type", "slsaprovenance1", "--predicate", pred}, tc.flags...)
				c.mustRun(append(args, "--allow-http-registry", "--yes", image)...)

				// Both cosign versions agree the attestation is genuine (each
				// needs a trusted root, even to verify with a key alone).
				for _, verifier := range []*cosignCLI{v2, v3} {
					vargs := []string{"verify-attestation", "--key", pub, "--type", "slsaprovenance1", "--insecure-ignore-tlog=true",
						"--allow-http-registry", "--trusted-root", v3.trustedRoot}
					if !tc.v3 {
						// The `.att` tag: the bundles in the referrers tag are
						// the chart's signature, by another key.
						vargs = append(vargs, "--new-bundle-format=false")
					}
					if res := verifier.run(append(vargs, image)...); res.code != 0 {
						t.Errorf("cosign (%s) verify-attestation %s: got %s, want exit 0", verifier.bin, image, res)
					}
				}

				builderPEM, _ := readPublicKey(t, pub)
				policyFile := writePolicyFileWith(t, host+"/charts/*", releasePub, func(s *chartproofv1.TrustPolicySpec) {
					s.Attestations = []chartproofv1.AttestationRequirement{{
						Name:          "provenance",
						PredicateType: "https://slsa.dev/provenance/v1",
						Authorities:   []chartproofv1.Authority{{Name: "github", Key: &chartproofv1.KeyAuthority{PublicKey: builderPEM}}},
						Condition: `predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/example/charts" &&
predicate.buildDefinition.externalParameters.workflow.ref == "refs/heads/main"`,
					}}
				})
				res, out := chartproofVerify(t, "oci://"+image, policyFile)
				if ref == "refs/heads/main" {
					if res.code != 0 || !out.Passed || len(out.Attestations) != 1 {
						t.Fatalf("chartproof verify, provenance of main: %s; want exit 0 with the provenance held", res)
					}
					if a := out.Attestations[0]; a.Name != "provenance" || a.Authority != "provenance/github" || a.Layout != tc.layout {
						t.Errorf("held %+v; want provenance by provenance/github in %s", a, tc.layout)
					}
					continue
				}
				if res.code == 0 || out.Allowed || len(out.Reasons) == 0 || out.Reasons[0].Code != chartproofv1.ReasonPredicateRejected ||
					!strings.Contains(out.Reasons[0].Message, "attestation provenance") {
					t.Fatalf("chartproof verify, provenance of a feature branch: %s; want PredicateRejected naming provenance", res)
				}
			}
		})
	}
}
