package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

func notationPKI(t *testing.T, cn string) *testsign.NotationPKI {
	t.Helper()
	p, err := testsign.NewNotationPKI(cn)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// selfSignedLeaf is a self-signed certificate that is not a CA, as
// `notation cert generate-test` makes one.
func selfSignedLeaf(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"Acme"}, CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// TestCompileNotation: a Notation authority's trust store and identities are
// checked when the policy is applied, as notation checks its own
// trustpolicy.json and trust store, and more strictly where THREATS asks:
// "*" only with allowAnyIdentity (NOT-03), CA or self-signed certificates
// only in a trust store and root CAs only for timestamp authorities
// (PKI-12). Each refusal beside a control that compiles.
func TestCompileNotation(t *testing.T) {
	pki := notationPKI(t, "release")
	const id = "x509.subject: C=US, ST=WA, O=Acme, CN=release"
	authority := func(mut func(*chartproofv1.NotationAuthority)) chartproofv1.TrustPolicySpec {
		n := &chartproofv1.NotationAuthority{
			TrustStore:        chartproofv1.NotationTrustStore{CA: &chartproofv1.CertificatesSource{Certificates: pki.RootPEM()}},
			TrustedIdentities: []string{id},
		}
		mut(n)
		return provSpec(chartproofv1.Authority{Name: "notary", Notation: n})
	}
	objs := objects{"configmap:ns/notary/ca.crt": []byte(pki.RootPEM())}
	tests := []struct {
		name, want string // want "": compiles
		spec       chartproofv1.TrustPolicySpec
	}{
		{"control", "", authority(func(*chartproofv1.NotationAuthority) {})},
		{"control: ConfigMap trust store", "", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.CA = &chartproofv1.CertificatesSource{ConfigMapRef: &chartproofv1.CertificatesKeyReference{Name: "notary"}}
		})},
		{"control: any identity, said explicitly", "", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustedIdentities, n.AllowAnyIdentity = []string{"*"}, true
		})},
		{"control: a self-signed leaf in the ca store", "", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.CA.Certificates = selfSignedLeaf(t) // as `notation cert generate-test` makes
		})},
		{"NOT-03 any identity without allowAnyIdentity", "allowAnyIdentity", authority(func(n *chartproofv1.NotationAuthority) { n.TrustedIdentities = []string{"*"} })},
		{"NOT-03 any identity beside another", "cannot be listed with other identities", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustedIdentities, n.AllowAnyIdentity = []string{"*", id}, true
		})},
		{"NOT-03 not an x509.subject", "is not x509.subject", authority(func(n *chartproofv1.NotationAuthority) { n.TrustedIdentities = []string{"CN=release"} })},
		{"NOT-03 a DN without ST", "notation:", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustedIdentities = []string{"x509.subject: C=US, O=Acme, CN=release"}
		})},
		{"NOT-03 overlapping identities", "overlapping", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustedIdentities = []string{id, "x509.subject: C=US, ST=WA, O=Acme"}
		})},
		{"PKI-12 a leaf issued by a CA in the ca store", "not a CA certificate or self-signed", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.CA.Certificates = certPEM(pki.Leaf)
		})},
		{"PKI-12 a self-signed leaf in the tsa store", "root CA certificates only", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.TSA = &chartproofv1.CertificatesSource{Certificates: selfSignedLeaf(t)}
		})},
		{"control: a root CA in the tsa store", "", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.TSA = &chartproofv1.CertificatesSource{Certificates: pki.RootPEM()}
		})},
		{"no ca or signingAuthority", "neither ca nor signingAuthority", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore = chartproofv1.NotationTrustStore{TSA: &chartproofv1.CertificatesSource{Certificates: pki.RootPEM()}}
		})},
		{"not PEM", "not PEM", authority(func(n *chartproofv1.NotationAuthority) { n.TrustStore.CA.Certificates = "junk" })},
		{"a private key in the store", "not a CERTIFICATE", authority(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.CA.Certificates = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, tc.spec, objs)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Compile() = %v, want it to compile", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Compile() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
