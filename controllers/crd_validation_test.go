package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestCRDValidation applies impossible policy combinations to the real API
// server: each must be refused with its message, and the control (a valid
// policy of the same shape) accepted. policy.Compile must agree on each.
func TestCRDValidation(t *testing.T) {
	ns := newNamespace(t)
	k, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	pem := k.PublicPEM()
	sigstore, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, err := sigstore.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	pgp, err := testsign.NewPGPKey("release", testsign.PGPKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pki, err := testsign.NewNotationPKI("release")
	if err != nil {
		t.Fatal(err)
	}
	crlCA, err := testsign.NewRootCA("crl issuer", nil)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := crlCA.CRL(nil, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	read := objectReader{pem: []byte(pem), root: rootJSON, keyring: []byte(pgp.ArmoredPublic()), certs: []byte(pki.RootPEM()), crl: crl}
	const notaryID = "x509.subject: C=US, ST=WA, O=Acme, CN=release"
	notary := func(mut func(*chartproofv1.NotationAuthority)) func(*chartproofv1.TrustPolicySpec) {
		return func(s *chartproofv1.TrustPolicySpec) {
			n := &chartproofv1.NotationAuthority{
				TrustStore:        chartproofv1.NotationTrustStore{CA: &chartproofv1.CertificatesSource{Certificates: pki.RootPEM()}},
				TrustedIdentities: []string{notaryID},
			}
			mut(n)
			s.Authorities[0].Key, s.Authorities[0].Notation = nil, n
		}
	}
	x509a := func(mut func(*chartproofv1.X509Authority)) func(*chartproofv1.TrustPolicySpec) {
		return func(s *chartproofv1.TrustPolicySpec) {
			x := &chartproofv1.X509Authority{
				Roots:      chartproofv1.CertificatesSource{Certificates: pki.RootPEM()},
				Identities: []chartproofv1.X509Identity{{SubjectAlternativeName: "release@chartproof.test"}},
			}
			mut(x)
			s.Authorities[0].Key, s.Authorities[0].X509 = nil, x
		}
	}
	prov := func(mut func(*chartproofv1.HelmProvenanceAuthority)) func(*chartproofv1.TrustPolicySpec) {
		return func(s *chartproofv1.TrustPolicySpec) {
			hp := &chartproofv1.HelmProvenanceAuthority{PublicKeys: pgp.ArmoredPublic(), Fingerprints: []string{pgp.Fingerprint()}}
			mut(hp)
			s.Authorities[0].Key, s.Authorities[0].HelmProvenance = nil, hp
		}
	}
	good := func() chartproofv1.TrustPolicySpec {
		return chartproofv1.TrustPolicySpec{
			Repositories: []string{"registry.example.com/team/*"},
			Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: pem}}},
		}
	}
	tests := []struct {
		name    string
		cluster bool
		mut     func(*chartproofv1.TrustPolicySpec)
		want    string // part of the API server's message; empty for a control
	}{
		{"control", false, func(*chartproofv1.TrustPolicySpec) {}, ""},
		{"control: cluster policy with a namespaced secretRef", true, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "k", Namespace: "ns"}}
		}, ""},
		{"authority without key", false, func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = nil }, "an authority needs exactly one of: key"},
		{"key with publicKey and secretRef", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.SecretRef = &chartproofv1.SecretKeyReference{Name: "k"}
		}, "set exactly one of publicKey and secretRef"},
		{"key with neither", false, func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = &chartproofv1.KeyAuthority{} }, "set exactly one of publicKey and secretRef"},
		{"threshold above authorities", false, func(s *chartproofv1.TrustPolicySpec) { s.Threshold = 2 }, "threshold cannot exceed the number of authorities"},
		{"threshold below one", false, func(s *chartproofv1.TrustPolicySpec) { s.Threshold = -1 }, "should be greater than or equal to 1"},
		{"unknown mode", false, func(s *chartproofv1.TrustPolicySpec) { s.Mode = "Permissive" }, "Unsupported value"},
		{"no repositories", false, func(s *chartproofv1.TrustPolicySpec) { s.Repositories = nil }, "repositories"},
		{"oci:// in a repository glob", false, func(s *chartproofv1.TrustPolicySpec) { s.Repositories = []string{"oci://r.example/x"} }, "repositories"},
		{"duplicate authority names", false, func(s *chartproofv1.TrustPolicySpec) { s.Authorities = append(s.Authorities, s.Authorities[0]) }, "Duplicate value"},
		{"namespaced secretRef in a TrustPolicy", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "k", Namespace: "other"}}
		}, "must not name one"},
		{"cluster secretRef without namespace", true, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "k"}}
		}, "must name their namespace"},

		// Revocations (issue 12).
		{"control: revocations inline and from a ConfigMap", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{
				RevocationList: chartproofv1.RevocationList{
					KeyIDs:       []string{strings.Repeat("ab", 32)},
					Identities:   []chartproofv1.RevokedIdentity{{Issuer: "https://issuer.example", Subject: "ci@example.com", SignedAfter: &metav1.Time{Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}}},
					Certificates: []chartproofv1.RevokedCertificate{{Issuer: strings.Repeat("cd", 32), Serial: "1A2b"}},
					Digests:      []string{"sha256:" + strings.Repeat("0", 64)},
				},
				ConfigMapRef: &chartproofv1.RevocationsKeyReference{Name: "revoked"},
			}
		}, ""},
		{"control: cluster revocation list with a namespace", true, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{ConfigMapRef: &chartproofv1.RevocationsKeyReference{Name: "revoked", Namespace: "ns"}}
		}, ""},
		{"revoked key ID not hex", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{KeyIDs: []string{"ABC"}}}
		}, "keyIDs[0]"},
		{"denied digest not canonical", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Digests: []string{"sha256:ABC"}}}
		}, "digests[0]"},
		{"revoked identity without subject", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Identities: []chartproofv1.RevokedIdentity{{Issuer: "https://issuer.example"}}}}
		}, "subject"},
		{"revoked certificate issuer not a fingerprint", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Certificates: []chartproofv1.RevokedCertificate{{Issuer: "CD:12", Serial: "01"}}}}
		}, "certificates[0].issuer"},
		{"revoked certificate serial over 20 bytes", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Certificates: []chartproofv1.RevokedCertificate{{Issuer: strings.Repeat("cd", 32), Serial: strings.Repeat("1", 41)}}}}
		}, "certificates[0].serial"},
		{"TrustPolicy revocation list of another namespace", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{ConfigMapRef: &chartproofv1.RevocationsKeyReference{Name: "revoked", Namespace: "other"}}
		}, "a TrustPolicy's revocation list is in its own namespace and must not name one"},
		{"ClusterTrustPolicy revocation list without namespace", true, func(s *chartproofv1.TrustPolicySpec) {
			s.Revocations = &chartproofv1.Revocations{ConfigMapRef: &chartproofv1.RevocationsKeyReference{Name: "revoked"}}
		}, "a ClusterTrustPolicy's revocation list must name its namespace"},

		// A Helm provenance authority.
		{"control: helmProvenance with inline keys", false, prov(func(*chartproofv1.HelmProvenanceAuthority) {}), ""},
		{"control: helmProvenance with a ConfigMap keyring", false, prov(func(hp *chartproofv1.HelmProvenanceAuthority) {
			hp.PublicKeys, hp.KeyringRef = "", &chartproofv1.KeyringReference{ConfigMapRef: &chartproofv1.KeyringKeyReference{Name: "keys"}}
		}), ""},
		{"control: cluster helmProvenance with a namespaced Secret keyring", true, prov(func(hp *chartproofv1.HelmProvenanceAuthority) {
			hp.PublicKeys, hp.KeyringRef = "", &chartproofv1.KeyringReference{SecretRef: &chartproofv1.KeyringKeyReference{Name: "keys", Namespace: "ns"}}
		}), ""},
		{"key and helmProvenance", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].HelmProvenance = &chartproofv1.HelmProvenanceAuthority{PublicKeys: pgp.ArmoredPublic(), Fingerprints: []string{pgp.Fingerprint()}}
		}, "an authority needs exactly one of: key, keyless, x509, helmProvenance"},
		{"helmProvenance with publicKeys and keyringRef", false, prov(func(hp *chartproofv1.HelmProvenanceAuthority) {
			hp.KeyringRef = &chartproofv1.KeyringReference{ConfigMapRef: &chartproofv1.KeyringKeyReference{Name: "keys"}}
		}), "set exactly one of publicKeys and keyringRef"},
		{"helmProvenance without fingerprints", false, prov(func(hp *chartproofv1.HelmProvenanceAuthority) { hp.Fingerprints = nil }), "fingerprints"},
		{"helmProvenance with a short fingerprint", false, prov(func(hp *chartproofv1.HelmProvenanceAuthority) { hp.Fingerprints = []string{"ABCD1234"} }), "fingerprints[0]"},
		{"helmProvenance keyring with both references", false, prov(func(hp *chartproofv1.HelmProvenanceAuthority) {
			hp.PublicKeys, hp.KeyringRef = "", &chartproofv1.KeyringReference{ConfigMapRef: &chartproofv1.KeyringKeyReference{Name: "keys"}, SecretRef: &chartproofv1.KeyringKeyReference{Name: "keys"}}
		}), "set exactly one of configMapRef and secretRef"},
		{"TrustPolicy keyring of another namespace", false, prov(func(hp *chartproofv1.HelmProvenanceAuthority) {
			hp.PublicKeys, hp.KeyringRef = "", &chartproofv1.KeyringReference{ConfigMapRef: &chartproofv1.KeyringKeyReference{Name: "keys", Namespace: "other"}}
		}), "a TrustPolicy's keyring references are in its own namespace and must not name one"},
		{"ClusterTrustPolicy keyring without namespace", true, prov(func(hp *chartproofv1.HelmProvenanceAuthority) {
			hp.PublicKeys, hp.KeyringRef = "", &chartproofv1.KeyringReference{SecretRef: &chartproofv1.KeyringKeyReference{Name: "keys"}}
		}), "a ClusterTrustPolicy's keyring references must name their namespace"},

		// A Notation authority.
		{"control: notation with inline certificates", false, notary(func(*chartproofv1.NotationAuthority) {}), ""},
		{"control: notation with a ConfigMap trust store", false, notary(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.CA = &chartproofv1.CertificatesSource{ConfigMapRef: &chartproofv1.CertificatesKeyReference{Name: "notary"}}
		}), ""},
		{"control: cluster notation with a namespaced ConfigMap", true, notary(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.CA = &chartproofv1.CertificatesSource{ConfigMapRef: &chartproofv1.CertificatesKeyReference{Name: "notary", Namespace: "ns"}}
		}), ""},
		{"control: notation any identity with allowAnyIdentity", false, notary(func(n *chartproofv1.NotationAuthority) {
			n.TrustedIdentities, n.AllowAnyIdentity = []string{"*"}, true
		}), ""},
		{"key and notation", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Notation = &chartproofv1.NotationAuthority{
				TrustStore:        chartproofv1.NotationTrustStore{CA: &chartproofv1.CertificatesSource{Certificates: pki.RootPEM()}},
				TrustedIdentities: []string{notaryID},
			}
		}, "an authority needs exactly one of: key, keyless, x509, helmProvenance, notation"},

		// An x509 authority (issue 12).
		{"control: x509 with inline roots", false, x509a(func(*chartproofv1.X509Authority) {}), ""},
		{"control: x509 roots, intermediates and trusted root from ConfigMaps", false, x509a(func(x *chartproofv1.X509Authority) {
			x.Roots = chartproofv1.CertificatesSource{ConfigMapRef: &chartproofv1.CertificatesKeyReference{Name: "pki"}}
			x.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}), ""},
		{"key and x509", false, func(s *chartproofv1.TrustPolicySpec) {
			x509a(func(*chartproofv1.X509Authority) {})(s)
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{PublicKey: pem}
		}, "an authority needs exactly one of: key, keyless, x509, helmProvenance, notation"},
		{"x509 without identities", false, x509a(func(x *chartproofv1.X509Authority) { x.Identities = nil }), "identities"},
		{"control: x509 revocation SoftFail with a CRL from a ConfigMap and one from a Secret", false, x509a(func(x *chartproofv1.X509Authority) {
			x.Revocation = &chartproofv1.X509Revocation{Mode: "SoftFail", RefreshInterval: &metav1.Duration{Duration: 30 * time.Second}, CRLs: []chartproofv1.CRLSource{
				{URL: "http://crl.example.com/a.crl", ConfigMapRef: &chartproofv1.CRLKeyReference{Name: "crls"}},
				{URL: "http://crl.example.com/b.crl", SecretRef: &chartproofv1.CRLKeyReference{Name: "crls"}},
			}}
		}), ""},
		{"x509 revocation CRL from both a ConfigMap and a Secret", false, x509a(func(x *chartproofv1.X509Authority) {
			x.Revocation = &chartproofv1.X509Revocation{CRLs: []chartproofv1.CRLSource{{URL: "http://crl.example.com/a.crl",
				ConfigMapRef: &chartproofv1.CRLKeyReference{Name: "crls"}, SecretRef: &chartproofv1.CRLKeyReference{Name: "crls"}}}}
		}), "exactly one of configMapRef and secretRef"},
		{"x509 revocation CRL from nowhere", false, x509a(func(x *chartproofv1.X509Authority) {
			x.Revocation = &chartproofv1.X509Revocation{CRLs: []chartproofv1.CRLSource{{URL: "http://crl.example.com/a.crl"}}}
		}), "exactly one of configMapRef and secretRef"},
		{"x509 revocation mode unknown", false, x509a(func(x *chartproofv1.X509Authority) {
			x.Revocation = &chartproofv1.X509Revocation{Mode: "Lenient"}
		}), "Unsupported value: \"Lenient\""},
		{"TrustPolicy x509 roots of another namespace", false, x509a(func(x *chartproofv1.X509Authority) {
			x.Roots = chartproofv1.CertificatesSource{ConfigMapRef: &chartproofv1.CertificatesKeyReference{Name: "pki", Namespace: "other"}}
		}), "a TrustPolicy's certificate references are in its own namespace and must not name one"},
		{"ClusterTrustPolicy x509 trusted root without namespace", true, x509a(func(x *chartproofv1.X509Authority) {
			x.TrustedRoot = &chartproofv1.TrustedRootReference{SecretRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}), "a ClusterTrustPolicy's trusted root references must name their namespace"},
		{"notation without ca or signingAuthority", false, notary(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore = chartproofv1.NotationTrustStore{TSA: &chartproofv1.CertificatesSource{Certificates: pki.RootPEM()}}
		}), "a notation trust store needs ca or signingAuthority certificates"},
		{"NOT-03 notation any identity without allowAnyIdentity", false, notary(func(n *chartproofv1.NotationAuthority) { n.TrustedIdentities = []string{"*"} }), "it needs allowAnyIdentity: true"},
		{"notation certificates with both sources", false, notary(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.CA.ConfigMapRef = &chartproofv1.CertificatesKeyReference{Name: "notary"}
		}), "set exactly one of certificates and configMapRef"},
		{"TrustPolicy certificates of another namespace", false, notary(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.CA = &chartproofv1.CertificatesSource{ConfigMapRef: &chartproofv1.CertificatesKeyReference{Name: "notary", Namespace: "other"}}
		}), "a TrustPolicy's certificate references are in its own namespace and must not name one"},
		{"ClusterTrustPolicy certificates without namespace", true, notary(func(n *chartproofv1.NotationAuthority) {
			n.TrustStore.TSA = &chartproofv1.CertificatesSource{ConfigMapRef: &chartproofv1.CertificatesKeyReference{Name: "notary"}}
		}), "a ClusterTrustPolicy's certificate references must name their namespace"},

		// A key authority that requires the transparency log.
		{"control: key requiring the log of the public-good root", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.RequireTransparencyLog = true
		}, ""},
		{"control: key requiring the log of a trusted root", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.RequireTransparencyLog = true
			s.Authorities[0].Key.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}, ""},
		{"key trustedRoot without requireTransparencyLog", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}, "trustedRoot is read only with requireTransparencyLog: true"},
		{"control: key with a validity window", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.RequireTransparencyLog = true
			s.Authorities[0].Key.ValidFor = &chartproofv1.ValidityWindow{Start: metav1.NewTime(time.Unix(1e9, 0)), End: ptrTime(time.Unix(2e9, 0))}
		}, ""},
		{"key validity window without the log", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.ValidFor = &chartproofv1.ValidityWindow{Start: metav1.NewTime(time.Unix(1e9, 0))}
		}, "validFor needs a trusted signing time"},
		{"key validity window ending before it starts", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.RequireTransparencyLog = true
			s.Authorities[0].Key.ValidFor = &chartproofv1.ValidityWindow{Start: metav1.NewTime(time.Unix(2e9, 0)), End: ptrTime(time.Unix(1e9, 0))}
		}, "end must not be before start"},
		{"TrustPolicy key trustedRoot naming a namespace", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.RequireTransparencyLog = true
			s.Authorities[0].Key.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root", Namespace: "other"}}
		}, "a TrustPolicy's trusted root references are in its own namespace and must not name one"},
		{"control: ClusterTrustPolicy key trustedRoot with namespace", true, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.RequireTransparencyLog = true
			s.Authorities[0].Key.TrustedRoot = &chartproofv1.TrustedRootReference{SecretRef: &chartproofv1.TrustedRootKeyReference{Name: "root", Namespace: "sigstore"}}
		}, ""},
		{"ClusterTrustPolicy key trustedRoot without namespace", true, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.RequireTransparencyLog = true
			s.Authorities[0].Key.TrustedRoot = &chartproofv1.TrustedRootReference{SecretRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}, "a ClusterTrustPolicy's trusted root references must name their namespace"},

		// Keyless authorities. Each refusal has a control of the same shape.
		{"control: keyless, public-good root", false, keyless(func(*chartproofv1.KeylessAuthority) {}), ""},
		{"control: keyless, regexps and extensions", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0] = chartproofv1.Identity{
				IssuerRegExp: `https://token\.actions\.githubusercontent\.com`, SubjectRegExp: `https://github\.com/org/.*`,
				Extensions: []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryRef", RegExp: `refs/tags/v.*`}, {Name: "runnerEnvironment", Value: "github-hosted"}},
			}
		}), ""},
		{"subjectRegExp accepts anyone (POL-01)", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Subject, k.Identities[0].SubjectRegExp = "", `.+`
		}), "subjectRegExp must compile on its own and constrain the signer"},
		{"subjectRegExp accepts any e-mail (POL-01)", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Subject, k.Identities[0].SubjectRegExp = "", `.*@.*`
		}), "subjectRegExp must compile on its own and constrain the signer"},
		{"subjectRegExp escapes its anchors (POL-01)", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Subject, k.Identities[0].SubjectRegExp = "", `https://github\.com/org/x)|(.*evil`
		}), "subjectRegExp must compile on its own"},
		{"issuerRegExp accepts any issuer (POL-01)", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Issuer, k.Identities[0].IssuerRegExp = "", `https://.*`
		}), "issuerRegExp must compile on its own and constrain the issuer"},
		{"identity without issuer", false, keyless(func(k *chartproofv1.KeylessAuthority) { k.Identities[0].Issuer = "" }),
			"set exactly one of issuer and issuerRegExp"},
		{"identity without subject", false, keyless(func(k *chartproofv1.KeylessAuthority) { k.Identities[0].Subject = "" }),
			"set exactly one of subject and subjectRegExp"},
		{"identity with issuer and issuerRegExp", false, keyless(func(k *chartproofv1.KeylessAuthority) { k.Identities[0].IssuerRegExp = `https://.*` }),
			"set exactly one of issuer and issuerRegExp"},
		{"identity with subject and subjectRegExp", false, keyless(func(k *chartproofv1.KeylessAuthority) { k.Identities[0].SubjectRegExp = `https://.*` }),
			"set exactly one of subject and subjectRegExp"},
		{"keyless without identities", false, keyless(func(k *chartproofv1.KeylessAuthority) { k.Identities = nil }),
			"spec.authorities[0].keyless.identities: Required value"},
		{"control: extension with value", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Extensions = []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryURI", Value: "https://github.com/org/repo"}}
		}), ""},
		{"extension with value and regExp", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Extensions = []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryURI", Value: "https://github.com/org/repo", RegExp: `https://github\.com/org/.*`}}
		}), "set exactly one of value and regExp"},
		{"extension with neither value nor regExp", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Extensions = []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryURI"}}
		}), "set exactly one of value and regExp"},
		{"control: subjectType email", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].SubjectType = chartproofv1.SubjectTypeEmail
		}), ""},
		{"unknown subjectType", false, keyless(func(k *chartproofv1.KeylessAuthority) { k.Identities[0].SubjectType = "dns" }),
			"Unsupported value: \"dns\""},
		{"unknown extension", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Extensions = []chartproofv1.ExtensionMatch{{Name: "favouriteColour", Value: "blue"}}
		}), "Unsupported value: \"favouriteColour\""},
		{"key and keyless", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Keyless = goodKeyless()
		}, "an authority needs exactly one of: key, keyless"},
		{"neither key nor keyless", false, func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = nil },
			"an authority needs exactly one of: key, keyless"},
		{"control: TrustPolicy trustedRoot in its namespace", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}), ""},
		{"trustedRoot with configMapRef and secretRef", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{
				ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root"},
				SecretRef:    &chartproofv1.TrustedRootKeyReference{Name: "root"},
			}
		}), "set exactly one of configMapRef, secretRef and tuf"},
		{"trustedRoot with neither configMapRef nor secretRef", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{}
		}), "set exactly one of configMapRef, secretRef and tuf"},
		{"control: trustedRoot from the public-good TUF repository", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{}}
		}), ""},
		{"control: trustedRoot from a TUF mirror with its root", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com", Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}}}
		}), ""},
		{"trustedRoot with tuf and configMapRef", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{}, ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}), "set exactly one of configMapRef, secretRef and tuf"},
		{"tuf with url and configMapRef", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com",
				ConfigMapRef: &chartproofv1.TUFFilesReference{Name: "copy"}, Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}}}
		}), "set at most one of url and configMapRef"},
		{"tuf mirror without root", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com"}}
		}), "needs root"},
		{"tuf air-gapped copy without root", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{ConfigMapRef: &chartproofv1.TUFFilesReference{Name: "copy"}}}
		}), "needs root"},
		{"TrustPolicy tuf root naming a namespace", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com",
				Root: &chartproofv1.TUFRootReference{Name: "tuf-root", Namespace: "other"}}}
		}), "a TrustPolicy's TUF references (tuf.root, tuf.configMapRef) are in its own namespace and must not name one"},
		{"TrustPolicy tuf air-gapped copy naming a namespace", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{
				ConfigMapRef: &chartproofv1.TUFFilesReference{Name: "copy", Namespace: "other"}, Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}}}
		}), "a TrustPolicy's TUF references (tuf.root, tuf.configMapRef) are in its own namespace and must not name one"},
		{"control: ClusterTrustPolicy tuf references with namespaces", true, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{
				ConfigMapRef: &chartproofv1.TUFFilesReference{Name: "copy", Namespace: "sigstore"}, Root: &chartproofv1.TUFRootReference{Name: "tuf-root", Namespace: "sigstore"}}}
		}), ""},
		{"ClusterTrustPolicy tuf root without namespace", true, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com",
				Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}}}
		}), "a ClusterTrustPolicy's TUF references (tuf.root, tuf.configMapRef) must name their namespace"},
		{"ClusterTrustPolicy x509 tuf copy without namespace", true, x509a(func(x *chartproofv1.X509Authority) {
			x.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{
				ConfigMapRef: &chartproofv1.TUFFilesReference{Name: "copy"}, Root: &chartproofv1.TUFRootReference{Name: "tuf-root", Namespace: "sigstore"}}}
		}), "a ClusterTrustPolicy's TUF references (tuf.root, tuf.configMapRef) must name their namespace"},
		{"TrustPolicy key tuf root naming a namespace", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.RequireTransparencyLog = true
			s.Authorities[0].Key.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com",
				Root: &chartproofv1.TUFRootReference{Name: "tuf-root", Namespace: "other"}}}
		}, "a TrustPolicy's TUF references (tuf.root, tuf.configMapRef) are in its own namespace and must not name one"},
		{"tuf url not http(s)", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{URL: "file:///etc/tuf", Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}}}
		}), "spec.authorities[0].keyless.trustedRoot.tuf.url"},
		{"TrustPolicy trustedRoot naming a namespace", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root", Namespace: "other"}}
		}), "a TrustPolicy's trusted root references are in its own namespace and must not name one"},
		{"TrustPolicy trustedRoot secretRef naming a namespace", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{SecretRef: &chartproofv1.TrustedRootKeyReference{Name: "root", Namespace: "other"}}
		}), "a TrustPolicy's trusted root references are in its own namespace and must not name one"},
		{"control: ClusterTrustPolicy trustedRoot with namespace", true, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{SecretRef: &chartproofv1.TrustedRootKeyReference{Name: "root", Namespace: "sigstore"}}
		}), ""},
		{"ClusterTrustPolicy trustedRoot without namespace", true, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{SecretRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}), "a ClusterTrustPolicy's trusted root references must name their namespace"},
		{"ClusterTrustPolicy trustedRoot configMapRef without namespace", true, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "root"}}
		}), "a ClusterTrustPolicy's trusted root references must name their namespace"},
		{"control: regexp at MaxLength", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Subject, k.Identities[0].SubjectRegExp = "", longRegExp(policy.MaxRegExpLength)
		}), ""},
		{"subjectRegExp over MaxLength", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Subject, k.Identities[0].SubjectRegExp = "", longRegExp(policy.MaxRegExpLength+1)
		}), "spec.authorities[0].keyless.identities[0].subjectRegExp: Too long: may not be"},
		{"extension regExp over MaxLength", false, keyless(func(k *chartproofv1.KeylessAuthority) {
			k.Identities[0].Extensions = []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryRef", RegExp: longRegExp(policy.MaxRegExpLength + 1)}}
		}), "spec.authorities[0].keyless.identities[0].extensions[0].regExp: Too long: may not be"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := good()
			tc.mut(&spec)
			name := "p" + strings.Repeat("x", i)
			var obj client.Object = &chartproofv1.TrustPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
			if tc.cluster {
				obj = &chartproofv1.ClusterTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name}, Spec: spec}
			}
			err := k8s.Create(context.Background(), obj)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("control refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want refused with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("refused with %v, want a message containing %q", err, tc.want)
			}
			// policy.Compile, which `chartproof verify` runs on files the API
			// server never saw, must agree with the CRD.
			ref := policy.Ref{Kind: "TrustPolicy", Namespace: ns, Name: name}
			if tc.cluster {
				ref = policy.Ref{Kind: "ClusterTrustPolicy", Name: ns + "-" + name}
			}
			_, cerr := policy.Compile(ref, spec, read)
			switch {
			case tc.want == "" && cerr != nil:
				t.Errorf("the API server accepts the control, policy.Compile refuses it: %v", cerr)
			case tc.want != "" && cerr == nil:
				t.Errorf("the API server refuses it, policy.Compile accepts it")
			}
		})
	}
}

// goodKeyless is a valid keyless authority: the public-good root and one
// exact identity.
func goodKeyless() *chartproofv1.KeylessAuthority {
	return &chartproofv1.KeylessAuthority{Identities: []chartproofv1.Identity{{
		Issuer:  "https://token.actions.githubusercontent.com",
		Subject: "https://github.com/org/repo/.github/workflows/release.yaml@refs/heads/main",
	}}}
}

// keyless replaces the spec's authority with goodKeyless changed by mut.
func keyless(mut func(*chartproofv1.KeylessAuthority)) func(*chartproofv1.TrustPolicySpec) {
	return func(s *chartproofv1.TrustPolicySpec) {
		k := goodKeyless()
		mut(k)
		s.Authorities[0].Key, s.Authorities[0].Keyless = nil, k
	}
}

// longRegExp is a valid regular expression of exactly n bytes that does not
// match the empty string.
func longRegExp(n int) string {
	return "https://github\\.com/" + strings.Repeat("a", n-len("https://github\\.com/"))
}

// objectReader stands in for the API server's Secrets and ConfigMaps when
// compiling: a trusted_root.json key holds root, a pubring.asc key keyring,
// a ca.crt key certs, any other key pem; every TUF repository serves root.
type objectReader struct{ pem, root, keyring, certs, crl []byte }

func (r objectReader) Secret(ref chartproofv1.SecretKeyReference) ([]byte, error) {
	return r.ConfigMap(ref.Namespace, ref.Name, ref.Key)
}

func (r objectReader) ConfigMap(_, _, key string) ([]byte, error) {
	switch key {
	case policy.DefaultTrustedRootKey:
		return r.root, nil
	case policy.DefaultKeyringKey:
		return r.keyring, nil
	case policy.DefaultCertificatesKey:
		return r.certs, nil
	case policy.DefaultRevocationsKey:
		return []byte("digests: []\n"), nil
	case "crl":
		return r.crl, nil
	}
	return r.pem, nil
}

// TUFTrustedRoot stands in for the TUF client: every repository serves root.
func (r objectReader) TUFTrustedRoot(policy.TUFRepository) (policy.TUFTrustedRoot, error) {
	return policy.TUFTrustedRoot{JSON: r.root, Digest: "sha256:root", Expires: time.Now().Add(time.Hour)}, nil
}

func ptrTime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}
