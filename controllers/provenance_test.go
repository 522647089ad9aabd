package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestHelmProvenanceRelease (issue 10, Helm provenance): a chart pushed with
// a provenance layer signed by the key a TrustPolicy's helmProvenance
// authority allows is installed, with the provenance file as evidence; its
// twin, signed by another key of the same keyring (THREATS PRV-02), is
// refused with UntrustedSigner and nothing is installed. The keyring comes
// from a ConfigMap: when the security team replaces it with one that no
// longer holds the allowed key, the installed release is no longer
// verified (InvalidPolicy), without any change to the release.
func TestHelmProvenanceRelease(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		t.Run(map[bool]string{true: "control: signed by the allowed key", false: "signed by another key of the keyring"}[trusted], func(t *testing.T) {
			f := newFixture(t)
			release, err := testsign.NewPGPKey("release", testsign.PGPKeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			other, err := testsign.NewPGPKey("other", testsign.PGPKeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			signer := release
			if !trusted {
				signer = other
			}
			archive, err := testchart.Archive("hello", "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			prov, err := signer.ClearSign(testsign.ProvenanceText("hello", "1.0.0", "hello-1.0.0.tgz", archive), testsign.ClearSignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			digest, err := f.reg.PushChartWithProvenance(f.repo, "1.0.0", archive, "hello", "1.0.0", prov)
			if err != nil {
				t.Fatal(err)
			}
			cm := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "chart-signers"},
				Data:       map[string]string{"pubring.asc": testsign.ArmoredKeyring(release, other)},
			}
			if err := k8s.Create(context.Background(), cm); err != nil {
				t.Fatal(err)
			}
			tp := &chartproofv1.TrustPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "helm"},
				Spec: chartproofv1.TrustPolicySpec{
					Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
					Authorities: []chartproofv1.Authority{{Name: "release", HelmProvenance: &chartproofv1.HelmProvenanceAuthority{
						KeyringRef:   &chartproofv1.KeyringReference{ConfigMapRef: &chartproofv1.KeyringKeyReference{Name: "chart-signers"}},
						Fingerprints: []string{release.Fingerprint()},
					}}},
				},
			}
			if err := k8s.Create(context.Background(), tp); err != nil {
				t.Fatal(err)
			}
			f.release("app", "1.0.0", "helm")
			if !trusted {
				f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
				if cm := f.configMap("app"); cm != nil {
					t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
				}
				return
			}
			vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			ev := vhr.Status.Evidence
			if len(ev) != 1 || ev[0].Layout != string(policy.LayoutHelmProvenance) || ev[0].KeyID != release.Fingerprint() || ev[0].Authority != "release" {
				t.Fatalf("evidence = %+v, want the release key's provenance file", ev)
			}
			f.assertInstalled("app", digest)

			cm.Data["pubring.asc"] = other.ArmoredPublic()
			if err := k8s.Update(context.Background(), cm); err != nil {
				t.Fatal(err)
			}
			f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonInvalidPolicy)
		})
	}
}
