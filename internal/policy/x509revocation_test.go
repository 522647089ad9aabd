package policy_test

import (
	"crypto/x509"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestX509RevocationID: the ID of an x509 authority's revocation settings,
// which keys the revocation answers a manager keeps, names everything that
// can change an answer — the cluster's CRLs, the refresh interval, the
// timeout, the mode — and is the same for the same settings.
func TestX509RevocationID(t *testing.T) {
	root, err := testsign.NewRootCA("release root", nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := root.Issue(mustKey(t, "p256"), "release@chartproof.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := root.CRL(nil, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	revoking, err := root.CRL([]*x509.Certificate{leaf}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := func(r *chartproofv1.X509Revocation, crl []byte) string {
		t.Helper()
		spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/*"}, Authorities: []chartproofv1.Authority{{Name: "pki", X509: &chartproofv1.X509Authority{
			Roots:      chartproofv1.CertificatesSource{Certificates: testsign.PEM(root.Cert)},
			Identities: []chartproofv1.X509Identity{{SubjectAlternativeName: "release@chartproof.test"}},
			Revocation: r,
		}}}}
		p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, objects{"configmap:ns/crls/crl": crl})
		if err != nil {
			t.Fatal(err)
		}
		return p.Authorities[0].X509.Revocation.ID
	}
	withCRL := func(mut func(*chartproofv1.X509Revocation)) *chartproofv1.X509Revocation {
		r := &chartproofv1.X509Revocation{CRLs: []chartproofv1.CRLSource{{URL: "http://crl.example.com/root.crl", ConfigMapRef: &chartproofv1.CRLKeyReference{Name: "crls"}}}}
		if mut != nil {
			mut(r)
		}
		return r
	}
	base := id(withCRL(nil), empty)
	if base == "" || base != id(withCRL(nil), empty) {
		t.Fatalf("ID %q; want a non-empty ID, the same for the same settings", base)
	}
	others := map[string]string{
		"defaults":          id(nil, empty),
		"the CRL's content": id(withCRL(nil), revoking),
		"the refresh":       id(withCRL(func(r *chartproofv1.X509Revocation) { r.RefreshInterval = &metav1.Duration{Duration: time.Second} }), empty),
		"the timeout":       id(withCRL(func(r *chartproofv1.X509Revocation) { r.Timeout = &metav1.Duration{Duration: time.Second} }), empty),
		"the mode":          id(withCRL(func(r *chartproofv1.X509Revocation) { r.Mode = "SoftFail" }), empty),
	}
	for what, other := range others {
		if other == "" || other == base {
			t.Errorf("another %s: ID %q; want one of its own", what, other)
		}
	}
}
