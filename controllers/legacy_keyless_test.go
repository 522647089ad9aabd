package controllers_test

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestLegacyKeylessRelease: a chart signed keyless in cosign's legacy
// layout (a layer under the sha256-<hex>.sig tag with the certificate,
// chain and Rekor bundle annotations, as `cosign sign` v2 writes it), under
// a TrustPolicy whose trusted root is a ConfigMap. The policy naming the
// workflow installs it, and status names the signer, its log index and the
// signing time (golden file); its twin naming another workflow refuses it
// with IdentityMismatch, as for a bundle.
func TestLegacyKeylessRelease(t *testing.T) {
	const (
		issuer   = "https://token.actions.githubusercontent.com"
		workflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
	)
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("workflow trusted=%v", trusted), func(t *testing.T) {
			f := newFixture(t)
			digest := f.push("1.0.0")
			s, err := testsign.NewSigstore()
			if err != nil {
				t.Fatal(err)
			}
			layer, err := s.SignLegacy(testsign.SimpleSigningPayload(regHost+"/"+f.repo, digest), testsign.LegacyOptions{
				Cert: testsign.Cert{URI: workflow, Issuer: issuer}, LogIndex: 7,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.reg.AppendLegacyLayer(f.repo, digest, layer); err != nil {
				t.Fatal(err)
			}
			subject := workflow
			if !trusted {
				subject = "https://github.com/org/charts/.github/workflows/nightly.yaml@refs/heads/main"
			}
			f.keylessPolicy("ci", s, issuer, subject)
			f.release("app", "1.0.0", "ci")
			if trusted {
				vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
				ev := vhr.Status.Evidence
				if len(ev) != 1 || ev[0].Layout != "cosign-legacy" || ev[0].Subject != workflow || ev[0].LogIndex == nil || *ev[0].LogIndex != 7 || ev[0].SignedAt == nil {
					t.Fatalf("evidence = %+v, want the workflow as signer in the legacy layout, with log index 7 and a signing time", ev)
				}
				f.assertInstalled("app", digest)
				f.checkGolden("app", "installed-keyless-legacy")
				return
			}
			f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonIdentityMismatch)
			if cm := f.configMap("app"); cm != nil {
				t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
			}
			f.waitEvent("app", chartproofv1.ReasonIdentityMismatch)
			f.checkGolden("app", "refused-IdentityMismatch") // the same refusal as for a bundle
		})
	}
}
