// Package testsign pushes Helm charts to a registry and signs them the way
// cosign does, in both layouts, with throwaway keys. It is for tests only:
// production code never imports it. Interoperability with the real cosign
// CLI is tested separately (e2e); this package makes unit tests fast.
package testsign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// Media types of Helm charts and cosign signatures.
const (
	HelmConfigMediaType    = "application/vnd.cncf.helm.config.v1+json"
	HelmChartMediaType     = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	BundleMediaType        = "application/vnd.dev.sigstore.bundle.v0.3+json"
	emptyConfigMediaType   = "application/vnd.oci.empty.v1+json"
	inTotoPayloadType      = "application/vnd.in-toto+json"
	cosignSignPredicate    = "https://sigstore.dev/cosign/sign/v1"
)

// Key is a throwaway signing key.
type Key struct {
	Signer crypto.Signer
}

// NewKey makes a key: "p256", "p384", "ed25519", "rsa2048" or "rsa1024".
func NewKey(kind string) (*Key, error) {
	var (
		s   crypto.Signer
		err error
	)
	switch kind {
	case "p256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "p521":
		s, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "ed25519":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	case "rsa2048":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa1024":
		s, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		return nil, fmt.Errorf("testsign: unknown key kind %q", kind)
	}
	if err != nil {
		return nil, err
	}
	return &Key{Signer: s}, nil
}

// PublicPEM is the PKIX PEM of the public key, as cosign.pub holds it.
func (k *Key) PublicPEM() string {
	der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil {
		panic(err) // every key NewKey makes marshals
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Sign signs msg as cosign does: ECDSA and RSA (PKCS#1 v1.5) over its
// SHA-256, Ed25519 over the message itself.
func (k *Key) Sign(msg []byte) ([]byte, error) {
	if _, ok := k.Signer.(ed25519.PrivateKey); ok {
		return k.Signer.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	sum := sha256.Sum256(msg)
	return k.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// Registry pushes to one registry host.
type Registry struct {
	Host    string // host:port
	Options []remote.Option
}

func (r Registry) ref(repo, tagOrDigest string) (name.Reference, error) {
	sep := ":"
	if strings.HasPrefix(tagOrDigest, "sha256:") {
		sep = "@"
	}
	return name.ParseReference(r.Host+"/"+repo+sep+tagOrDigest, name.Insecure)
}

// PushChart pushes a chart archive as Helm does (config + one chart layer)
// and tags it. It returns the manifest digest.
func (r Registry) PushChart(repo, tag string, archive []byte, chartName, version string) (string, error) {
	config := []byte(fmt.Sprintf(`{"name":%q,"version":%q,"apiVersion":"v2"}`, chartName, version))
	return r.PushManifest(repo, tag, Manifest{
		Config: Blob{MediaType: HelmConfigMediaType, Data: config},
		Layers: []Blob{{MediaType: HelmChartMediaType, Data: archive}},
	})
}

// Blob is content with its media type and layer annotations.
type Blob struct {
	MediaType   string
	Data        []byte
	Annotations map[string]string
}

// Manifest is an OCI image manifest to push.
type Manifest struct {
	ArtifactType string
	Config       Blob
	Layers       []Blob
	Subject      *v1.Descriptor
	Annotations  map[string]string
}

// PushManifest uploads the blobs and the manifest, tagged with tag, or
// untagged (by digest) when tag is empty. It returns the manifest digest.
func (r Registry) PushManifest(repo, tag string, m Manifest) (string, error) {
	raw, err := r.pushManifest(repo, tag, m)
	if err != nil {
		return "", err
	}
	return digestOf(raw), nil
}

func (r Registry) pushManifest(repo, tag string, m Manifest) ([]byte, error) {
	doc := map[string]any{
		"schemaVersion": 2,
		"mediaType":     string(types.OCIManifestSchema1),
	}
	if m.ArtifactType != "" {
		doc["artifactType"] = m.ArtifactType
	}
	cfg, err := r.PushBlob(repo, m.Config)
	if err != nil {
		return nil, err
	}
	doc["config"] = cfg
	layers := []v1.Descriptor{}
	for _, l := range m.Layers {
		d, err := r.PushBlob(repo, l)
		if err != nil {
			return nil, err
		}
		layers = append(layers, d)
	}
	doc["layers"] = layers
	if m.Subject != nil {
		doc["subject"] = m.Subject
	}
	if m.Annotations != nil {
		doc["annotations"] = m.Annotations
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return raw, r.PutRaw(repo, tag, types.OCIManifestSchema1, raw)
}

// PutRaw uploads raw manifest bytes under tag (or by their digest when tag
// is empty).
func (r Registry) PutRaw(repo, tag string, mt types.MediaType, raw []byte) error {
	if tag == "" {
		tag = digestOf(raw)
	}
	ref, err := r.ref(repo, tag)
	if err != nil {
		return err
	}
	return remote.Put(ref, rawManifest{raw: raw, mt: mt}, r.Options...)
}

// PushBlob uploads one blob and returns its descriptor.
func (r Registry) PushBlob(repo string, b Blob) (v1.Descriptor, error) {
	repoRef, err := name.NewRepository(r.Host+"/"+repo, name.Insecure)
	if err != nil {
		return v1.Descriptor{}, err
	}
	l := staticLayer{data: b.Data, mt: types.MediaType(b.MediaType)}
	if err := remote.WriteLayer(repoRef, l, r.Options...); err != nil {
		return v1.Descriptor{}, fmt.Errorf("testsign: push blob: %w", err)
	}
	h, _ := l.Digest()
	return v1.Descriptor{MediaType: l.mt, Size: int64(len(b.Data)), Digest: h, Annotations: b.Annotations}, nil
}

// SimpleSigningPayload is the payload cosign signs in the legacy layout.
func SimpleSigningPayload(dockerReference, digest string) []byte {
	return []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, dockerReference, digest))
}

// SignLegacy signs digest in cosign's legacy layout: a simple-signing
// payload layer, its signature in an annotation, under the tag
// "sha256-<hex>.sig". Existing signatures under that tag are kept, as cosign
// keeps them. The payload names payloadDigest (normally digest itself; tests
// of copied signatures pass another).
func (r Registry) SignLegacy(repo, digest, payloadDigest string, k *Key) error {
	payload := SimpleSigningPayload(r.Host+"/"+repo, payloadDigest)
	return r.SignLegacyPayload(repo, digest, payload, k)
}

// SignLegacyPayload is SignLegacy with a payload of the caller's choosing.
func (r Registry) SignLegacyPayload(repo, digest string, payload []byte, k *Key) error {
	sig, err := k.Sign(payload)
	if err != nil {
		return err
	}
	layer := Blob{MediaType: SimpleSigningMediaType, Data: payload, Annotations: map[string]string{
		"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig),
	}}
	return r.AppendLegacyLayer(repo, digest, layer)
}

// AppendLegacyLayer adds a layer to the manifest at the legacy .sig tag.
func (r Registry) AppendLegacyLayer(repo, digest string, layer Blob) error {
	return r.appendLayer(repo, strings.Replace(digest, ":", "-", 1)+".sig", layer)
}

// AttachLegacyAttestation adds a DSSE envelope (DSSEEnvelope) as a layer
// of the manifest at cosign v2's attestation tag "sha256-<hex>.att", with
// the annotations cosign writes: the predicate type (predicateType; none
// when empty) and an empty signature.
func (r Registry) AttachLegacyAttestation(repo, digest string, envelope []byte, predicateType string) error {
	ann := map[string]string{"dev.cosignproject.cosign/signature": ""}
	if predicateType != "" {
		ann["predicateType"] = predicateType
	}
	return r.AppendLegacyAttestationLayer(repo, digest, Blob{MediaType: DSSEMediaType, Data: envelope, Annotations: ann})
}

// AppendLegacyAttestationLayer adds a layer (Sigstore.AttestLegacy) to
// the manifest at cosign v2's attestation tag "sha256-<hex>.att".
func (r Registry) AppendLegacyAttestationLayer(repo, digest string, layer Blob) error {
	return r.appendLayer(repo, strings.Replace(digest, ":", "-", 1)+".att", layer)
}

// DSSEMediaType is the media type of a layer of cosign's `.att` tag.
const DSSEMediaType = "application/vnd.dsse.envelope.v1+json"

// DSSEEnvelope is a DSSE envelope over an in-toto statement signed by k, as
// JSON, as cosign v2 `attest --key` writes it.
func DSSEEnvelope(statement []byte, k *Key) ([]byte, error) {
	sig, err := k.Sign(dsse.PAE(inTotoPayloadType, statement))
	if err != nil {
		return nil, err
	}
	return envelopeJSON(statement, sig)
}

// AttestationStatement is an in-toto v1 statement of predicateType over
// the digests, with predicate (JSON) as its predicate.
func AttestationStatement(predicateType, predicate, subjectName string, subjectDigests ...string) []byte {
	var subjects []string
	for _, d := range subjectDigests {
		subjects = append(subjects, fmt.Sprintf(`{"name":%q,"digest":{"sha256":%q}}`, subjectName, strings.TrimPrefix(d, "sha256:")))
	}
	return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[%s],"predicateType":%q,"predicate":%s}`, strings.Join(subjects, ","), predicateType, predicate))
}

func (r Registry) appendLayer(repo, tag string, layer Blob) error {
	var layers []Blob
	if ref, err := r.ref(repo, tag); err == nil {
		if desc, err := remote.Get(ref, r.Options...); err == nil {
			var m v1.Manifest
			if err := json.Unmarshal(desc.Manifest, &m); err != nil {
				return err
			}
			for _, l := range m.Layers {
				data, err := r.fetchBlob(repo, l.Digest)
				if err != nil {
					return err
				}
				layers = append(layers, Blob{MediaType: string(l.MediaType), Data: data, Annotations: l.Annotations})
			}
		}
	}
	layers = append(layers, layer)
	_, err := r.PushManifest(repo, tag, Manifest{
		Config: Blob{MediaType: "application/vnd.oci.image.config.v1+json", Data: []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)},
		Layers: layers,
	})
	return err
}

func (r Registry) fetchBlob(repo string, h v1.Hash) ([]byte, error) {
	ref, err := name.NewDigest(r.Host+"/"+repo+"@"+h.String(), name.Insecure)
	if err != nil {
		return nil, err
	}
	l, err := remote.Layer(ref, r.Options...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	return buf.Bytes(), err
}

// Statement is the in-toto statement cosign v3 signs for an OCI artifact.
func Statement(subjectName string, subjectDigests ...string) []byte {
	var subjects []string
	for _, d := range subjectDigests {
		subjects = append(subjects, fmt.Sprintf(`{"name":%q,"digest":{"sha256":%q}}`, subjectName, strings.TrimPrefix(d, "sha256:")))
	}
	return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[%s],"predicateType":%q,"predicate":{}}`, strings.Join(subjects, ","), cosignSignPredicate))
}

// Bundle makes a Sigstore bundle v0.3 with a DSSE envelope over statement,
// signed by k, with a public-key hint, as `cosign sign --key` v3 writes it
// without a transparency log.
func Bundle(statement []byte, k *Key) ([]byte, error) {
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(inTotoPayloadType), inTotoPayloadType, len(statement), statement)
	sig, err := k.Sign([]byte(pae))
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil {
		return nil, err
	}
	hint := sha256.Sum256(der)
	pb := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{
				Hint: base64.StdEncoding.EncodeToString(hint[:]),
			}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     statement,
			PayloadType: inTotoPayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig}},
		}},
	}
	return protojson.Marshal(pb)
}

// MessageBundle makes a Sigstore bundle v0.3 with a message signature over
// artifact by k, with a public-key hint, as `cosign sign-blob --key
// --new-bundle-format` writes it without a transparency log.
func MessageBundle(artifact []byte, k *Key) ([]byte, error) {
	sig, err := k.Sign(artifact)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil {
		return nil, err
	}
	hint, digest := sha256.Sum256(der), sha256.Sum256(artifact)
	pb := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{
				Hint: base64.StdEncoding.EncodeToString(hint[:]),
			}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}},
	}
	return protojson.Marshal(pb)
}

// AttachBundle pushes bundle as an OCI referrer of digest (manifest with
// subject and the bundle artifact type). When fallbackTag is true it also
// writes the referrers fallback tag "sha256-<hex>" as an index listing the
// referrer (keeping what the tag already lists), as clients do for
// registries without the referrers API. It returns the referrer's digest.
func (r Registry) AttachBundle(repo, digest string, bundle []byte, fallbackTag bool) (string, error) {
	return r.AttachBundleAs(repo, digest, bundle, cosignSignPredicate, fallbackTag)
}

// AttachBundleAs is AttachBundle with the predicate type the referrer's
// annotation names (none when empty), as cosign v3 `attest` and GitHub's
// attest-build-provenance attach an attestation.
func (r Registry) AttachBundleAs(repo, digest string, bundle []byte, predicateType string, fallbackTag bool) (string, error) {
	subject, err := r.descriptorOf(repo, digest)
	if err != nil {
		return "", err
	}
	m := Manifest{
		ArtifactType: BundleMediaType,
		Config:       Blob{MediaType: emptyConfigMediaType, Data: []byte("{}")},
		Layers:       []Blob{{MediaType: BundleMediaType, Data: bundle}},
		Subject:      &subject,
		Annotations:  map[string]string{"dev.sigstore.bundle.content": "dsse-envelope"},
	}
	if predicateType != "" {
		m.Annotations["dev.sigstore.bundle.predicateType"] = predicateType
	}
	raw, err := r.pushManifest(repo, "", m)
	if err != nil {
		return "", err
	}
	refDigest := digestOf(raw)
	if fallbackTag {
		if err := r.addToFallbackIndex(repo, digest, v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Size: int64(len(raw)), Digest: mustHash(refDigest), ArtifactType: BundleMediaType,
		}); err != nil {
			return "", err
		}
	}
	return refDigest, nil
}

func (r Registry) addToFallbackIndex(repo, digest string, d v1.Descriptor) error {
	tag := strings.Replace(digest, ":", "-", 1)
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	if ref, err := r.ref(repo, tag); err == nil {
		if desc, err := remote.Get(ref, r.Options...); err == nil {
			if err := json.Unmarshal(desc.Manifest, &idx); err != nil {
				return err
			}
		}
	}
	idx.Manifests = append(idx.Manifests, d)
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return r.PutRaw(repo, tag, types.OCIImageIndex, raw)
}

func (r Registry) descriptorOf(repo, digest string) (v1.Descriptor, error) {
	ref, err := r.ref(repo, digest)
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := remote.Get(ref, r.Options...)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest}, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func mustHash(s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		panic(err)
	}
	return h
}

// RawManifest returns the manifest at tag or digest, as the registry
// stores it.
func (r Registry) RawManifest(repo, tagOrDigest string) (string, error) {
	ref, err := r.ref(repo, tagOrDigest)
	if err != nil {
		return "", err
	}
	desc, err := remote.Get(ref, r.Options...)
	if err != nil {
		return "", err
	}
	return string(desc.Manifest), nil
}
