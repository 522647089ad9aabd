package gate_test

import (
	"context"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/notaryproject/notation-core-go/signature"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

const releaseIdentity = "x509.subject: C=US, ST=WA, O=Acme, CN=release"

func notationPKI(t *testing.T, cn string) *testsign.NotationPKI {
	t.Helper()
	p, err := testsign.NewNotationPKI(cn)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// notationAuthority trusts pki's root in the store of type store ("ca" or
// "signingAuthority") for identities.
func notationAuthority(pki *testsign.NotationPKI, store string, identities ...string) chartproofv1.Authority {
	src := &chartproofv1.CertificatesSource{Certificates: pki.RootPEM()}
	ts := chartproofv1.NotationTrustStore{CA: src}
	if store == "signingAuthority" {
		ts = chartproofv1.NotationTrustStore{SigningAuthority: src}
	}
	return chartproofv1.Authority{Name: "notary", Notation: &chartproofv1.NotationAuthority{TrustStore: ts, TrustedIdentities: identities}}
}

func compileAuthority(t *testing.T, host string, a chartproofv1.Authority) (*policy.Policy, *verify.Verifier) {
	t.Helper()
	return compileSpec(t, chartproofv1.TrustPolicySpec{Repositories: []string{host + "/charts/**"}, Authorities: []chartproofv1.Authority{a}})
}

// compileSpec compiles spec as ClusterTrustPolicy p, and its verifier.
func compileSpec(t *testing.T, spec chartproofv1.TrustPolicySpec) (*policy.Policy, *verify.Verifier) {
	t.Helper()
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	return p, v
}

// attachNotationSigned attaches signer's Notation signature (JWS) of
// repo@digest as a referrer.
func attachNotationSigned(t *testing.T, reg testsign.Registry, repo, digest string, signer *testsign.NotationPKI) {
	t.Helper()
	target, err := reg.Descriptor(repo, digest)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signer.Sign(target, testsign.NotationSignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AttachNotation(repo, digest, env, testsign.NotationJWSMediaType, false); err != nil {
		t.Fatal(err)
	}
}

// refusedBecause is what each refusal of TestNotationGate must say.
var refusedBecause = map[string]string{
	"certificate of another CA":                            "does not contain any trusted certificate",
	"identity not trusted":                                 "does not match the X.509 trusted identities",
	"NOT-01 another digest":                                "sha256:" + strings.Repeat("b", 64),
	"NOT-01 another size":                                  "(size",
	"NOT-01 another digest, under another CA":              "does not contain any trusted certificate",
	"NOT-01 another digest, plugin attribute not critical": "is not a critical Extended attribute",
	"NOT-01 another media type":                            "mediaType application/vnd.docker.distribution.manifest.v2+json",
	"NOT-02 unknown critical attribute":                    `critical signed attribute "io.example.mustUnderstand"`,
	"NOT-02 expired":                                       "digital signature has expired",
	"NOT-02 signingAuthority scheme, CA in the ca store":   "no trusted certificates are found",
	"NOT-02 x509 scheme, CA in the signingAuthority store": "no trusted certificates are found",
	"NOT-03 the organisation without its escaped rest":     "does not match the X.509 trusted identities",
	"NOT-04 verification plugin required":                  "plugin unsupported",
}

// TestNotationGate: a chart signed as `notation sign` signs it (JWS or
// COSE, referrers API or fallback tag) verifies under a Notation authority;
// each attack of THREATS NOT-01 to NOT-04 is refused with its reason code,
// beside the controls that pass.
func TestNotationGate(t *testing.T) {
	release := notationPKI(t, "release")
	intruder := notationPKI(t, "release") // the same subject, another CA
	escaped, err := testsign.NewNotationPKIFor(pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"Acme, Inc."}, CommonName: "release"})
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-30 * time.Minute)

	tests := []struct {
		name      string
		api       bool // the registry has the referrers API
		authority chartproofv1.Authority
		signer    *testsign.NotationPKI
		opts      testsign.NotationSignOptions
		target    func(v1.Descriptor) v1.Descriptor // what the envelope names; nil: the chart
		wantCode  string
	}{
		{name: "control: JWS, referrers API", api: true, authority: notationAuthority(release, "ca", releaseIdentity), signer: release, wantCode: chartproofv1.ReasonVerified},
		{name: "control: COSE, fallback tag", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			opts: testsign.NotationSignOptions{MediaType: testsign.NotationCOSEMediaType}, wantCode: chartproofv1.ReasonVerified},
		{name: "certificate of another CA", authority: notationAuthority(release, "ca", releaseIdentity), signer: intruder, wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "identity not trusted", authority: notationAuthority(release, "ca", "x509.subject: C=US, ST=WA, O=Acme, CN=nightly"), signer: release, wantCode: chartproofv1.ReasonUntrustedSigner},

		// NOT-01: the envelope names another artifact.
		{name: "NOT-01 another digest", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			target: func(d v1.Descriptor) v1.Descriptor { d.Digest.Hex = strings.Repeat("b", 64); return d }, wantCode: chartproofv1.ReasonSubjectMismatch},
		{name: "NOT-01 another size", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			target: func(d v1.Descriptor) v1.Descriptor { d.Size++; return d }, wantCode: chartproofv1.ReasonSubjectMismatch},
		{name: "NOT-01 another media type", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			target: func(d v1.Descriptor) v1.Descriptor { d.MediaType = types.DockerManifestSchema2; return d }, wantCode: chartproofv1.ReasonSubjectMismatch},

		{name: "NOT-01 another digest, under another CA", authority: notationAuthority(release, "ca", releaseIdentity), signer: intruder,
			target: func(d v1.Descriptor) v1.Descriptor { d.Digest.Hex = strings.Repeat("b", 64); return d }, wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "NOT-01 another digest, plugin attribute not critical", authority: notationAuthority(release, "ca", releaseIdentity), signer: intruder,
			opts:   testsign.NotationSignOptions{Attributes: []signature.Attribute{{Key: "io.cncf.notary.verificationPlugin", Value: "com.example.plugin"}}},
			target: func(d v1.Descriptor) v1.Descriptor { d.Size++; return d }, wantCode: chartproofv1.ReasonUntrustedSigner},

		// NOT-02: signed attributes.
		{name: "NOT-02 unknown critical attribute", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			opts: testsign.NotationSignOptions{Attributes: []signature.Attribute{{Key: "io.example.mustUnderstand", Value: "x", Critical: true}}}, wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "control: unknown attribute, not critical", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			opts: testsign.NotationSignOptions{Attributes: []signature.Attribute{{Key: "io.example.comment", Value: "x"}}}, wantCode: chartproofv1.ReasonVerified},
		{name: "NOT-02 expired", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			opts: testsign.NotationSignOptions{SigningTime: past, Expiry: past.Add(time.Minute)}, wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "control: expiry ahead", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			opts: testsign.NotationSignOptions{SigningTime: past, Expiry: time.Now().Add(time.Hour)}, wantCode: chartproofv1.ReasonVerified},
		{name: "NOT-02 signingAuthority scheme, CA in the ca store", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			opts: testsign.NotationSignOptions{SigningScheme: signature.SigningSchemeX509SigningAuthority}, wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "control: signingAuthority scheme and store", authority: notationAuthority(release, "signingAuthority", releaseIdentity), signer: release,
			opts: testsign.NotationSignOptions{SigningScheme: signature.SigningSchemeX509SigningAuthority}, wantCode: chartproofv1.ReasonVerified},
		{name: "NOT-02 x509 scheme, CA in the signingAuthority store", authority: notationAuthority(release, "signingAuthority", releaseIdentity), signer: release,
			wantCode: chartproofv1.ReasonUntrustedSigner},

		// NOT-03: identities are distinguished names, parsed strictly.
		{name: "NOT-03 escaped comma in the trusted identity", authority: notationAuthority(escaped, "ca", `x509.subject: C=US, ST=WA, O=Acme\, Inc., CN=release`), signer: escaped, wantCode: chartproofv1.ReasonVerified},
		{name: "NOT-03 the organisation without its escaped rest", authority: notationAuthority(escaped, "ca", releaseIdentity), signer: escaped, wantCode: chartproofv1.ReasonUntrustedSigner},

		// NOT-04: a plugin-signed envelope, and no plugin.
		{name: "NOT-04 verification plugin required", authority: notationAuthority(release, "ca", releaseIdentity), signer: release,
			opts: testsign.NotationSignOptions{Attributes: []signature.Attribute{{Key: "io.cncf.notary.verificationPlugin", Value: "com.example.plugin", Critical: true}}}, wantCode: chartproofv1.ReasonUntrustedSigner},
	}
	regs := map[bool]testsign.Registry{true: newRegistry(t, true), false: newRegistry(t, false)}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := regs[tc.api]
			repo := "charts/" + itoa(i) + "/hello"
			digest := pushChart(t, reg, repo, "1.0.0")
			target, err := reg.Descriptor(repo, digest)
			if err != nil {
				t.Fatal(err)
			}
			if tc.target != nil {
				target = tc.target(target)
			}
			env, err := tc.signer.Sign(target, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			mt := tc.opts.MediaType
			if mt == "" {
				mt = testsign.NotationJWSMediaType
			}
			if _, err := reg.AttachNotation(repo, digest, env, mt, !tc.api); err != nil {
				t.Fatal(err)
			}
			p, v := compileAuthority(t, reg.Host, tc.authority)
			client := oci.NewClient(oci.Options{PlainHTTP: true})
			res := gate.Check(context.Background(), client, nil, gate.Request{URL: "oci://" + reg.Host + "/" + repo, Version: "1.0.0", Policy: p, Verifier: v})
			if res.Verdict.Code() != tc.wantCode {
				t.Fatalf("Check: %s (%s), want %s", res.Verdict.Code(), res.Verdict.Message(), tc.wantCode)
			}
			if tc.wantCode != chartproofv1.ReasonVerified {
				// Each refusal for its own reason, not another failure.
				if why := refusedBecause[tc.name]; why == "" || !strings.Contains(res.Verdict.Reasons[0].Found, why) {
					t.Fatalf("refused with %q, want it to say %q", res.Verdict.Reasons[0].Found, why)
				}
				return
			}
			acc := res.Verdict.Accepted
			if len(acc) != 1 || acc[0].Layout != policy.LayoutNotation || acc[0].Identity == nil || acc[0].Identity.Subject != tc.signer.Leaf.Subject.String() {
				t.Fatalf("accepted %+v, want the leaf's notation signature", acc)
			}
			if res = gate.Load(context.Background(), client, nil, res); !res.Verdict.Passed() || res.Chart == nil {
				t.Fatalf("Load: %s", res.Verdict.Message())
			}
		})
	}
}

// TestNotationManifestShape: a referrer of the Notation artifact type must
// hold exactly one JWS or COSE envelope; anything else is refused as
// MalformedSignature, beside the control attached as notation does.
func TestNotationManifestShape(t *testing.T) {
	release := notationPKI(t, "release")
	reg := newRegistry(t, true)
	for i, shape := range []string{"control", "two layers", "not an envelope"} {
		t.Run(shape, func(t *testing.T) {
			repo := "charts/shape" + itoa(i) + "/hello"
			digest := pushChart(t, reg, repo, "1.0.0")
			target, err := reg.Descriptor(repo, digest)
			if err != nil {
				t.Fatal(err)
			}
			env, err := release.Sign(target, testsign.NotationSignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			m := testsign.Manifest{
				Config:  testsign.Blob{MediaType: testsign.NotationArtifactType, Data: []byte("{}")},
				Layers:  []testsign.Blob{{MediaType: testsign.NotationJWSMediaType, Data: env}},
				Subject: &target,
			}
			switch shape {
			case "two layers":
				m.Layers = append(m.Layers, m.Layers[0])
			case "not an envelope":
				m.Layers[0].MediaType = "text/plain"
			}
			if _, err := reg.PushManifest(repo, "", m); err != nil {
				t.Fatal(err)
			}
			p, v := compileAuthority(t, reg.Host, notationAuthority(release, "ca", releaseIdentity))
			res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
				URL: "oci://" + reg.Host + "/" + repo, Version: "1.0.0", Policy: p, Verifier: v,
			})
			want := chartproofv1.ReasonMalformedSignature
			if shape == "control" {
				want = chartproofv1.ReasonVerified
			}
			if res.Verdict.Code() != want {
				t.Fatalf("Check: %s (%s), want %s", res.Verdict.Code(), res.Verdict.Message(), want)
			}
		})
	}
}

// TestOneKeyOneSignerAcrossKinds: a key authority and a notation authority
// whose leaf certificate holds the same key are one signer, not two: under
// threshold 2, one holder of the key signing both ways is ThresholdNotMet;
// the twin, two keys, is Verified.
func TestOneKeyOneSignerAcrossKinds(t *testing.T) {
	reg := newRegistry(t, true)
	for i, sameKey := range []bool{false, true} {
		t.Run(map[bool]string{false: "control: two keys", true: "one key, both kinds"}[sameKey], func(t *testing.T) {
			pki := notationPKI(t, "release")
			cosignKey, err := testsign.NewKey("p256")
			if err != nil {
				t.Fatal(err)
			}
			if sameKey {
				cosignKey = &testsign.Key{Signer: pki.LeafKey}
			}
			repo := "charts/kinds" + itoa(i) + "/hello"
			digest := pushChart(t, reg, repo, "1.0.0")
			if err := reg.SignLegacy(repo, digest, digest, cosignKey); err != nil {
				t.Fatal(err)
			}
			attachNotationSigned(t, reg, repo, digest, pki)
			p, v := compileSpec(t, chartproofv1.TrustPolicySpec{
				Repositories: []string{reg.Host + "/charts/**"},
				Threshold:    2,
				Authorities: []chartproofv1.Authority{
					{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: cosignKey.PublicPEM()}},
					notationAuthority(pki, "ca", releaseIdentity),
				},
			})
			res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{URL: "oci://" + reg.Host + "/" + repo, Version: "1.0.0", Policy: p, Verifier: v})
			want := chartproofv1.ReasonVerified
			if sameKey {
				want = chartproofv1.ReasonThresholdNotMet
			}
			if res.Verdict.Code() != want {
				t.Fatalf("Check: %s (%s), want %s", res.Verdict.Code(), res.Verdict.Message(), want)
			}
		})
	}
}

// TestNotationRevokedCertificate (issue 12, item 2; THREATS PKI-08):
// revocations.certificates apply to the chain a Notation authority
// verified, as to an x509 authority's path: the leaf's serial under its
// issuer, or the root itself, revoked → SignerRevoked; the control lists
// the leaf's serial under another issuer and verifies.
func TestNotationRevokedCertificate(t *testing.T) {
	release := notationPKI(t, "release")
	other := notationPKI(t, "release")
	reg := newRegistry(t, true)
	rows := []struct {
		name    string
		revoked chartproofv1.RevokedCertificate
		want    string
	}{
		{"leaf revoked", chartproofv1.RevokedCertificate{Issuer: policy.CertKeyID(release.Root), Serial: release.Leaf.SerialNumber.Text(16)}, chartproofv1.ReasonSignerRevoked},
		{"root revoked", chartproofv1.RevokedCertificate{Issuer: policy.CertKeyID(release.Root), Serial: release.Root.SerialNumber.Text(16)}, chartproofv1.ReasonSignerRevoked},
		{"control: the leaf's serial under another issuer", chartproofv1.RevokedCertificate{Issuer: policy.CertKeyID(other.Root), Serial: release.Leaf.SerialNumber.Text(16)}, chartproofv1.ReasonVerified},
	}
	for i, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			repo := "charts/revoked-" + itoa(i) + "/hello"
			digest := pushChart(t, reg, repo, "1.0.0")
			attachNotationSigned(t, reg, repo, digest, release)
			p, v := compileSpec(t, chartproofv1.TrustPolicySpec{
				Repositories: []string{reg.Host + "/charts/**"},
				Authorities:  []chartproofv1.Authority{notationAuthority(release, "ca", releaseIdentity)},
				Revocations:  &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Certificates: []chartproofv1.RevokedCertificate{tc.revoked}}},
			})
			res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil,
				gate.Request{URL: "oci://" + reg.Host + "/" + repo, Version: "1.0.0", Policy: p, Verifier: v})
			if res.Verdict.Code() != tc.want {
				t.Fatalf("Check: %s (%s), want %s", res.Verdict.Code(), res.Verdict.Message(), tc.want)
			}
			if tc.want == chartproofv1.ReasonSignerRevoked {
				if found := res.Verdict.Reasons[0].Found; !strings.Contains(found, "is revoked") || !strings.Contains(found, "serial "+tc.revoked.Serial) {
					t.Fatalf("refused with %q, want the revoked certificate named", found)
				}
			}
		})
	}
}
