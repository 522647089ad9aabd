package controllers_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestSignatureRepositoryPerRelease: a release names where its chart's
// signatures are stored (spec.chart.signatureRepository, cosign's
// COSIGN_REPOSITORY) and is installed; its twin, the same chart and
// signature without the field, finds no signature and installs nothing.
func TestSignatureRepositoryPerRelease(t *testing.T) {
	for _, named := range []bool{true, false} {
		t.Run(map[bool]string{true: "control: signature repository named", false: "not named"}[named], func(t *testing.T) {
			f := newFixture(t)
			digest := f.push("1.0.0")
			sigRepo := "signatures/" + f.ns + "/hello"
			if err := f.reg.SignLegacy(sigRepo, digest, digest, f.key); err != nil {
				t.Fatal(err)
			}
			tp := &chartproofv1.TrustPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "ci"},
				Spec: chartproofv1.TrustPolicySpec{
					Repositories:          []string{regHost + "/charts/" + f.ns + "/*"},
					SignatureRepositories: []string{regHost + "/signatures/" + f.ns + "/*"},
					Authorities:           []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: f.key.PublicPEM()}}},
				},
			}
			if err := k8s.Create(context.Background(), tp); err != nil {
				t.Fatal(err)
			}
			f.release("app", "1.0.0", "ci", func(vhr *chartproofv1.VerifiedHelmRelease) {
				if named {
					vhr.Spec.Chart.SignatureRepository = "oci://" + regHost + "/" + sigRepo
				}
			})
			if !named {
				f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonNoSignature)
				if cm := f.configMap("app"); cm != nil {
					t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
				}
				return
			}
			f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			f.assertInstalled("app", digest)
		})
	}
}
