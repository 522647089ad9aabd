package gate_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/revocation"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// TestCacheDoesNotHideRevocation: signatures kept by the Cache are judged
// with what the CRL says now. A chart signed with a certificate of an x509
// authority's PKI verifies, and again from the cache; once its leaf is in
// the CRL of its distribution point, the next check refuses it
// (CertificateRevoked), although its signatures came from the cache.
func TestCacheDoesNotHideRevocation(t *testing.T) {
	reg := newRegistry(t, false)
	root, err := testsign.NewRootCA("release root", nil)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("release intermediate", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := testsign.NewKey("p256")
	dp := testsign.NewCRLPoint()
	defer dp.Close()
	leaf, err := inter.Issue(key, "release@chartproof.test", func(c *x509.Certificate) { c.CRLDistributionPoints = []string{dp.URL} })
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.Publish(inter); err != nil {
		t.Fatal(err)
	}

	d := pushChart(t, reg, "charts/hello", "1.0.0")
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	chain := testsign.PEM(inter.Cert, root.Cert)
	layer, err := s.SignLegacy(testsign.SimpleSigningPayload(reg.Host+"/charts/hello", d), testsign.LegacyOptions{Key: key, KeyCert: leaf, Chain: &chain, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.AppendLegacyLayer("charts/hello", d, layer); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "pki"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{reg.Host + "/charts/**"},
		Authorities: []chartproofv1.Authority{{Name: "pki", X509: &chartproofv1.X509Authority{
			Roots:      chartproofv1.CertificatesSource{Certificates: testsign.PEM(root.Cert)},
			Identities: []chartproofv1.X509Identity{{SubjectAlternativeName: "release@chartproof.test"}},
		}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	req := gate.Request{URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
		Cache: gate.NewCache(time.Hour), Revocation: revocation.New(nil)}
	client := oci.NewClient(oci.Options{PlainHTTP: true})

	for i, wantCached := range []bool{false, true} {
		res := gate.Check(context.Background(), client, nil, req)
		if !res.Verdict.Passed() || res.Cached != wantCached {
			t.Fatalf("control, check %d: %s (%s) cached %v; want passed, cached %v", i, res.Verdict.Code(), res.Verdict.Message(), res.Cached, wantCached)
		}
		if got := res.Verdict.Accepted[0].Revocation; got != policy.RevocationGood {
			t.Errorf("control, check %d: revocation evidence %q; want Good", i, got)
		}
	}
	if err := dp.Publish(inter, leaf); err != nil {
		t.Fatal(err)
	}
	// A Checker keeps its answer for the refresh interval: a new one, as
	// after that interval.
	req.Revocation = revocation.New(nil)
	res := gate.Check(context.Background(), client, nil, req)
	if res.Verdict.Code() != chartproofv1.ReasonCertificateRevoked || !res.Cached {
		t.Fatalf("after the CRL revoked the leaf: %s (%s) cached %v; want %s, with the signatures from the cache",
			res.Verdict.Code(), res.Verdict.Message(), res.Cached, chartproofv1.ReasonCertificateRevoked)
	}
}
