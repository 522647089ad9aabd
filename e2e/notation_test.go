package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestNotationInterop (issue 10, Notation): the real notation CLI makes
// test certificates (`notation cert generate-test`, a self-signed
// code-signing certificate in its ca trust store) and signs charts in the
// distribution registry (JWS and COSE envelopes, attached through the
// referrers tag fallback). `chartproof verify` accepts what the trusted
// certificate signed, as `notation verify` does under the equivalent
// trustpolicy.json, and refuses with UntrustedSigner what another
// certificate with a trusted-looking subject signed, as notation does; an
// unsigned chart is NoSignature.
func TestNotationInterop(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := isolatedEnv(t, "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	notation := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(tools.notation, args...)
		cmd.Dir, cmd.Env = home, env
		return runCommand(t, cmd)
	}
	mustNotation := func(args ...string) result {
		t.Helper()
		res := notation(args...)
		if res.code != 0 {
			t.Fatalf("notation %s: %s", strings.Join(args, " "), res)
		}
		return res
	}
	mustNotation("cert", "generate-test", "--default", "release.chartproof.test")
	mustNotation("cert", "generate-test", "other.chartproof.test")
	certPEM, err := os.ReadFile(filepath.Join(home, "config", "notation", "localkeys", "release.chartproof.test.crt"))
	if err != nil {
		t.Fatal(err)
	}
	const identity = "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=release.chartproof.test"
	trustPolicy := `{"version": "1.0", "trustPolicies": [{"name": "chartproof", "registryScopes": ["*"],
		"signatureVerification": {"level": "strict"}, "trustStores": ["ca:release.chartproof.test"],
		"trustedIdentities": ["` + identity + `"]}]}`
	if err := os.WriteFile(filepath.Join(home, "config", "notation", "trustpolicy.json"), []byte(trustPolicy), 0o600); err != nil {
		t.Fatal(err)
	}

	host := startRegistry(t).Host
	policyFile := writeNotationPolicy(t, host+"/charts/*/hello", string(certPEM), identity)
	tests := []struct {
		name, repo string
		sign       []string // notation sign flags; nil: unsigned
		wantCode   string
	}{
		{"control: JWS by the trusted certificate", "jws", []string{}, chartproofv1.ReasonVerified},
		{"control: COSE by the trusted certificate", "cose", []string{"--signature-format", "cose"}, chartproofv1.ReasonVerified},
		{"signed with another certificate", "other", []string{"--key", "other.chartproof.test"}, chartproofv1.ReasonUntrustedSigner},
		{"unsigned", "unsigned", nil, chartproofv1.ReasonNoSignature},
	}
	for _, tc := range tests {
		digest := pushChart(t, host, "charts/"+tc.repo+"/hello", chartVersion)
		ref := host + "/charts/" + tc.repo + "/hello@" + digest
		if tc.sign != nil {
			mustNotation(append(append([]string{"sign", "--insecure-registry"}, tc.sign...), ref)...)
		}
		nv := notation("verify", "--insecure-registry", ref)
		if (nv.code == 0) != (tc.wantCode == chartproofv1.ReasonVerified) {
			t.Errorf("%s: notation verify: %s; want it to accept only what the trusted certificate signed", tc.name, nv)
		}
		res, out := chartproofVerify(t, "oci://"+ref, policyFile)
		if tc.wantCode == chartproofv1.ReasonVerified {
			if res.code != 0 || len(out.Accepted) != 1 || out.Accepted[0].Layout != "notation" {
				t.Errorf("%s: chartproof verify: %s; want exit 0, accepted by the notation signature", tc.name, res)
			}
			continue
		}
		if res.code != 1 || len(out.codes()) == 0 || out.codes()[0] != tc.wantCode {
			t.Errorf("%s: chartproof verify: %s; want exit 1, %s", tc.name, res, tc.wantCode)
		}
	}
}

// writeNotationPolicy writes a ClusterTrustPolicy with one notation
// authority: certPEM in its ca trust store, identity trusted.
func writeNotationPolicy(t *testing.T, glob, certPEM, identity string) string {
	t.Helper()
	ctp := chartproofv1.ClusterTrustPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: chartproofv1.GroupVersion.String(), Kind: "ClusterTrustPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "notation"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{glob},
			Authorities: []chartproofv1.Authority{{Name: "release", Notation: &chartproofv1.NotationAuthority{
				TrustStore:        chartproofv1.NotationTrustStore{CA: &chartproofv1.CertificatesSource{Certificates: certPEM}},
				TrustedIdentities: []string{identity},
			}}},
		},
	}
	data, err := yaml.Marshal(ctp)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
