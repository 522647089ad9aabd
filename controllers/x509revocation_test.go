package controllers_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestCertificateRevokedByCRL (issue 12, item 3; THREATS PKI-08): a chart
// signed with a certificate of an x509 authority's PKI is installed while
// the CRL of the leaf's distribution point lists nothing (the control:
// Verified, the evidence saying Good). Once the CRL lists the leaf — no
// policy, Secret or release changes — the release is marked Verified=False
// CertificateRevoked within the authority's refresh interval, and what is
// installed stays (onVerificationFailure Hold). The CRL is read again in
// the background: the release is verified again only when its answer
// changed.
func TestCertificateRevokedByCRL(t *testing.T) {
	f := newFixture(t)
	root, err := testsign.NewRootCA("release root", nil)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("release intermediate", nil)
	if err != nil {
		t.Fatal(err)
	}
	dp := testsign.NewCRLPoint()
	defer dp.Close()
	leaf, err := inter.Issue(f.key, "release@chartproof.test", func(c *x509.Certificate) { c.CRLDistributionPoints = []string{dp.URL} })
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.Publish(inter); err != nil {
		t.Fatal(err)
	}

	d := f.push("1.0.0")
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	chain := testsign.PEM(inter.Cert, root.Cert)
	layer, err := s.SignLegacy(testsign.SimpleSigningPayload(regHost+"/"+f.repo, d), testsign.LegacyOptions{Key: f.key, KeyCert: leaf, Chain: &chain, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.reg.AppendLegacyLayer(f.repo, d, layer); err != nil {
		t.Fatal(err)
	}
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "pki"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities: []chartproofv1.Authority{{Name: "pki", X509: &chartproofv1.X509Authority{
				Roots:      chartproofv1.CertificatesSource{Certificates: testsign.PEM(root.Cert)},
				Identities: []chartproofv1.X509Identity{{SubjectAlternativeName: "release@chartproof.test"}},
				Revocation: &chartproofv1.X509Revocation{RefreshInterval: &metav1.Duration{Duration: time.Second}},
			}}},
		},
	}
	if err := k8s.Create(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	f.release("app", "1.0.0", "pki")
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if ev := vhr.Status.Evidence; len(ev) != 1 || ev[0].Authority != "pki" || ev[0].Revocation != "Good" {
		t.Fatalf("evidence %+v; want authority pki, revocation Good", ev)
	}
	// The control: the CRL is read again every refresh interval (1 s), in
	// the background, and while it lists nothing the release is not
	// verified again (its interval is 10 minutes).
	fetched := dp.Fetches()
	waitFor(t, waitTimeout, "the CRL read again three times", func() (bool, string) {
		return dp.Fetches() >= fetched+3, fmt.Sprintf("%d fetches", dp.Fetches())
	})
	if again := f.get("app"); !again.Status.LastVerifiedTime.Equal(vhr.Status.LastVerifiedTime) {
		t.Fatalf("lastVerifiedTime %v, was %v: the release was verified again though no status changed", again.Status.LastVerifiedTime, vhr.Status.LastVerifiedTime)
	}

	if err := dp.Publish(inter, leaf); err != nil {
		t.Fatal(err)
	}
	vhr = f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonCertificateRevoked)
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != d || inst.Verified {
		t.Errorf("installed = %+v; want %s kept (Hold), marked not verified", inst, d)
	}
	f.assertInstalled("app", d)
	f.waitEvent("app", chartproofv1.ReasonCertificateRevoked)
}
