package cli_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/cli"
)

// platformPolicy is a mandatory ClusterTrustPolicy over every chart of the
// registry.
const platformPolicy = `apiVersion: delivery.chartproof.dev/v1alpha1
kind: ClusterTrustPolicy
metadata:
  name: platform
spec:
  namespaceSelector: {}
  repositories:
  - {{REGISTRY}}/charts/**
  authorities:
  - name: platform-ci
    key:
      publicKey: |
        {{PEM}}
`

// TestVerifyMandatory (THREATS TEN-06): `chartproof verify` gives the
// cluster's verdict for a namespace a mandatory ClusterTrustPolicy binds. A
// chart the named policy accepts is refused when the mandatory policy's
// signer did not sign it (the reason names the policy); the twin, signed by
// both, is allowed and the output lists the mandatory policy and its
// signer. --require-cluster-policy refuses a chart only a TrustPolicy judges
// (NoClusterPolicy); twins: a ClusterTrustPolicy named, or a mandatory one.
func TestVerifyMandatory(t *testing.T) {
	w := newWorld(t, worldOptions{})
	d := w.signedHello(t)
	ref := w.ref("charts/hello", d)
	team := writeFile(t, w.render(teamSecretRef, w.signer)+"---\n"+w.render(teamSecret, w.signer))
	platform := w.policyFile(t, platformPolicy, w.other)

	res := verify(t, ref, "--policy", team, "--mandatory-policy", platform, "--plain-http", "--output", "json")
	out := parseOutput(t, res.stdout)
	if res.code != cli.ExitDenied || out.Allowed || len(out.Reasons) == 0 || out.Reasons[0].Code != chartproofv1.ReasonUntrustedSigner || out.Reasons[0].Policy != "ClusterTrustPolicy platform" {
		t.Fatalf("verify with a mandatory policy the chart does not satisfy: exit %d %+v; want denied, UntrustedSigner under ClusterTrustPolicy platform", res.code, out)
	}

	w.signLegacy(t, "charts/hello", d, d, w.other)
	res = verify(t, ref, "--policy", team, "--mandatory-policy", platform, "--plain-http", "--output", "json")
	out = parseOutput(t, res.stdout)
	if res.code != cli.ExitAllowed || !out.Passed {
		t.Fatalf("verify signed by both: exit %d %+v; want allowed", res.code, out)
	}
	if diff := cmp.Diff([]string{"ClusterTrustPolicy platform"}, out.Mandatory); diff != "" {
		t.Errorf("mandatory policies (-want +got):\n%s", diff)
	}
	text := verify(t, ref, "--policy", team, "--mandatory-policy", platform, "--plain-http")
	for _, want := range []string{"  mandatory policy: ClusterTrustPolicy platform\n", "signed by platform-ci of ClusterTrustPolicy platform ("} {
		if !strings.Contains(text.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, text.stdout)
		}
	}

	res = verify(t, ref, "--policy", team, "--require-cluster-policy", "--plain-http", "--output", "json")
	if out := parseOutput(t, res.stdout); res.code != cli.ExitDenied || reasonCodes(out)[0] != chartproofv1.ReasonNoClusterPolicy {
		t.Errorf("--require-cluster-policy with a TrustPolicy alone: exit %d reasons %v; want denied, NoClusterPolicy", res.code, reasonCodes(out))
	}
	for _, args := range [][]string{
		{"--policy", w.policyFile(t, clusterInline, w.signer)},
		{"--policy", team, "--mandatory-policy", platform},
	} {
		res = verify(t, append(append([]string{ref, "--require-cluster-policy", "--plain-http"}, args...), "--output", "json")...)
		if res.code != cli.ExitAllowed {
			t.Errorf("--require-cluster-policy %v: exit %d %s; want allowed", args, res.code, res.stdout)
		}
	}

	res = verify(t, ref, "--policy", team, "--mandatory-policy", team, "--plain-http")
	if res.code != cli.ExitUsage || !strings.Contains(res.stderr, "only a ClusterTrustPolicy can be mandatory") {
		t.Errorf("a TrustPolicy as --mandatory-policy: exit %d %s; want a usage error", res.code, res.stderr)
	}
}
