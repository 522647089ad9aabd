package verify

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/proto"

	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/strictjson"
)

// Annotations of a layer of cosign's legacy layout besides the signature
// (cosign pkg/oci/static). A keyless signature carries its certificate, and
// a logged one (keyless always, keyed unless --tlog-upload=false) the Rekor
// v1 entry's signed entry timestamp.
const (
	// CertificateAnnotation is the PEM leaf certificate of a keyless
	// signature.
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	// ChainAnnotation is the PEM chain above the certificate. It is never
	// trusted: the chain comes from the trusted root.
	ChainAnnotation = "dev.sigstore.cosign/chain"
	// RekorBundleAnnotation is the Rekor v1 "bundle": the signed entry
	// timestamp of the log entry and what it signs.
	RekorBundleAnnotation = "dev.sigstore.cosign/bundle"
	// TimestampAnnotation is an RFC 3161 timestamp over the signature.
	TimestampAnnotation = "dev.sigstore.cosign/rfc3161timestamp"

	// bundleV01MediaType is the bundle version whose log entries may have
	// a signed entry timestamp without an inclusion proof, which is all a
	// Rekor bundle annotation holds.
	bundleV01MediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1"
)

// Legacy checks one layer of cosign's legacy layout: payload is the layer
// blob (a simple-signing payload), annotations the layer's annotations. The
// layer is turned into a Sigstore bundle (a message signature over the
// payload's sha256; the certificate or, for a key, no key material; the
// Rekor entry of the bundle annotation; the RFC 3161 timestamp) and checked
// like a bundle: a keyless one against every trusted root, a keyed one
// against every authority's key. Layout and Ref are left for the caller to
// fill in.
func (v *Verifier) Legacy(payload []byte, annotations map[string]string) policy.Signature {
	sig, _ := v.prepareLegacy(payload, annotations).Run()
	return sig
}

// prepareLegacy reads a legacy layer and checks its shape, leaving the
// cryptography to Run.
func (v *Verifier) prepareLegacy(payload []byte, annotations map[string]string) Prepared {
	l, err := parseLegacy(payload, annotations)
	if err != nil {
		return done(malformed(err.Error()), true)
	}
	if l.keyless {
		// A signature made with a key and carrying a certificate (cosign
		// sign --key --certificate) counts for a key authority whose key
		// verifies it, as with `cosign verify --key`: the certificate adds
		// no trust and need not chain anywhere. It counts for an x509
		// authority whose PKI issued the certificate, and the chain it
		// carries adds candidate intermediates. Otherwise it is a keyless
		// signature, judged by its certificate.
		return Prepared{Likely: len(v.authorities) > 0 || v.mayHaveSigned(l.bundle) || v.mayBeX509(l.leaf), verify: func() (policy.Signature, bool) {
			var keyed policy.Signature
			if len(v.authorities) > 0 {
				if keyed = v.legacyKeyed(l, payload); keyed.Authority != "" && len(v.x509Authorities) == 0 {
					return keyed, true
				}
			}
			sig, ok := v.certificate(l.bundle, sgverify.WithArtifactDigest("sha256", l.digest[:]), l.subject, "keyless signature", useAny, l.leaf, l.chain)
			if keyed.Authority != "" {
				keyed.X509 = sig.X509 // the key counts; the PKI may count too, for the same signer
				return keyed, true
			}
			return sig, ok
		}}
	}
	return Prepared{Likely: len(v.authorities) > 0, verify: func() (policy.Signature, bool) {
		return v.legacyKeyed(l, payload), true
	}}
}

// legacyKeyed verifies a legacy signature under each key authority; l's
// bundle names a key, not a certificate.
func (v *Verifier) legacyKeyed(l legacySignature, payload []byte) policy.Signature {
	// The log entry of the bundle annotation, when there is one, is in the
	// bundle: an authority that requires the log checks it. The artifact is
	// the payload itself, not its digest, as an Ed25519 key signs it.
	artifact := func() sgverify.ArtifactPolicyOption { return sgverify.WithArtifact(bytes.NewReader(payload)) }
	for _, a := range v.authorities {
		_, sig, err := a.verifyKeyed(l.keyed, artifact)
		if err == nil {
			sig.Subjects = []string{l.subject}
			return sig
		}
	}
	return policy.Signature{Problem: "signature does not verify under any authority's key"}
}

// legacySignature is a legacy layer read into a bundle.
type legacySignature struct {
	bundle  *bundle.Bundle
	keyless bool
	// keyed is, for a signature that carries a certificate, the same
	// signature naming a key instead, for key authorities to verify; for
	// one without, bundle itself.
	keyed   *bundle.Bundle
	subject string // the digest the simple-signing payload names
	digest  [sha256.Size]byte
	// leaf and chain are the certificate and the chain annotation of a
	// signature that carries a certificate: for x509 authorities only
	// (candidates for a path, never trust).
	leaf  *x509.Certificate
	chain []*x509.Certificate
}

// parseLegacy reads a legacy layer. Every annotation is capped, decoded
// strictly and checked for shape here; what it proves is left to
// sigstore-go. The chain annotation adds no trust to a keyless signature
// (a bundle's would not: sigstore-go reads only the leaf of a chain before
// bundle v0.3); it is kept as candidate intermediates for x509
// authorities, whose roots decide.
func parseLegacy(payload []byte, annotations map[string]string) (legacySignature, error) {
	for _, k := range []string{SignatureAnnotation, CertificateAnnotation, ChainAnnotation, RekorBundleAnnotation, TimestampAnnotation} {
		if n := len(annotations[k]); n > limits.MaxSignatureAnnotationBytes {
			return legacySignature{}, fmt.Errorf("annotation %s is %d bytes, over the cap of %d", k, n, limits.MaxSignatureAnnotationBytes)
		}
	}
	sig, err := base64.StdEncoding.DecodeString(annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		return legacySignature{}, errors.New("signature annotation is not base64")
	}
	subject, err := parseSimpleSigning(payload)
	if err != nil {
		return legacySignature{}, err
	}
	l := legacySignature{subject: subject, digest: sha256.Sum256(payload)}
	m, err := parseLegacyMaterial(annotations)
	if err != nil {
		return legacySignature{}, err
	}
	vm, mediaType := m.vm, m.mediaType
	l.leaf, l.chain, l.keyless = m.leaf, m.chain, m.leaf != nil
	pb := &protobundle.Bundle{
		MediaType:            mediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: l.digest[:]},
			Signature:     sig,
		}},
	}
	l.bundle, err = bundle.NewBundle(pb)
	if err != nil {
		return legacySignature{}, fmt.Errorf("signature: %w", err)
	}
	l.keyed = l.bundle
	if l.keyless {
		keyed := proto.Clone(pb).(*protobundle.Bundle)
		keyed.VerificationMaterial.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
		if l.keyed, err = bundle.NewBundle(keyed); err != nil {
			return legacySignature{}, fmt.Errorf("signature: %w", err)
		}
	}
	return l, nil
}

// legacyMaterial is the verification material of a layer of cosign's
// legacy layouts, read from its annotations.
type legacyMaterial struct {
	vm        *protobundle.VerificationMaterial
	mediaType string // the bundle version it needs
	// leaf and chain are the certificate and the chain annotation, when
	// the layer carries a certificate.
	leaf  *x509.Certificate
	chain []*x509.Certificate
}

// parseLegacyMaterial reads the certificate, chain, Rekor bundle and RFC
// 3161 timestamp annotations of a legacy layer (`.sig` or `.att`) into
// verification material: the certificate or, without one, a key to be
// named by the verifier.
func parseLegacyMaterial(annotations map[string]string) (legacyMaterial, error) {
	m := legacyMaterial{mediaType: BundleMediaType, vm: &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}},
	}}
	certPEM, chainPEM := annotations[CertificateAnnotation], annotations[ChainAnnotation]
	switch {
	case certPEM != "":
		certs, err := parsePEMCertificates(certPEM)
		if err != nil {
			return m, fmt.Errorf("certificate annotation: %w", err)
		}
		if len(certs) != 1 {
			return m, fmt.Errorf("certificate annotation: %d certificates, want one", len(certs))
		}
		chain, err := parsePEMCertificates(chainPEM)
		if err != nil {
			return m, fmt.Errorf("chain annotation: %w", err)
		}
		m.leaf, m.chain = certs[0], chain
		m.vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: certs[0].Raw}}
	case chainPEM != "":
		return m, errors.New("chain annotation without a certificate annotation")
	}
	if raw := annotations[RekorBundleAnnotation]; raw != "" {
		tle, err := parseRekorBundle(raw)
		if err != nil {
			return m, fmt.Errorf("bundle annotation: %w", err)
		}
		m.vm.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
		m.mediaType = bundleV01MediaType
	}
	if raw := annotations[TimestampAnnotation]; raw != "" {
		ts, err := parseRFC3161Annotation(raw)
		if err != nil {
			return m, fmt.Errorf("timestamp annotation: %w", err)
		}
		m.vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts}},
		}
	}
	return m, nil
}

// parsePEMCertificates reads PEM CERTIFICATE blocks and nothing else but
// whitespace; "" is no certificates.
func parsePEMCertificates(s string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(s)
	for len(bytes.TrimSpace(rest)) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		switch {
		case block == nil:
			return nil, errors.New("not PEM")
		case block.Type != "CERTIFICATE":
			return nil, fmt.Errorf("PEM block of type %q, want CERTIFICATE", block.Type)
		case len(block.Headers) != 0:
			return nil, errors.New("PEM block with headers")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// rekorBundle is cosign's Rekor bundle annotation (cosign
// pkg/cosign/bundle.RekorBundle): the signed entry timestamp and the
// payload it signs, canonicalized: the base64 entry body, its integrated
// time, index and the hex ID of the log.
type rekorBundle struct {
	SignedEntryTimestamp []byte          `json:"SignedEntryTimestamp"`
	Payload              json.RawMessage `json:"Payload"`
}

type rekorPayload struct {
	Body           string `json:"body"`
	IntegratedTime int64  `json:"integratedTime"`
	LogIndex       int64  `json:"logIndex"`
	LogID          string `json:"logID"`
}

// parseRekorBundle turns a Rekor bundle annotation into a log entry with an
// inclusion promise and no inclusion proof. The body is kept byte for byte
// (the signed entry timestamp covers it); its kind and version are read from
// it. Whether the entry records this signature, certificate and payload,
// and whether the timestamp verifies under a log of the trusted root, is
// sigstore-go's to check.
func parseRekorBundle(raw string) (*protorekor.TransparencyLogEntry, error) {
	var rb rekorBundle
	if err := decodeExact([]byte(raw), &rb, "SignedEntryTimestamp", "Payload"); err != nil {
		return nil, err
	}
	var p rekorPayload
	if err := decodeExact(rb.Payload, &p, "body", "integratedTime", "logIndex", "logID"); err != nil {
		return nil, fmt.Errorf("Payload: %w", err)
	}
	body, err := base64.StdEncoding.DecodeString(p.Body)
	switch {
	case len(rb.SignedEntryTimestamp) == 0:
		return nil, errors.New("no SignedEntryTimestamp")
	case err != nil || len(body) == 0:
		return nil, errors.New("Payload.body is not base64")
	case p.IntegratedTime <= 0:
		return nil, fmt.Errorf("Payload.integratedTime %d is not positive", p.IntegratedTime)
	case p.LogIndex < 0:
		return nil, fmt.Errorf("Payload.logIndex %d is negative", p.LogIndex)
	}
	logID, err := hex.DecodeString(p.LogID)
	if err != nil || len(logID) != sha256.Size || p.LogID != strings.ToLower(p.LogID) {
		return nil, fmt.Errorf("Payload.logID %q is not a lowercase hex sha256", p.LogID)
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := strictjson.Check(body); err != nil {
		return nil, fmt.Errorf("Payload.body: %w", err)
	}
	if err := json.Unmarshal(body, &kv); err != nil || kv.Kind == "" || kv.APIVersion == "" {
		return nil, errors.New("Payload.body is not a Rekor entry with a kind and an apiVersion")
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          p.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
		IntegratedTime:    p.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: body,
	}, nil
}

// parseRFC3161Annotation reads cosign's timestamp annotation
// {"SignedRFC3161Timestamp": base64 DER}.
func parseRFC3161Annotation(raw string) ([]byte, error) {
	var ts struct {
		SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
	}
	if err := decodeExact([]byte(raw), &ts, "SignedRFC3161Timestamp"); err != nil {
		return nil, err
	}
	if len(ts.SignedRFC3161Timestamp) == 0 {
		return nil, errors.New("no SignedRFC3161Timestamp")
	}
	return ts.SignedRFC3161Timestamp, nil
}

// decodeExact decodes a JSON object into v, refusing what two parsers could
// read differently (strictjson), unknown fields, and top-level keys other
// than the exact names given (encoding/json would match them up to case).
func decodeExact(raw []byte, v any, keys ...string) error {
	if err := strictjson.Check(raw); err != nil {
		return err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return err
	}
	if top == nil {
		return errors.New("not a JSON object")
	}
	for k := range top {
		if !slices.Contains(keys, k) {
			return fmt.Errorf("unknown key %q", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
