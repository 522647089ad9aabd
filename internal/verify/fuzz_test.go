package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// FuzzBundle feeds Verifier.Bundle, which reads a Sigstore bundle served by
// a registry (THREATS DOS-04, SIG-07). The seeds are bundles signed by the
// trusted key over a statement naming digestA, so a mutation can only keep
// them trusted by leaving the signed statement intact: whatever comes out
// trusted names exactly digestA, and nothing malformed is trusted.
func FuzzBundle(f *testing.F) {
	trusted, err := testsign.NewKey("p256")
	if err != nil {
		f.Fatal(err)
	}
	other, err := testsign.NewKey("p256")
	if err != nil {
		f.Fatal(err)
	}
	pub, id, err := policy.ParsePublicKey([]byte(trusted.PublicPEM()))
	if err != nil {
		f.Fatal(err)
	}
	v, err := New([]policy.Authority{{Name: "team", PublicKey: pub, KeyID: id}})
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []*testsign.Key{trusted, other} {
		b, err := testsign.Bundle(testsign.Statement("r.example/app", digestA), k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{"publicKey":{"hint":"x"}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"AAAA"}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, ok := v.Bundle(data)
		if !ok {
			if !cmp.Equal(sig, policy.Signature{}) {
				t.Fatalf("not a signature, but %+v", sig)
			}
			return
		}
		if sig.Authority == "" {
			if len(sig.Subjects) != 0 {
				t.Errorf("untrusted signature names subjects %v", sig.Subjects)
			}
			return
		}
		if sig.Malformed || sig.Problem != "" {
			t.Errorf("trusted signature is malformed: %+v", sig)
		}
		if sig.Authority != "team" || sig.KeyID != id {
			t.Errorf("trusted by %q key %q, want team key %q", sig.Authority, sig.KeyID, id)
		}
		if !cmp.Equal(sig.Subjects, []string{digestA}) {
			t.Errorf("trusted signature names %v, want exactly [%s]: only that statement was signed", sig.Subjects, digestA)
		}
	})
}

// FuzzParseManifest feeds parseManifest, which reads the legacy .sig
// manifest and each referrer's manifest (THREATS DOS-04, BND-08). Whatever
// it accepts has canonical digests, so the subject check in collectBundle
// compares canonical strings, and reads the same after a round trip.
func FuzzParseManifest(f *testing.F) {
	subject := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 500, Digest: v1.Hash{Algorithm: "sha256", Hex: digestA[len("sha256:"):]}}
	layer := v1.Descriptor{MediaType: BundleMediaType, Size: 1200, Digest: v1.Hash{Algorithm: "sha256", Hex: digestB[len("sha256:"):]}}
	for _, m := range []ociManifest{
		{MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: BundleMediaType, Layers: []v1.Descriptor{layer}, Subject: &subject},
		{MediaType: "application/vnd.oci.image.manifest.v1+json", Layers: []v1.Descriptor{{MediaType: SimpleSigningMediaType, Size: 250, Digest: layer.Digest, Annotations: map[string]string{SignatureAnnotation: "MEUCIQ=="}}}},
	} {
		raw, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"layers":[],"layers":[]}`))
	f.Add([]byte(`{"Subject":{"digest":"sha256:` + digestA[7:] + `"},"subject":null}`))
	f.Add([]byte(`{"subject":{"digest":"SHA256:AAAA","size":-1}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseManifest(raw)
		if err != nil {
			return
		}
		descs := m.Layers
		if m.Subject != nil {
			descs = append(descs[:len(descs):len(descs)], *m.Subject)
		}
		for _, d := range descs {
			if !policy.CanonicalDigest(d.Digest.String()) {
				t.Errorf("accepted a descriptor with digest %q, not canonical", d.Digest)
			}
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encoding an accepted manifest: %v", err)
		}
		m2, err := parseManifest(again)
		if err != nil {
			t.Fatalf("an accepted manifest, re-encoded, is refused: %v", err)
		}
		if diff := cmp.Diff(m, m2); diff != "" {
			t.Errorf("round trip changed the manifest (-first +second):\n%s", diff)
		}
	})
}

// FuzzLegacy feeds Verifier.Legacy the annotations of a legacy layer
// (signature, certificate, chain, Rekor bundle, RFC 3161 timestamp), which
// a registry serves (THREATS DOS-04, SIG-01, SIG-07). The seeds are a
// keyless layer from a throwaway Sigstore whose root the verifier trusts
// and a keyed, logged layer by the trusted key, both over a payload naming
// digestA. Whatever the annotations, nothing panics, a malformed layer is
// never trusted, and a trusted one is exactly what was signed: the key's
// authority, or the one certificate the trusted CA issued, naming digestA.
func FuzzLegacy(f *testing.F) {
	s, err := testsign.NewSigstore()
	if err != nil {
		f.Fatal(err)
	}
	k, err := testsign.NewKey("p256")
	if err != nil {
		f.Fatal(err)
	}
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		f.Fatal(err)
	}
	p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, keylessSpec(1, releaseTags), objects{"ns/sigstore/trusted_root.json": rootJSON})
	if err != nil {
		f.Fatal(err)
	}
	pub, id, err := policy.ParsePublicKey([]byte(k.PublicPEM()))
	if err != nil {
		f.Fatal(err)
	}
	v, err := New(append(p.Authorities, policy.Authority{Name: "team", PublicKey: pub, KeyID: id}))
	if err != nil {
		f.Fatal(err)
	}
	payload := testsign.SimpleSigningPayload(repo, digestA)
	keyless, err := s.SignLegacy(payload, testsign.LegacyOptions{Cert: ghCert(), Timestamp: true})
	if err != nil {
		f.Fatal(err)
	}
	keyed, err := s.SignLegacy(payload, testsign.LegacyOptions{Key: k})
	if err != nil {
		f.Fatal(err)
	}
	trustedLeaf := keyless.Annotations[testsign.CertificateAnnotation]
	add := func(a map[string]string) {
		f.Add(a[testsign.SignatureAnnotation], a[testsign.CertificateAnnotation], a[testsign.ChainAnnotation], a[testsign.BundleAnnotation], a[testsign.TimestampAnnotation])
	}
	add(keyless.Annotations)
	add(keyed.Annotations)
	f.Add("AAAA", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "", `{"SignedEntryTimestamp":"","Payload":{"body":"e30=","integratedTime":1,"logIndex":-1,"logID":""}}`, `{"SignedRFC3161Timestamp":"AA=="}`)
	f.Add("", "", "x", "[]", "null")
	f.Fuzz(func(t *testing.T, sig, cert, chain, bundle, ts string) {
		ann := map[string]string{}
		for k, v := range map[string]string{SignatureAnnotation: sig, CertificateAnnotation: cert, ChainAnnotation: chain, RekorBundleAnnotation: bundle, TimestampAnnotation: ts} {
			if v != "" {
				ann[k] = v
			}
		}
		got := v.Legacy(payload, ann)
		trusted := got.Authority != "" || len(got.RootVerified) != 0
		switch {
		case got.Malformed && trusted:
			t.Fatalf("malformed yet trusted: %+v", got)
		case !trusted:
			if len(got.Subjects) != 0 || got.Identity != nil || len(got.Log) != 0 || got.Problem == "" {
				t.Errorf("untrusted signature with facts or without a problem: %+v", got)
			}
			return
		case got.Authority != "" && len(got.RootVerified) != 0:
			t.Fatalf("trusted both by a key and by a trusted root: %+v", got)
		case got.Authority != "" && (got.Authority != "team" || got.KeyID != id):
			t.Errorf("trusted by %q key %q, want team key %q", got.Authority, got.KeyID, id)
		case len(got.RootVerified) != 0 && (!samePEM(cert, trustedLeaf) || got.Identity == nil || got.Identity.Subject != ghWorkflow):
			t.Errorf("trusted by a root with a certificate the trusted CA did not issue, or another identity: %+v", got)
		}
		if !cmp.Equal(got.Subjects, []string{digestA}) || got.Problem != "" {
			t.Errorf("trusted signature names %v (problem %q), want exactly [%s]", got.Subjects, got.Problem, digestA)
		}
	})
}

// samePEM reports whether the first PEM blocks of a and b hold the same
// bytes.
func samePEM(a, b string) bool {
	pa, _ := pem.Decode([]byte(a))
	pb, _ := pem.Decode([]byte(b))
	return pa != nil && pb != nil && bytes.Equal(pa.Bytes, pb.Bytes)
}

// FuzzProvenance feeds Verifier.Provenance, which reads a Helm provenance
// layer any pusher can write (THREATS PRV-04). The seed is a file the
// trusted key signed over the hello chart's archive, so a mutation stays
// trusted only by leaving the signed text intact: whatever comes out trusted
// names exactly that archive and that chart, and nothing malformed or
// untrusted names anything.
func FuzzProvenance(f *testing.F) {
	trusted, err := testsign.NewPGPKey("release", testsign.PGPKeyOptions{})
	if err != nil {
		f.Fatal(err)
	}
	other, err := testsign.NewPGPKey("other", testsign.PGPKeyOptions{})
	if err != nil {
		f.Fatal(err)
	}
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{"r.example/charts/*"},
		Authorities: []chartproofv1.Authority{{Name: "helm", HelmProvenance: &chartproofv1.HelmProvenanceAuthority{
			PublicKeys: testsign.ArmoredKeyring(trusted, other), Fingerprints: []string{trusted.Fingerprint()},
		}}},
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	v, err := New(p.Authorities)
	if err != nil {
		f.Fatal(err)
	}
	archive := []byte("hello-0.1.0.tgz bytes")
	text := testsign.ProvenanceText("hello", "0.1.0", "hello-0.1.0.tgz", archive)
	want := policy.ProvenanceFacts{Name: "hello", Version: "0.1.0", File: "hello-0.1.0.tgz"}
	sum := "sha256:" + hex.EncodeToString(sha256Sum(archive))
	for _, k := range []*testsign.PGPKey{trusted, other} {
		prov, err := k.ClearSign(text, testsign.ClearSignOptions{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(prov)
	}
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sig := v.Provenance("sha256:prov", data)
		if sig.Authority == "" {
			if len(sig.Subjects) != 0 || sig.Provenance != nil {
				t.Errorf("untrusted provenance names %v %+v", sig.Subjects, sig.Provenance)
			}
			return
		}
		if sig.Malformed || sig.KeyID != trusted.Fingerprint() || len(sig.Subjects) != 1 || sig.Subjects[0] != sum || sig.Provenance == nil || *sig.Provenance != want {
			t.Errorf("trusted provenance says %+v", sig)
		}
	})
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// FuzzLegacyAttestation feeds arbitrary `.att` layers (the DSSE envelope
// and its predicateType annotation, issue 15) to a verifier trusting one
// key. Whatever the bytes, a layer is trusted only when it is the key's
// envelope of the original statement: the predicate type, subjects and
// predicate it reports are those the key signed, never what the
// annotation claims; a malformed layer is never trusted; an untrusted one
// reports no facts.
func FuzzLegacyAttestation(f *testing.F) {
	k, err := testsign.NewKey("p256")
	if err != nil {
		f.Fatal(err)
	}
	pub, id, err := policy.ParsePublicKey([]byte(k.PublicPEM()))
	if err != nil {
		f.Fatal(err)
	}
	v, err := New([]policy.Authority{{Name: "builder", PublicKey: pub, KeyID: id}})
	if err != nil {
		f.Fatal(err)
	}
	const slsa = "https://slsa.dev/provenance/v1"
	stmt := testsign.AttestationStatement(slsa, `{"builder":{"id":"https://github.com/actions/runner/github-hosted"}}`, repo, digestA)
	env, err := testsign.DSSEEnvelope(stmt, k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env, slsa)
	f.Add(env, "https://spdx.dev/Document")
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`), slsa)
	f.Add([]byte(`{"payloadType":"x","payload":"","signatures":[]}`), "")
	f.Fuzz(func(t *testing.T, envelope []byte, claimed string) {
		got, ok := v.prepareLegacyAttestation(envelope, map[string]string{LegacyPredicateTypeAnnotation: claimed}).Run()
		if !ok {
			return // a signature, not an attestation
		}
		switch {
		case got.Malformed && got.Authority != "":
			t.Fatalf("malformed yet trusted: %+v", got)
		case got.Authority == "":
			if len(got.Subjects) != 0 || got.PredicateType != "" || got.Attestation != nil || got.Problem == "" {
				t.Errorf("untrusted attestation with facts or without a problem: %+v", got)
			}
			return
		}
		if got.Authority != "builder" || got.PredicateType != slsa || !cmp.Equal(got.Subjects, []string{digestA}) ||
			got.Attestation == nil || !strings.Contains(string(got.Attestation.Predicate), "github-hosted") {
			t.Errorf("trusted attestation reports %+v; want the statement the key signed", got)
		}
	})
}
