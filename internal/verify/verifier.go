package verify

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/chartproof/chartproof/internal/policy"
)

// CosignSignPredicate is the in-toto predicate type of the statement cosign
// v3 signs when it signs an OCI artifact. Bundles with other predicate types
// are attestations, not signatures.
const CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"

// Verifier checks signatures against the keys and trusted roots of a
// policy's authorities. It is safe for concurrent use.
type Verifier struct {
	authorities []authorityVerifier
	roots       []rootVerifier
}

type authorityVerifier struct {
	name  string
	keyID string
	v     *sgverify.Verifier
}

// New builds the sigstore-go verifiers once: one per key authority, each
// trusting only that authority's key, so a verified signature names exactly
// one key authority; and one per distinct trusted root of the keyless
// authorities, shared by the authorities that name the same root.
func New(authorities []policy.Authority) (*Verifier, error) {
	out := &Verifier{}
	for _, a := range authorities {
		if a.Keyless != nil {
			if err := out.addKeyless(a); err != nil {
				return nil, fmt.Errorf("verify: authority %q: %w", a.Name, err)
			}
			continue
		}
		sv, err := loadVerifier(a.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("verify: authority %q: %w", a.Name, err)
		}
		key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
		material := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return key, nil
		})
		// Keyed signatures carry no observer timestamp of their own unless
		// logged; requiring the log for keys is a later policy option.
		v, err := sgverify.NewVerifier(material, sgverify.WithNoObserverTimestamps())
		if err != nil {
			return nil, fmt.Errorf("verify: authority %q: %w", a.Name, err)
		}
		out.authorities = append(out.authorities, authorityVerifier{name: a.Name, keyID: a.KeyID, v: v})
	}
	return out, nil
}

func loadVerifier(pub any) (signature.Verifier, error) {
	if k, ok := pub.(ed25519.PublicKey); ok {
		return signature.LoadED25519Verifier(k)
	}
	return signature.LoadVerifier(pub, crypto.SHA256)
}

// Legacy checks one cosign simple-signing signature: payload is the layer
// blob, sigB64 the base64 signature from the layer's
// "dev.cosignproject.cosign/signature" annotation. Layout and Ref are left
// for the caller to fill in.
func (v *Verifier) Legacy(payload []byte, sigB64 string) policy.Signature {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 {
		return malformed("signature annotation is not base64")
	}
	subject, err := parseSimpleSigning(payload)
	if err != nil {
		return malformed(err.Error())
	}
	sum := sha256.Sum256(payload)
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return malformed(fmt.Sprintf("signature: %v", err))
	}
	for _, a := range v.authorities {
		_, err := a.v.Verify(b, sgverify.NewPolicy(sgverify.WithArtifact(bytes.NewReader(payload)), sgverify.WithKey()))
		if err == nil {
			return policy.Signature{Authority: a.name, KeyID: a.keyID, Subjects: []string{subject}}
		}
	}
	return policy.Signature{Problem: "signature does not verify under any authority's key"}
}

// Bundle checks one Sigstore bundle (v0.1 to v0.3, JSON). A DSSE envelope
// must carry an in-toto statement of cosign's signing predicate; its
// subjects are what it names. A message signature names the digest it signs.
// ok is false when the bundle is an attestation rather than a signature: it
// is then not a signature at all and is left out.
func (v *Verifier) Bundle(data []byte) (sig policy.Signature, ok bool) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return malformed(fmt.Sprintf("bundle: %v", err)), true
	}
	var (
		artifact sgverify.ArtifactPolicyOption
		subject  string
	)
	switch {
	case b.GetDsseEnvelope() != nil:
		artifact = sgverify.WithoutArtifactUnsafe() // subjects are read from the verified statement below
	case b.GetMessageSignature() != nil:
		md := b.GetMessageSignature().GetMessageDigest()
		if md.GetAlgorithm() != protocommon.HashAlgorithm_SHA2_256 || len(md.GetDigest()) != sha256.Size {
			return malformed("bundle: message digest is not sha256"), true
		}
		artifact = sgverify.WithArtifactDigest("sha256", md.GetDigest())
		subject = "sha256:" + hex.EncodeToString(md.GetDigest())
	default:
		return malformed("bundle: no content"), true
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return malformed(fmt.Sprintf("bundle: %v", err)), true
	}
	if vc.Certificate() != nil {
		return v.keyless(&b, artifact, subject)
	}
	for _, a := range v.authorities {
		res, err := a.v.Verify(&b, sgverify.NewPolicy(artifact, sgverify.WithKey()))
		if err != nil {
			continue
		}
		subjects, isSig, problem := subjectsOf(res, subject)
		switch {
		case !isSig:
			return policy.Signature{}, false
		case problem != "":
			return malformed(problem), true
		}
		return policy.Signature{Authority: a.name, KeyID: a.keyID, Subjects: subjects}, true
	}
	return policy.Signature{Problem: "bundle does not verify under any authority's key"}, true
}

// subjectsOf returns the digests a verified bundle names: the message
// signature's digest (subject), or the sha256 subjects of the in-toto
// statement of cosign's signing predicate. isSig is false for an
// attestation (another predicate type), which is not a signature at all.
func subjectsOf(res *sgverify.VerificationResult, subject string) (subjects []string, isSig bool, problem string) {
	if subject != "" {
		return []string{subject}, true, ""
	}
	st := res.Statement
	if st == nil {
		return nil, true, "bundle: DSSE envelope without an in-toto statement"
	}
	if st.GetPredicateType() != CosignSignPredicate {
		return nil, false, ""
	}
	for _, s := range st.GetSubject() {
		if d, ok := s.GetDigest()["sha256"]; ok {
			subjects = append(subjects, "sha256:"+d)
		}
	}
	return subjects, true, ""
}

func malformed(problem string) policy.Signature {
	return policy.Signature{Malformed: true, Problem: problem}
}
