package testsign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // registers the COSE envelope
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // registers the JWS envelope
)

// Notation media types.
const (
	NotationArtifactType  = "application/vnd.cncf.notary.signature"
	NotationJWSMediaType  = "application/jose+json"
	NotationCOSEMediaType = "application/cose"
	notationPayloadType   = "application/vnd.cncf.notary.payload.v1+json"
)

// NotationPKI is a throwaway certificate authority and one code-signing
// leaf it issued, as an enterprise PKI used with notation has.
type NotationPKI struct {
	Root    *x509.Certificate
	Leaf    *x509.Certificate
	LeafKey *ecdsa.PrivateKey
}

// NewNotationPKI makes a root CA and a leaf with subject
// C=US, ST=WA, O=Acme, CN=cn, code-signing usage.
func NewNotationPKI(cn string) (*NotationPKI, error) {
	return NewNotationPKIFor(pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"Acme"}, CommonName: cn})
}

// NewNotationPKIFor makes a root CA and a code-signing leaf with subject.
func NewNotationPKIFor(subject pkix.Name) (*NotationPKI, error) {
	cn := subject.CommonName
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	root := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"Acme"}, CommonName: cn + " root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	if root, err = x509.ParseCertificate(rootDER); err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(12 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, root, &leafKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	if leaf, err = x509.ParseCertificate(leafDER); err != nil {
		return nil, err
	}
	return &NotationPKI{Root: root, Leaf: leaf, LeafKey: leafKey}, nil
}

// RootPEM is the root certificate, PEM-encoded: what a trust store holds.
func (p *NotationPKI) RootPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.Raw}))
}

// NotationSignOptions change what NotationPKI.Sign makes; the zero value
// signs as `notation sign` does: a JWS envelope, the notary.x509 scheme,
// signed now, no expiry.
type NotationSignOptions struct {
	MediaType     string // NotationJWSMediaType (default) or NotationCOSEMediaType
	SigningScheme signature.SigningScheme
	SigningTime   time.Time
	Expiry        time.Time
	// Attributes are extended signed attributes, such as a critical one a
	// verifier does not know, or io.cncf.notary.verificationPlugin.
	Attributes []signature.Attribute
}

// Sign makes a Notary Project signature envelope naming target.
func (p *NotationPKI) Sign(target v1.Descriptor, o NotationSignOptions) ([]byte, error) {
	if o.MediaType == "" {
		o.MediaType = NotationJWSMediaType
	}
	if o.SigningScheme == "" {
		o.SigningScheme = signature.SigningSchemeX509
	}
	if o.SigningTime.IsZero() {
		o.SigningTime = time.Now()
	}
	payload, err := json.Marshal(map[string]any{"targetArtifact": target})
	if err != nil {
		return nil, err
	}
	signer, err := signature.NewLocalSigner([]*x509.Certificate{p.Leaf, p.Root}, p.LeafKey)
	if err != nil {
		return nil, err
	}
	env, err := signature.NewEnvelope(o.MediaType)
	if err != nil {
		return nil, err
	}
	return env.Sign(&signature.SignRequest{
		Payload:                  signature.Payload{ContentType: notationPayloadType, Content: payload},
		Signer:                   signer,
		SigningTime:              o.SigningTime,
		Expiry:                   o.Expiry,
		ExtendedSignedAttributes: o.Attributes,
		SigningAgent:             "chartproof-testsign",
		SigningScheme:            o.SigningScheme,
	})
}

// AttachNotation attaches a Notation signature envelope to the manifest
// digest of repo as notation does: a manifest whose config media type is
// the Notation artifact type, one envelope layer, and the chart's manifest
// as subject; listed in the referrers fallback tag when fallbackTag.
func (r Registry) AttachNotation(repo, digest string, env []byte, mediaType string, fallbackTag bool) (string, error) {
	subject, err := r.descriptorOf(repo, digest)
	if err != nil {
		return "", err
	}
	raw, err := r.pushManifest(repo, "", Manifest{
		Config:  Blob{MediaType: NotationArtifactType, Data: []byte("{}")},
		Layers:  []Blob{{MediaType: mediaType, Data: env}},
		Subject: &subject,
	})
	if err != nil {
		return "", err
	}
	refDigest := digestOf(raw)
	if fallbackTag {
		if err := r.addToFallbackIndex(repo, digest, v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Size: int64(len(raw)), Digest: mustHash(refDigest), ArtifactType: NotationArtifactType,
		}); err != nil {
			return "", err
		}
	}
	return refDigest, nil
}

// Descriptor is the descriptor of repo's manifest digest, as notation signs
// it (its media type, digest and size).
func (r Registry) Descriptor(repo, digest string) (v1.Descriptor, error) {
	return r.descriptorOf(repo, digest)
}
