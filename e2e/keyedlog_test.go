package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestKeyRequiresTransparencyLog signs two charts with the same key using
// the real `cosign sign --key` (v3): one logged in the local Rekor v2 and
// timestamped by the local TSA (the local Sigstore's signing config), one
// not logged (an empty signing config). Under a key authority with
// requireTransparencyLog and the local trusted root, `chartproof verify`
// and the manager accept the logged one, with its log entry and signing
// time in the evidence, and refuse the other with NotLogged; `cosign
// verify --key`, which requires the log for keys by default, agrees. The
// control twin: the same unlogged chart under the same key without the
// requirement is accepted.
func TestKeyRequiresTransparencyLog(t *testing.T) {
	cosign := newCosign(t, tools.cosignV3, true)
	ss := startSigstore(t, cosign)
	trustedRoot, err := os.ReadFile(ss.trustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t)
	key, pub := cosign.generateKeyPair("release")
	pubPEM, keyID := readPublicKey(t, pub)

	sign := func(repo, signingConfig string) keylessChart {
		t.Helper()
		c := keylessChart{repository: reg.Host + "/" + repo, digest: pushChart(t, reg.Host, repo, chartVersion)}
		c.ref = c.repository + "@" + c.digest
		cosign.mustRun("sign", "--yes", "--key", key, "--signing-config", signingConfig, "--trusted-root", ss.trustedRoot,
			"--allow-http-registry", c.ref)
		return c
	}
	logged := sign("logged/hello", ss.signingConfig)
	unlogged := sign("unlogged/hello", cosign.signingConfig) // no Rekor, no TSA
	glob := reg.Host + "/*/hello"

	keyAuthority := func(requireLog bool, rootNamespace string) chartproofv1.TrustPolicySpec {
		spec := keyPolicySpec(glob, pubPEM)
		if requireLog {
			spec.Authorities[0].Key.RequireTransparencyLog = true
			spec.Authorities[0].Key.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{
				Namespace: rootNamespace, Name: trustedRootConfigMap, Key: trustedRootKey}}
		}
		return spec
	}

	t.Run("verify", func(t *testing.T) {
		requireLog := writePolicyWithRoot(t, keyAuthority(true, policyFileNamespace), trustedRoot)
		for _, tc := range []struct {
			name   string
			chart  keylessChart
			policy string
			want   string // reason code; "" for accepted
		}{
			{"control: logged", logged, requireLog, ""},
			{"not logged (SIG-07)", unlogged, requireLog, chartproofv1.ReasonNotLogged},
			{"control: not logged, log not required", unlogged, writePolicyFile(t, glob, pubPEM), ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, _ := chartproofVerify(t, "oci://"+tc.chart.ref, tc.policy)
				out := parseKeyless(t, res)
				if tc.want != "" {
					if res.code != 1 || out.Allowed || !slices.Equal(out.codes(), []string{tc.want}) {
						t.Fatalf("chartproof verify: exit %d allowed=%t reasons %v, want exit 1, denied, [%s]\n%s", res.code, out.Allowed, out.codes(), tc.want, res)
					}
				} else if res.code != 0 || !out.Allowed || len(out.Accepted) != 1 || out.Accepted[0].KeyID != keyID {
					t.Fatalf("chartproof verify: exit %d allowed=%t accepted %+v, want exit 0 and key %s\n%s", res.code, out.Allowed, out.Accepted, keyID, res)
				}
				if tc.policy == requireLog && tc.want == "" {
					if a := out.Accepted[0]; a.Log == nil || a.SignedAt == nil {
						t.Errorf("accepted %+v: want its Rekor v2 entry and the TSA's signing time", a)
					}
				}
			})
		}
		// cosign requires the log for keys unless told otherwise.
		if res := cosign.run("verify", "--key", pub, "--trusted-root", ss.trustedRoot, "--allow-http-registry", logged.ref); res.code != 0 {
			t.Errorf("cosign verify, logged: %s, want exit 0", res)
		}
		if res := cosign.run("verify", "--key", pub, "--trusted-root", ss.trustedRoot, "--allow-http-registry", unlogged.ref); res.code == 0 {
			t.Errorf("cosign verify, not logged: exit 0, want a refusal\n%s", res)
		}
	})

	t.Run("manager", func(t *testing.T) {
		manager, _ := startManager(t, "--leader-elect=false")
		t.Cleanup(func() { stopManager(t, manager) })
		ns := newNamespace(t, "e2e-keyedlog-")
		mustCreate(t, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: trustedRootConfigMap},
			Data:       map[string]string{trustedRootKey: string(trustedRoot)},
		})
		mustCreate(t, &chartproofv1.TrustPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "logged"}, Spec: keyAuthority(true, "")})
		t.Cleanup(func() { deleteReleases(t, manager, ns, "logged", "unlogged") })
		mustCreate(t, newRelease(ns, "logged", "oci://"+logged.repository, chartVersion, "logged"))
		mustCreate(t, newRelease(ns, "unlogged", "oci://"+unlogged.repository, chartVersion, "logged"))

		vhr := waitCondition(t, manager, ns, "logged", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
		if len(vhr.Status.Evidence) != 1 {
			t.Fatalf("logged: status.evidence %+v, want one signature", vhr.Status.Evidence)
		}
		if e := vhr.Status.Evidence[0]; e.KeyID != keyID || e.LogIndex == nil || e.LogID == "" || e.SignedAt == nil {
			t.Errorf("logged: evidence %+v, want key %s with its log entry and signing time", e, keyID)
		}
		checkInstalled(t, ns, "logged", logged.digest)

		waitCondition(t, manager, ns, "unlogged", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonNotLogged)
		checkNothingInstalled(t, ns, "unlogged")
	})
}

// policyFileNamespace is the namespace of the ConfigMaps in policy files.
const policyFileNamespace = "chartproof-system"

// writePolicyWithRoot writes a ClusterTrustPolicy with spec and the
// ConfigMap holding trustedRoot (policyFileNamespace/trustedRootConfigMap),
// as `chartproof verify --policy` reads them.
func writePolicyWithRoot(t *testing.T, spec chartproofv1.TrustPolicySpec, trustedRoot []byte) string {
	t.Helper()
	docs := []any{
		chartproofv1.ClusterTrustPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: chartproofv1.GroupVersion.String(), Kind: "ClusterTrustPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: "e2e"},
			Spec:       spec,
		},
		corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: policyFileNamespace, Name: trustedRootConfigMap},
			Data:       map[string]string{trustedRootKey: string(trustedRoot)},
		},
	}
	var out []string
	for _, d := range docs {
		data, err := yaml.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, []byte(strings.Join(out, "---\n")))
	return path
}
