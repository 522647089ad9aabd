package verify

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

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
