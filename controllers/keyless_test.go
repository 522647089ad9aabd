package controllers_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestKeylessRelease: a chart signed keyless by a CI workflow, in either
// cosign layout — a Sigstore bundle attached as a referrer, or a layer under
// the sha256-<hex>.sig tag with the certificate, chain and Rekor bundle
// annotations, as `cosign sign` v2 writes it — under a TrustPolicy whose
// trusted root is a ConfigMap (a private Sigstore). The policy naming that
// workflow installs it, and status and events name the signer, its issuer,
// the log index and the signing time (golden file); its twin naming another
// workflow refuses it with IdentityMismatch, the same refusal in both
// layouts.
func TestKeylessRelease(t *testing.T) {
	const (
		issuer   = "https://token.actions.githubusercontent.com"
		workflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
	)
	layouts := []struct {
		layout   policy.Layout
		logIndex int64  // the log index the signature's entry has
		golden   string // of the installed release
		sign     func(f *fixture, s *testsign.Sigstore, digest string) error
	}{
		{policy.LayoutSigstoreBundle, 0, "installed-keyless", func(f *fixture, s *testsign.Sigstore, digest string) error {
			b, err := s.SignKeyless(testsign.Statement(regHost+"/"+f.repo, digest), testsign.KeylessOptions{
				Cert: testsign.Cert{URI: workflow, Issuer: issuer},
			})
			if err != nil {
				return err
			}
			_, err = f.reg.AttachBundle(f.repo, digest, b, false)
			return err
		}},
		{policy.LayoutCosignLegacy, 7, "installed-keyless-legacy", func(f *fixture, s *testsign.Sigstore, digest string) error {
			layer, err := s.SignLegacy(testsign.SimpleSigningPayload(regHost+"/"+f.repo, digest), testsign.LegacyOptions{
				Cert: testsign.Cert{URI: workflow, Issuer: issuer}, LogIndex: 7,
			})
			if err != nil {
				return err
			}
			return f.reg.AppendLegacyLayer(f.repo, digest, layer)
		}},
	}
	for _, l := range layouts {
		for _, trusted := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, workflow trusted=%v", l.layout, trusted), func(t *testing.T) {
				f := newFixture(t)
				digest := f.push("1.0.0")
				s, err := testsign.NewSigstore()
				if err != nil {
					t.Fatal(err)
				}
				if err := l.sign(f, s, digest); err != nil {
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
					if len(ev) != 1 || ev[0].Layout != string(l.layout) || ev[0].Subject != workflow || ev[0].LogIndex == nil || *ev[0].LogIndex != l.logIndex || ev[0].SignedAt == nil {
						t.Fatalf("evidence = %+v, want the workflow as signer in the %s layout, with log index %d and a signing time", ev, l.layout, l.logIndex)
					}
					f.assertInstalled("app", digest)
					f.checkGolden("app", l.golden)
					return
				}
				f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonIdentityMismatch)
				if cm := f.configMap("app"); cm != nil {
					t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
				}
				f.waitEvent("app", chartproofv1.ReasonIdentityMismatch)
				f.checkGolden("app", "refused-IdentityMismatch")
			})
		}
	}
}

// keylessPolicy creates the TrustPolicy name with one keyless authority,
// "release", naming issuer and subject under s's trusted root, which it
// puts in the ConfigMap private-sigstore of the fixture's namespace.
func (f *fixture) keylessPolicy(name string, s *testsign.Sigstore, issuer, subject string) {
	f.t.Helper()
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		f.t.Fatal(err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "private-sigstore"},
		Data:       map[string]string{"trusted_root.json": string(rootJSON)},
	}
	if err := k8s.Create(context.Background(), cm); err != nil {
		f.t.Fatal(err)
	}
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities: []chartproofv1.Authority{{Name: "release", Keyless: &chartproofv1.KeylessAuthority{
				TrustedRoot: &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "private-sigstore"}},
				Identities:  []chartproofv1.Identity{{Issuer: issuer, Subject: subject}},
			}}},
		},
	}
	if err := k8s.Create(context.Background(), tp); err != nil {
		f.t.Fatal(err)
	}
}
