package verify

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/revocation"
	"github.com/chartproof/chartproof/internal/testsign"
)

const releaseSigner = "release@chartproof.test"

// x509PKI is a root -> intermediate PKI and a code-signing key.
type x509PKI struct {
	root, inter *testsign.CA
	key         *testsign.Key
}

func newX509PKI(t *testing.T) x509PKI {
	t.Helper()
	root, err := testsign.NewRootCA("release root", nil)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("release intermediate", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	return x509PKI{root: root, inter: inter, key: key}
}

// TestX509Authority signs legacy layers the way `cosign sign --key K
// --certificate C --certificate-chain CH` does, with leaves of a PKI made in
// Go, and judges them under an x509 authority of that PKI. Every refusal
// has a control twin among the first rows.
func TestX509Authority(t *testing.T) {
	s := newSigstore(t)
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	pk := newX509PKI(t)
	other := newX509PKI(t)
	now := time.Now()
	expired := func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-2*time.Hour), now.Add(-time.Hour) }
	type row struct {
		name string
		// leaf edits the leaf's template; issuer issues it (default pk.inter).
		leaf   func(*x509.Certificate)
		issuer *testsign.CA
		// chain is the chain annotation; nil: the intermediate and root.
		chain *string
		// policyInters puts the intermediate in the policy instead.
		policyInters bool
		// times names the trusted root; loggedAt is the log's integrated
		// time (zero: not logged).
		times    bool
		loggedAt time.Time
		identity string
		revoke   func(leaf *x509.Certificate) []chartproofv1.RevokedCertificate
		want     string
		wantText string // in the verdict's message or found
	}
	empty := ""
	serial := func(c *x509.Certificate) string { return c.SerialNumber.Text(16) }
	tests := []row{
		{name: "control: a sound path, judged now", want: chartproofv1.ReasonVerified},
		{name: "control: the intermediate from the policy, no chain carried", chain: &empty, policyInters: true, want: chartproofv1.ReasonVerified},
		{name: "control: logged, judged at the integrated time", times: true, loggedAt: now.Add(-time.Minute), want: chartproofv1.ReasonVerified},
		{name: "expired leaf logged while valid (PKI-01 +)", leaf: expired, times: true, loggedAt: now.Add(-90 * time.Minute), want: chartproofv1.ReasonVerified},
		// sigstore-go compares the integrated time with the leaf's validity
		// before it asks for a path: no path was refused, none was built.
		{name: "expired leaf logged after it expired (PKI-01 -)", leaf: expired, times: true, loggedAt: now.Add(-30 * time.Minute), want: chartproofv1.ReasonUntrustedSigner, wantText: "outside certificate validity"},
		{name: "expired leaf without a trusted time (PKI-01 -)", leaf: expired, want: chartproofv1.ReasonCertificateRejected, wantText: "PKI-01"},
		{name: "trusted root named, signature not logged", times: true, want: chartproofv1.ReasonUntrustedSigner},
		{name: "leaf without EKU (PKI-03)", leaf: func(c *x509.Certificate) { c.ExtKeyUsage = nil }, want: chartproofv1.ReasonCertificateRejected, wantText: "PKI-03"},
		{name: "leaf not yet valid (PKI-02)", leaf: func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour) }, want: chartproofv1.ReasonCertificateRejected, wantText: "PKI-02"},
		{name: "intermediate nowhere: no chain carried, none in the policy", chain: &empty, want: chartproofv1.ReasonUntrustedSigner},
		{name: "leaf of another PKI", issuer: other.inter, chain: ptr(testsign.PEM(other.inter.Cert, other.root.Cert)), want: chartproofv1.ReasonUntrustedSigner},
		{name: "leaf names another signer", identity: "other@chartproof.test", want: chartproofv1.ReasonIdentityMismatch},
		{name: "leaf's serial revoked (PKI-08)", revoke: func(leaf *x509.Certificate) []chartproofv1.RevokedCertificate {
			return []chartproofv1.RevokedCertificate{{Issuer: policy.CertKeyID(pk.inter.Cert), Serial: strings.ToUpper(serial(leaf))}}
		}, want: chartproofv1.ReasonSignerRevoked, wantText: "is revoked"},
		{name: "leaf's serial revoked, the intermediate carried re-encoded (ECDSA s to n-s)", chain: ptr(testsign.PEM(malleate(t, pk.inter.Cert), pk.root.Cert)),
			revoke: func(leaf *x509.Certificate) []chartproofv1.RevokedCertificate {
				return []chartproofv1.RevokedCertificate{{Issuer: policy.CertKeyID(pk.inter.Cert), Serial: serial(leaf)}}
			}, want: chartproofv1.ReasonSignerRevoked, wantText: "is revoked"},
		{name: "control: the intermediate carried re-encoded still chains", chain: ptr(testsign.PEM(malleate(t, pk.inter.Cert), pk.root.Cert)),
			want: chartproofv1.ReasonVerified},
		{name: "intermediate's serial revoked (PKI-08)", revoke: func(*x509.Certificate) []chartproofv1.RevokedCertificate {
			return []chartproofv1.RevokedCertificate{{Issuer: policy.CertKeyID(pk.root.Cert), Serial: serial(pk.inter.Cert)}}
		}, want: chartproofv1.ReasonSignerRevoked, wantText: "release intermediate"},
		{name: "control: the leaf's serial revoked under another issuer", revoke: func(leaf *x509.Certificate) []chartproofv1.RevokedCertificate {
			return []chartproofv1.RevokedCertificate{{Issuer: policy.CertKeyID(pk.root.Cert), Serial: serial(leaf)}}
		}, want: chartproofv1.ReasonVerified},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			issuer := tc.issuer
			if issuer == nil {
				issuer = pk.inter
			}
			leaf, err := issuer.Issue(pk.key, releaseSigner, tc.leaf)
			if err != nil {
				t.Fatal(err)
			}
			chain := tc.chain
			if chain == nil {
				chain = ptr(testsign.PEM(pk.inter.Cert, pk.root.Cert))
			}
			xa := &chartproofv1.X509Authority{
				Roots:      chartproofv1.CertificatesSource{Certificates: testsign.PEM(pk.root.Cert)},
				Identities: []chartproofv1.X509Identity{{SubjectAlternativeName: releaseSigner}},
			}
			if tc.identity != "" {
				xa.Identities[0].SubjectAlternativeName = tc.identity
			}
			if tc.policyInters {
				xa.Intermediates = &chartproofv1.CertificatesSource{Certificates: testsign.PEM(pk.inter.Cert)}
			}
			if tc.times {
				xa.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "sigstore"}}
			}
			spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{{Name: "pki", X509: xa}}}
			if tc.revoke != nil {
				spec.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Certificates: tc.revoke(leaf)}}
			}
			verdict, sig := judgeLegacy(t, s, spec, objects{"ns/sigstore/trusted_root.json": rootJSON}, testsign.LegacyOptions{
				Key: pk.key, KeyCert: leaf, Chain: chain, NoLog: tc.loggedAt.IsZero(), LoggedAt: tc.loggedAt,
			})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s); want %s\nsignature: %+v", got, verdict.Message(), tc.want, sig)
			}
			if tc.wantText != "" {
				if text := verdict.Message() + " " + verdict.Reasons[0].Found; !strings.Contains(text, tc.wantText) {
					t.Errorf("verdict %q does not say %q", text, tc.wantText)
				}
			}
			if tc.want != chartproofv1.ReasonVerified {
				return
			}
			acc := verdict.Accepted[0]
			if acc.Authority != "pki" || acc.KeyID == "" || acc.Identity == nil || acc.Identity.Subject != releaseSigner {
				t.Errorf("acceptance %+v: want authority pki, the leaf's key and its SAN", acc)
			}
			if tc.times && (acc.SignedAt == nil || !acc.SignedAt.Equal(tc.loggedAt.Truncate(time.Second))) {
				t.Errorf("acceptance signed at %v, want the integrated time %v", acc.SignedAt, tc.loggedAt)
			}
		})
	}
}

// judgeLegacy compiles spec as TrustPolicy ns/p (its ConfigMaps from objs),
// signs a legacy layer of digestA with o, and judges it as internal/gate
// would after collecting it: revocation annotated (these paths name no CRL
// or OCSP responder, so their status is Good), then evaluated.
func judgeLegacy(t *testing.T, s *testsign.Sigstore, spec chartproofv1.TrustPolicySpec, objs objects, o testsign.LegacyOptions) (policy.Verdict, policy.Signature) {
	t.Helper()
	p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, objs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	v, err := New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := s.SignLegacy(testsign.SimpleSigningPayload(repo, digestA), o)
	if err != nil {
		t.Fatal(err)
	}
	sig := v.Legacy(layer.Data, layer.Annotations)
	sig.Layout, sig.Ref = policy.LayoutCosignLegacy, "sha256:ref"
	var rc *revocation.Checker
	sigs := rc.Annotate(context.Background(), p, []policy.Signature{sig})
	return policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: sigs}), sig
}

// TestX509IgnoresFulcio: an x509 authority's trusted root vouches for
// times only: a keyless certificate of that root's certificate authority,
// naming the authority's identity, does not count for it.
func TestX509IgnoresFulcio(t *testing.T) {
	s := newSigstore(t)
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	pk := newX509PKI(t)
	spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{{Name: "pki", X509: &chartproofv1.X509Authority{
		Roots:       chartproofv1.CertificatesSource{Certificates: testsign.PEM(pk.root.Cert)},
		Identities:  []chartproofv1.X509Identity{{SubjectAlternativeName: releaseSigner}},
		TrustedRoot: &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "sigstore"}},
	}}}}
	p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, objects{"ns/sigstore/trusted_root.json": rootJSON})
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := s.SignLegacy(testsign.SimpleSigningPayload(repo, digestA), testsign.LegacyOptions{Cert: testsign.Cert{Email: releaseSigner, Issuer: mailIssuer}})
	if err != nil {
		t.Fatal(err)
	}
	sig := v.Legacy(layer.Data, layer.Annotations)
	verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
	if verdict.Code() != chartproofv1.ReasonUntrustedSigner {
		t.Fatalf("a Fulcio certificate under an x509 authority: %s (%s), want UntrustedSigner", verdict.Code(), verdict.Message())
	}
}

func ptr[T any](v T) *T { return &v }

// malleate re-encodes an ECDSA P-256 certificate's signature (r, s) as
// (r, n-s), which verifies as well: another certificate, the same key and
// contents.
func malleate(t *testing.T, c *x509.Certificate) *x509.Certificate {
	t.Helper()
	var cert struct {
		TBS, Alg asn1.RawValue
		Sig      asn1.BitString
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(c.Raw, &cert); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(cert.Sig.Bytes, &sig); err != nil {
		t.Fatal(err)
	}
	sig.S = new(big.Int).Sub(elliptic.P256().Params().N, sig.S)
	sigDER, err := asn1.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	cert.Sig = asn1.BitString{Bytes: sigDER, BitLength: 8 * len(sigDER)}
	der, err := asn1.Marshal(cert)
	if err != nil {
		t.Fatal(err)
	}
	out, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(out.Raw, c.Raw) {
		t.Fatal("not re-encoded")
	}
	return out
}

// TestX509Revocation (THREATS PKI-08, PKI-09): a leaf whose distribution
// point (a CRL on loopback) or whose cluster-served CRL revokes it does not
// count (CertificateRevoked); an unreachable one denies in Enforce
// (RevocationUnknown, inconclusive) and counts in SoftFail, the evidence
// saying so; a path whose status nobody established denies. Controls: the
// same leaf and CRL server, nothing revoked.
func TestX509Revocation(t *testing.T) {
	s := newSigstore(t)
	pk := newX509PKI(t)
	point := testsign.NewCRLPoint()
	defer point.Close()
	dp := point.URL
	leaf, err := pk.inter.Issue(pk.key, releaseSigner, func(c *x509.Certificate) { c.CRLDistributionPoints = []string{dp} })
	if err != nil {
		t.Fatal(err)
	}
	week := time.Now().Add(7 * 24 * time.Hour)
	empty, err := pk.inter.CRL(nil, week, nil)
	if err != nil {
		t.Fatal(err)
	}
	revoking, err := pk.inter.CRL([]*x509.Certificate{leaf}, week, nil)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := s.SignLegacy(testsign.SimpleSigningPayload(repo, digestA), testsign.LegacyOptions{
		Key: pk.key, KeyCert: leaf, Chain: ptr(testsign.PEM(pk.inter.Cert, pk.root.Cert)), NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		name       string
		served     []byte // the distribution point's CRL; nil: down
		revocation *chartproofv1.X509Revocation
		cluster    []byte // a CRL served from a ConfigMap for dp
		unchecked  bool   // judged without a revocation check
		listed     bool   // the leaf's serial in the policy's revocations.certificates
		want       string
		wantRev    string // the acceptance's revocation evidence, by prefix
	}{
		{name: "control: the CRL lists nothing", served: empty, want: chartproofv1.ReasonVerified, wantRev: "Good"},
		{name: "the CRL revokes the leaf", served: revoking, want: chartproofv1.ReasonCertificateRevoked},
		{name: "distribution point down, Enforce", want: chartproofv1.ReasonRevocationUnknown},
		{name: "distribution point down, SoftFail", revocation: &chartproofv1.X509Revocation{Mode: "SoftFail"},
			want: chartproofv1.ReasonVerified, wantRev: "Unknown (SoftFail): "},
		{name: "SoftFail never counts a revoked leaf", served: revoking, revocation: &chartproofv1.X509Revocation{Mode: "SoftFail"},
			want: chartproofv1.ReasonCertificateRevoked},
		{name: "the cluster's CRL revokes the leaf, the distribution point does not", served: empty, cluster: revoking,
			want: chartproofv1.ReasonCertificateRevoked},
		{name: "control: the cluster's CRL lists nothing, the distribution point down", cluster: empty,
			want: chartproofv1.ReasonVerified, wantRev: "Good"},
		{name: "no revocation check ran: deny by default", served: empty, unchecked: true, want: chartproofv1.ReasonRevocationUnknown},
		// A signer the policy revokes is refused as such, not left
		// inconclusive by a distribution point that is down: Rollback and
		// Uninstall act on a denial, never on an inconclusive verdict.
		{name: "leaf listed in revocations.certificates, distribution point down", listed: true, want: chartproofv1.ReasonSignerRevoked},
		{name: "leaf listed, the CRL lists nothing: the same reason", served: empty, listed: true, want: chartproofv1.ReasonSignerRevoked},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			point.Serve(tc.served)
			xa := &chartproofv1.X509Authority{
				Roots:      chartproofv1.CertificatesSource{Certificates: testsign.PEM(pk.root.Cert)},
				Identities: []chartproofv1.X509Identity{{SubjectAlternativeName: releaseSigner}},
				Revocation: tc.revocation,
			}
			objs := objects{}
			if tc.cluster != nil {
				if xa.Revocation == nil {
					xa.Revocation = &chartproofv1.X509Revocation{}
				}
				xa.Revocation.CRLs = []chartproofv1.CRLSource{{URL: dp, ConfigMapRef: &chartproofv1.CRLKeyReference{Name: "crls"}}}
				objs["ns/crls/crl"] = tc.cluster
			}
			spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{{Name: "pki", X509: xa}}}
			if tc.listed {
				spec.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Certificates: []chartproofv1.RevokedCertificate{
					{Issuer: policy.CertKeyID(pk.inter.Cert), Serial: leaf.SerialNumber.Text(16)}}}}
			}
			p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, objs)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			v, err := New(p.Authorities)
			if err != nil {
				t.Fatal(err)
			}
			sig := v.Legacy(layer.Data, layer.Annotations)
			sig.Layout, sig.Ref = policy.LayoutCosignLegacy, "sha256:ref"
			sigs := []policy.Signature{sig}
			if !tc.unchecked {
				sigs = revocation.New(nil).Annotate(context.Background(), p, sigs)
			}
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: sigs})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s: %s); want %s", got, verdict.Message(), verdict.Reasons, tc.want)
			}
			if got, want := verdict.Inconclusive, tc.want == chartproofv1.ReasonRevocationUnknown; got != want {
				t.Errorf("inconclusive = %v; want %v", got, want)
			}
			if tc.wantRev != "" && (len(verdict.Accepted) != 1 || !strings.HasPrefix(verdict.Accepted[0].Revocation, tc.wantRev)) {
				t.Errorf("accepted %+v; want revocation evidence %q...", verdict.Accepted, tc.wantRev)
			}
		})
	}
}

// TestX509Timestamps (THREATS PKI-13, PKI-01): an x509 authority whose
// trusted root lists a timestamp authority alone counts a signature only
// with a timestamp that authority made over the signature's bytes, and
// judges the path at its time. Tokens that do not say so give no signing
// time, and the signature does not count. The first rows are the controls.
func TestX509Timestamps(t *testing.T) {
	s := newSigstore(t)
	pk := newX509PKI(t)
	tsaRoot, err := testsign.NewRootCA("tsa root", nil)
	if err != nil {
		t.Fatal(err)
	}
	tsaInter, err := tsaRoot.NewIntermediate("tsa intermediate", nil)
	if err != nil {
		t.Fatal(err)
	}
	newTSA := func(issuer *testsign.CA, root *x509.Certificate, edit func(*x509.Certificate)) *testsign.TSA {
		t.Helper()
		tsa, err := testsign.NewTSA(issuer, []*x509.Certificate{issuer.Cert}, root, edit)
		if err != nil {
			t.Fatal(err)
		}
		return tsa
	}
	tsa := newTSA(tsaInter, tsaRoot.Cert, nil)
	// rogue chains to the x509 authority's own root: a code-signing PKI,
	// not a timestamp authority of the trusted root.
	rogue := newTSA(pk.inter, pk.root.Cert, nil)
	noEKU := newTSA(tsaInter, tsaRoot.Cert, func(c *x509.Certificate) {
		c.ExtraExtensions, c.ExtKeyUsage = nil, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	})
	now := time.Now().Truncate(time.Second)
	withdrawn := *tsa
	withdrawn.ValidUntil = now.Add(-2 * time.Minute)
	by := func(a *testsign.TSA, at time.Time, edit func(*timestamp.Timestamp)) func([]byte) ([]byte, error) {
		return func(sig []byte) ([]byte, error) { return a.Token(sig, at, edit) }
	}
	expired := func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-2*time.Hour), now.Add(-time.Hour) }
	tests := []struct {
		name     string
		leaf     func(*x509.Certificate)
		listed   *testsign.TSA // the trusted root's authority; default tsa
		stamp    func(sig []byte) ([]byte, error)
		signedAt time.Time // the signing time accepted, for Verified
		want     string
		wantText string // in what was found, for a refusal
	}{
		{name: "control: timestamped by the trusted root's authority", stamp: by(tsa, now.Add(-time.Minute), nil), signedAt: now.Add(-time.Minute), want: chartproofv1.ReasonVerified},
		{name: "control: expired leaf timestamped while valid (PKI-01 +)", leaf: expired, stamp: by(tsa, now.Add(-90*time.Minute), nil), signedAt: now.Add(-90 * time.Minute), want: chartproofv1.ReasonVerified},
		{name: "control: a token without certificates (the authority's is pinned)", stamp: by(tsa, now.Add(-time.Minute), func(ts *timestamp.Timestamp) { ts.AddTSACertificate = false }),
			signedAt: now.Add(-time.Minute), want: chartproofv1.ReasonVerified},
		{name: "expired leaf timestamped after it expired (PKI-01 -)", leaf: expired, stamp: by(tsa, now.Add(-30*time.Minute), nil), want: chartproofv1.ReasonCertificateRejected, wantText: "PKI-01"},
		{name: "no timestamp", want: chartproofv1.ReasonUntrustedSigner, wantText: "threshold not met"},
		{name: "a token over other bytes", stamp: func([]byte) ([]byte, error) { return tsa.Token([]byte("another signature"), now, nil) }, want: chartproofv1.ReasonUntrustedSigner,
			wantText: "hashed messages don't match"},
		{name: "an authority chaining only to the code-signing root", stamp: by(rogue, now.Add(-time.Minute), nil), want: chartproofv1.ReasonUntrustedSigner,
			wantText: "does not match the provided TSA certificate"},
		{name: "an authority certificate without the timeStamping EKU", listed: noEKU, stamp: by(noEKU, now.Add(-time.Minute), nil), want: chartproofv1.ReasonUntrustedSigner,
			wantText: "incompatible key usage"},
		{name: "an authority the trusted root withdrew before the token", listed: &withdrawn, stamp: by(tsa, now.Add(-time.Minute), nil), want: chartproofv1.ReasonUntrustedSigner,
			wantText: "after the validity period end"},
		{name: "a malformed token", stamp: func([]byte) ([]byte, error) { return []byte("0\x03\x02\x01\x00 not a token"), nil }, want: chartproofv1.ReasonUntrustedSigner,
			wantText: "error parsing response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			listed := tc.listed
			if listed == nil {
				listed = tsa
			}
			rootJSON, err := testsign.TrustedRootJSON(listed)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := pk.inter.Issue(pk.key, releaseSigner, tc.leaf)
			if err != nil {
				t.Fatal(err)
			}
			xa := &chartproofv1.X509Authority{
				Roots:       chartproofv1.CertificatesSource{Certificates: testsign.PEM(pk.root.Cert)},
				Identities:  []chartproofv1.X509Identity{{SubjectAlternativeName: releaseSigner}},
				TrustedRoot: &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "tsa"}},
			}
			spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{{Name: "pki", X509: xa}}}
			verdict, sig := judgeLegacy(t, s, spec, objects{"ns/tsa/trusted_root.json": rootJSON}, testsign.LegacyOptions{
				Key: pk.key, KeyCert: leaf, Chain: ptr(testsign.PEM(pk.inter.Cert, pk.root.Cert)), NoLog: true, TimestampBy: tc.stamp,
			})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s); want %s\nsignature: %+v", got, verdict.Message(), tc.want, sig)
			}
			if tc.wantText != "" {
				if len(verdict.Reasons) == 0 || !strings.Contains(verdict.Reasons[0].Found, tc.wantText) {
					t.Fatalf("verdict %+v does not say %q", verdict.Reasons, tc.wantText)
				}
			}
			if tc.want == chartproofv1.ReasonVerified {
				if at := verdict.Accepted[0].SignedAt; at == nil || !at.Equal(tc.signedAt) {
					t.Errorf("signed at %v; want the token's time %v", at, tc.signedAt)
				}
			}
		})
	}
}
