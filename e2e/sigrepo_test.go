package e2e

import (
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestCosignSignatureRepository (issue 10, signatures in another
// repository): the real cosign signs a chart with COSIGN_REPOSITORY set, so
// its signature (v2: the legacy .sig tag; v3: a bundle referrer, through the
// tag fallback) lands in another repository of the distribution registry.
// cosign verify finds it only with COSIGN_REPOSITORY; `chartproof verify`
// accepts the chart only with --signature-repository naming that
// repository, under a policy that allows it (spec.signatureRepositories);
// under one that does not, SignatureRepositoryNotAllowed (THREATS REG-09).
// The twin without the flag finds no signature (NoSignature).
func TestCosignSignatureRepository(t *testing.T) {
	for _, v3 := range []bool{false, true} {
		t.Run(map[bool]string{false: "cosign v2, legacy layout", true: "cosign v3, bundle referrer"}[v3], func(t *testing.T) {
			t.Parallel()
			host := startRegistry(t).Host
			digest := pushChart(t, host, chartRepo, chartVersion)
			ref := host + "/" + chartRepo + "@" + digest
			sigRepo := host + "/signatures/hello"
			bin := tools.cosignV2
			if v3 {
				bin = tools.cosignV3
			}
			cosign := newCosign(t, bin, v3)
			key, pub := cosign.generateKeyPair("signer")
			plain := cosign.env
			cosign.env = append(append([]string{}, plain...), "COSIGN_REPOSITORY="+sigRepo)
			args := []string{"sign", "--key", key, "--tlog-upload=false"}
			verifyArgs := []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry"}
			if v3 {
				args = []string{"sign", "--key", key, "--signing-config", cosign.signingConfig, "--trusted-root", cosign.trustedRoot}
				verifyArgs = append(verifyArgs, "--trusted-root", cosign.trustedRoot)
			}
			cosign.mustRun(append(args, "--allow-http-registry", "--yes", ref)...)
			if res := cosign.run(append(verifyArgs, ref)...); res.code != 0 {
				t.Fatalf("cosign verify with COSIGN_REPOSITORY: %s", res)
			}
			cosign.env = plain
			if res := cosign.run(append(verifyArgs, ref)...); res.code == 0 {
				t.Fatalf("cosign verify without COSIGN_REPOSITORY accepted: %s", res)
			}

			pemText, _ := readPublicKey(t, pub)
			policyFile := writePolicyFile(t, host+"/"+chartRepo, pemText)
			allowing := writePolicyFileWith(t, host+"/"+chartRepo, pemText, func(s *chartproofv1.TrustPolicySpec) {
				s.SignatureRepositories = []string{host + "/signatures/*"}
			})
			res := runCLI(t, "verify", "oci://"+ref, "--policy", allowing, "--plain-http", "--signature-repository", "oci://"+sigRepo)
			if res.code != 0 {
				t.Errorf("chartproof verify --signature-repository under a policy that allows it: %s; want exit 0", res)
			}
			// THREATS REG-09: only where the policy says.
			res = runCLI(t, "verify", "oci://"+ref, "--policy", policyFile, "--plain-http", "--signature-repository", "oci://"+sigRepo, "--output", "json")
			if res.code != 1 || !strings.Contains(res.stdout, chartproofv1.ReasonSignatureRepositoryNotAllowed) {
				t.Errorf("chartproof verify --signature-repository under a policy that does not allow it: %s; want exit 1, %s", res, chartproofv1.ReasonSignatureRepositoryNotAllowed)
			}
			res, out := chartproofVerify(t, "oci://"+ref, policyFile)
			if res.code != 1 || len(out.codes()) == 0 || out.codes()[0] != chartproofv1.ReasonNoSignature {
				t.Errorf("chartproof verify without --signature-repository: %s; want exit 1, NoSignature", res)
			}
		})
	}
}
