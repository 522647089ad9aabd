package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestNotationRelease (issue 10, Notation): a chart with a Notation
// signature whose certificate chains to the CA of a TrustPolicy's notation
// trust store, and whose subject is a trusted identity, is installed, with
// the signer's subject as evidence; its twin, signed under another CA with
// the same subject, is refused with UntrustedSigner and nothing is
// installed. The trust store is a ConfigMap: when it is replaced by
// another CA, the installed release is no longer verified, without any
// change to the release.
func TestNotationRelease(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		t.Run(map[bool]string{true: "control: chains to the trust store", false: "another CA, the same subject"}[trusted], func(t *testing.T) {
			f := newFixture(t)
			ours, err := testsign.NewNotationPKI("release")
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := testsign.NewNotationPKI("release")
			if err != nil {
				t.Fatal(err)
			}
			signer := ours
			if !trusted {
				signer = theirs
			}
			digest := f.push("1.0.0")
			target, err := f.reg.Descriptor(f.repo, digest)
			if err != nil {
				t.Fatal(err)
			}
			env, err := signer.Sign(target, testsign.NotationSignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.reg.AttachNotation(f.repo, digest, env, testsign.NotationJWSMediaType, true); err != nil {
				t.Fatal(err)
			}
			cm := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "notary-ca"},
				Data:       map[string]string{"ca.crt": ours.RootPEM()},
			}
			if err := k8s.Create(context.Background(), cm); err != nil {
				t.Fatal(err)
			}
			tp := &chartproofv1.TrustPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "notary"},
				Spec: chartproofv1.TrustPolicySpec{
					Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
					Authorities: []chartproofv1.Authority{{Name: "release", Notation: &chartproofv1.NotationAuthority{
						TrustStore:        chartproofv1.NotationTrustStore{CA: &chartproofv1.CertificatesSource{ConfigMapRef: &chartproofv1.CertificatesKeyReference{Name: "notary-ca"}}},
						TrustedIdentities: []string{"x509.subject: C=US, ST=WA, O=Acme, CN=release"},
					}}},
				},
			}
			if err := k8s.Create(context.Background(), tp); err != nil {
				t.Fatal(err)
			}
			f.release("app", "1.0.0", "notary")
			if !trusted {
				f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
				if cm := f.configMap("app"); cm != nil {
					t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
				}
				return
			}
			vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			ev := vhr.Status.Evidence
			if len(ev) != 1 || ev[0].Layout != string(policy.LayoutNotation) || ev[0].Subject != ours.Leaf.Subject.String() || ev[0].Authority != "release" {
				t.Fatalf("evidence = %+v, want the leaf's notation signature", ev)
			}
			f.assertInstalled("app", digest)

			cm.Data["ca.crt"] = theirs.RootPEM()
			if err := k8s.Update(context.Background(), cm); err != nil {
				t.Fatal(err)
			}
			f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
		})
	}
}
