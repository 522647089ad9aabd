package verify

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/pki"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/strictjson"
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
	// keylessAuthorities are the keyless authorities, for the hints of
	// mayHaveSigned.
	keylessAuthorities []policy.Authority
	// provenanceAuthorities check Helm provenance files.
	provenanceAuthorities []provenanceAuthority
	// notationAuthorities check Notary Project signatures.
	notationAuthorities []notationAuthority
	// x509Authorities check signatures that carry a certificate of their
	// PKI.
	x509Authorities []x509Authority
	// attestations are the verifiers of a policy's attestation
	// requirements (ForPolicy); none when it requires none.
	attestations []attestationSet
}

type authorityVerifier struct {
	name  string
	keyID string
	v     *sgverify.Verifier // the key alone
	// logged verifies the key's signature together with its entry in a
	// transparency log of the trusted root logRoot; nil unless the
	// authority requires the log.
	logged  *sgverify.Verifier
	logRoot string
	logs    map[string]*root.TransparencyLog
}

// New builds the sigstore-go verifiers once: one per key authority, each
// trusting only that authority's key, so a verified signature names exactly
// one key authority; and one per distinct trusted root of the keyless
// authorities, shared by the authorities that name the same root.
func New(authorities []policy.Authority) (*Verifier, error) {
	out := &Verifier{}
	for _, a := range authorities {
		if a.Provenance != nil {
			out.provenanceAuthorities = append(out.provenanceAuthorities, provenanceAuthority{name: a.Name, keyring: a.Provenance.Keyring})
			continue
		}
		if a.Notation != nil {
			na, err := newNotationAuthority(a)
			if err != nil {
				return nil, fmt.Errorf("verify: authority %q: %w", a.Name, err)
			}
			out.notationAuthorities = append(out.notationAuthorities, na)
			continue
		}
		if a.X509 != nil {
			out.x509Authorities = append(out.x509Authorities, newX509Authority(a))
			continue
		}
		if a.Keyless != nil {
			out.keylessAuthorities = append(out.keylessAuthorities, a)
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
		// A key does not expire, so a keyed signature needs no observer
		// timestamp unless its authority requires the log.
		v, err := sgverify.NewVerifier(material, sgverify.WithNoObserverTimestamps())
		if err != nil {
			return nil, fmt.Errorf("verify: authority %q: %w", a.Name, err)
		}
		av := authorityVerifier{name: a.Name, keyID: a.KeyID, v: v}
		if a.Log != nil {
			if err := av.requireLog(material, *a.Log); err != nil {
				return nil, fmt.Errorf("verify: authority %q: %w", a.Name, err)
			}
		}
		out.authorities = append(out.authorities, av)
	}
	return out, nil
}

// requireLog adds the verifier of a key authority that requires the
// transparency log: the key, plus the logs and timestamp authorities of the
// trusted root (its certificate authorities play no part: the bundle names
// a key, not a certificate). It requires one log entry tied to the
// signature, and one observer timestamp (the log's integrated time, or an
// RFC 3161 timestamp, as Rekor v2 needs).
func (a *authorityVerifier) requireLog(key root.TrustedMaterial, tr policy.TrustRoot) error {
	logs, source, err := material(tr)
	if err != nil {
		return err
	}
	v, err := sgverify.NewVerifier(root.TrustedMaterialCollection{key, logs},
		sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
	if err != nil {
		return fmt.Errorf("trusted root %s: %w", source, err)
	}
	a.logged, a.logRoot, a.logs = v, source, logs.RekorLogs()
	return nil
}

// verifyKeyed checks b under the authority's key. When the authority
// requires the log, it also checks the log entry and records the verified
// entries and signing time, or why there are none (LogProblem); Evaluate
// decides what a missing entry means. artifact makes the artifact option
// anew for each verification (a reader is read once).
func (a authorityVerifier) verifyKeyed(b *bundle.Bundle, artifact func() sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, policy.Signature, error) {
	res, err := a.v.Verify(b, sgverify.NewPolicy(artifact(), sgverify.WithKey()))
	if err != nil {
		return nil, policy.Signature{}, err
	}
	sig := policy.Signature{Authority: a.name, KeyID: a.keyID}
	if a.logged == nil {
		return res, sig, nil
	}
	logged, err := a.logged.Verify(b, sgverify.NewPolicy(artifact(), sgverify.WithKey()))
	if err != nil {
		sig.LogProblem = fmt.Sprintf("no verified entry in a transparency log of %s: %v", a.logRoot, err)
		return res, sig, nil
	}
	sig.Log = appendLogEntries(nil, b, a.logs)
	sig.SignedAt = earliest(logged.VerifiedTimestamps)
	if len(sig.Log) == 0 { // verified, yet no entry of the root's logs: do not count it as logged
		sig.LogProblem = "no entry of a transparency log of " + a.logRoot
	}
	return res, sig, nil
}

// earliest returns the earliest verified timestamp, or zero.
func earliest(ts []sgverify.TimestampVerificationResult) time.Time {
	var t time.Time
	for _, x := range ts {
		if t.IsZero() || x.Timestamp.Before(t) {
			t = x.Timestamp.UTC()
		}
	}
	return t
}

func loadVerifier(pub any) (signature.Verifier, error) {
	if k, ok := pub.(ed25519.PublicKey); ok {
		return signature.LoadED25519Verifier(k)
	}
	return signature.LoadVerifier(pub, crypto.SHA256)
}

// Bundle checks one Sigstore bundle (v0.1 to v0.3, JSON). A DSSE envelope
// must carry an in-toto statement of cosign's signing predicate; its
// subjects are what it names. A message signature names the digest it signs.
// ok is false when the bundle is an attestation rather than a signature: it
// is then not a signature at all and is left out.
func (v *Verifier) Bundle(data []byte) (sig policy.Signature, ok bool) {
	return v.prepareBundle(data, useAny).Run()
}

// Blob checks one Sigstore bundle over any artifact, as `chartproof
// verify-blob` and a conformant Sigstore verifier do: a message signature,
// or a DSSE envelope of an in-toto statement of any predicate type, whose
// subjects are what it names. The signature of an attestation (another
// predicate than cosign's signing one) has PredicateType set.
func (v *Verifier) Blob(data []byte) policy.Signature {
	sig, _ := v.prepareBundle(data, useBlob).Run()
	return sig
}

// bundleUse says what a bundle is read as.
type bundleUse int

const (
	// useAny: a message signature, or cosign's signing statement; another
	// statement is an attestation, not a signature.
	useAny bundleUse = iota
	// useReferrer: a chart's signature in the referrers layout, which
	// cosign makes as its signing statement only.
	useReferrer
	// useBlob: any signed bundle over an artifact, attestations included.
	useBlob
	// useAttestation: an attestation of a chart, a DSSE envelope over an
	// in-toto statement of another predicate than cosign's signing one;
	// a signature is not one.
	useAttestation
)

// Prepared is a signature read and checked for shape, whose cryptographic
// verification has not run yet: Collect reads every signature of a layout
// first, then spends its budget of cryptographic checks
// (limits.MaxSignatureChecks) on the likely ones first.
type Prepared struct {
	// Likely says cheap, unverified hints point to an authority of the
	// verifier: the identity a certificate names matches a keyless
	// authority's, or a key hint names a key authority's key (or there is
	// no hint). Only the order of checks depends on it, never a verdict.
	Likely bool
	sig    policy.Signature // the result, when verify is nil
	ok     bool
	verify func() (policy.Signature, bool)
}

// done is a Prepared whose result needs no cryptography.
func done(sig policy.Signature, ok bool) Prepared { return Prepared{sig: sig, ok: ok} }

// Checked reports whether Run does cryptographic work.
func (p Prepared) Checked() bool { return p.verify != nil }

// Run verifies the signature: what Legacy or Bundle returns.
func (p Prepared) Run() (policy.Signature, bool) {
	if p.verify == nil {
		return p.sig, p.ok
	}
	return p.verify()
}

// prepareBundle reads a Sigstore bundle and checks its shape, leaving the
// cryptography to Run. An artifact's signature (artifactSignature: a
// referrer of a chart) must be what cosign writes when it signs an OCI
// artifact, a DSSE envelope over its signing statement: a bare message
// signature (what `cosign sign-blob` makes) signs bytes, not "this chart",
// and is refused as malformed, as `cosign verify` refuses it, even when a
// trusted key made it over the manifest's bytes.
func (v *Verifier) prepareBundle(data []byte, use bundleUse) Prepared {
	var (
		b       bundle.Bundle
		carried []*x509.Certificate
	)
	if err := b.UnmarshalJSON(data); err != nil {
		chained, rest, ok := chainedBundle(data)
		if !ok {
			return done(malformed(fmt.Sprintf("bundle: %v", err)), true)
		}
		b, carried = *chained, rest
	}
	var (
		artifact sgverify.ArtifactPolicyOption
		subject  string
	)
	switch {
	case b.GetDsseEnvelope() != nil && use == useAttestation && strictjson.Check(b.GetDsseEnvelope().GetPayload()) != nil:
		return done(malformed(fmt.Sprintf("bundle: statement: %v", strictjson.Check(b.GetDsseEnvelope().GetPayload()))), true)
	case b.GetDsseEnvelope() != nil:
		artifact = sgverify.WithoutArtifactUnsafe() // subjects are read from the verified statement below
	case b.GetDsseEnvelope() == nil && use == useAttestation:
		return done(policy.Signature{}, false) // a message signature attests nothing
	case b.GetMessageSignature() != nil && use == useReferrer:
		return done(malformed("bundle: a message signature (as `cosign sign-blob` makes) is not a signature of an OCI artifact, "+
			"which cosign makes as a DSSE envelope over its signing statement"), true)
	case b.GetMessageSignature() != nil:
		md := b.GetMessageSignature().GetMessageDigest()
		if md.GetAlgorithm() != protocommon.HashAlgorithm_SHA2_256 || len(md.GetDigest()) != sha256.Size {
			return done(malformed("bundle: message digest is not sha256"), true)
		}
		artifact = sgverify.WithArtifactDigest("sha256", md.GetDigest())
		subject = "sha256:" + hex.EncodeToString(md.GetDigest())
	default:
		return done(malformed("bundle: no content"), true)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return done(malformed(fmt.Sprintf("bundle: %v", err)), true)
	}
	if vc.Certificate() != nil {
		return Prepared{Likely: v.mayHaveSigned(&b) || v.mayBeX509(vc.Certificate()), verify: func() (policy.Signature, bool) {
			return v.certificate(&b, artifact, subject, "keyless bundle", use, vc.Certificate(), append(vc.Intermediates(), carried...))
		}}
	}
	return Prepared{Likely: v.keyHinted(&b), verify: func() (policy.Signature, bool) {
		return v.bundleKeyed(&b, artifact, subject, use)
	}}
}

// chainedBundle reads a bundle of the v0.3 format that carries a
// certificate chain, which the format forbids (a v0.3 bundle carries its
// leaf alone) and sigstore-go refuses: cosign v3 writes one when it signs
// with a key and its certificate (`cosign sign --key K --certificate C
// --certificate-chain CH`, the new bundle format). Its leaf (the chain's
// first certificate) becomes the bundle's certificate, and the rest is
// returned as what the legacy layout's chain annotation is: candidates for
// the path, never trust. ok is false for anything else: an earlier
// version, a chain with a root, a bundle that is still invalid.
func chainedBundle(data []byte) (b *bundle.Bundle, rest []*x509.Certificate, ok bool) {
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(data, &pb); err != nil {
		return nil, nil, false
	}
	certs := pb.GetVerificationMaterial().GetX509CertificateChain().GetCertificates()
	if len(certs) == 0 || len(certs) > 1+pki.MaxIntermediates+1 {
		return nil, nil, false
	}
	// Earlier versions carry a chain by design, and what sigstore-go
	// refuses in them (a root in the chain, THREATS SIG-05) stays refused.
	if v, err := (&bundle.Bundle{Bundle: &pb}).Version(); err != nil || v == "v0.1" || v == "v0.2" {
		return nil, nil, false
	}
	for _, c := range certs[1:] {
		parsed, err := x509.ParseCertificate(c.GetRawBytes())
		if err != nil {
			return nil, nil, false
		}
		if parsed.CheckSignatureFrom(parsed) == nil {
			return nil, nil, false // a root in the chain (THREATS SIG-05)
		}
		rest = append(rest, parsed)
	}
	pb.VerificationMaterial.Content = &protobundle.VerificationMaterial_Certificate{Certificate: certs[0]}
	b, err := bundle.NewBundle(&pb)
	if err != nil {
		return nil, nil, false
	}
	return b, rest, true
}

// bundleKeyed verifies a bundle without a certificate under each key
// authority.
func (v *Verifier) bundleKeyed(b *bundle.Bundle, artifact sgverify.ArtifactPolicyOption, subject string, use bundleUse) (policy.Signature, bool) {
	for _, a := range v.authorities {
		res, sig, err := a.verifyKeyed(b, func() sgverify.ArtifactPolicyOption { return artifact })
		if err != nil {
			continue
		}
		st, keep, problem := subjectsOf(res, subject, use)
		switch {
		case !keep:
			return policy.Signature{}, false
		case problem != "":
			return malformed(problem), true
		}
		sig.Subjects, sig.PredicateType, sig.Attestation = st.subjects, st.predicateType, st.facts
		return sig, true
	}
	return policy.Signature{Problem: "bundle does not verify under any authority's key"}, true
}

// keyHinted reports whether the key hint of a bundle without a certificate
// names the key of a key authority (its key ID, in hex or base64), or the
// bundle has no hint: a hint for the order of checks (Prepared.Likely),
// never trust.
func (v *Verifier) keyHinted(b *bundle.Bundle) bool {
	hint := b.GetVerificationMaterial().GetPublicKey().GetHint()
	for _, a := range v.authorities {
		if hint == "" || hint == a.keyID {
			return true
		}
		if raw, err := hex.DecodeString(a.keyID); err == nil && hint == base64.StdEncoding.EncodeToString(raw) {
			return true
		}
	}
	return false
}

// statement is what subjectsOf read of a verified bundle.
type statement struct {
	subjects      []string // sha256 digests
	predicateType string   // empty for a signature
	facts         *policy.AttestationFacts
}

// subjectsOf returns the digests a verified bundle names: the message
// signature's digest (subject), or the sha256 subjects of the in-toto
// statement. What use reads decides what is kept (keep false: left out): a
// signature (cosign's signing predicate, or a message signature) for
// useAny and useReferrer; an attestation (another predicate type) for
// useAttestation, with what its statement says; either for useBlob.
func subjectsOf(res *sgverify.VerificationResult, subject string, use bundleUse) (st statement, keep bool, problem string) {
	if subject != "" {
		return statement{subjects: []string{subject}}, use != useAttestation, ""
	}
	s := res.Statement
	if s == nil {
		return st, true, "bundle: DSSE envelope without an in-toto statement"
	}
	attestation := s.GetPredicateType() != CosignSignPredicate
	switch {
	case attestation && (use == useAny || use == useReferrer):
		return st, false, ""
	case !attestation && use == useAttestation:
		return st, false, ""
	case attestation:
		st.predicateType = s.GetPredicateType()
	}
	if n := len(s.GetSubject()); n > limits.MaxStatementSubjects {
		return st, true, fmt.Sprintf("bundle: statement names %d subjects, more than %d", n, limits.MaxStatementSubjects)
	}
	for _, sub := range s.GetSubject() {
		if n := len(sub.GetDigest()); n > limits.MaxSubjectDigests {
			return st, true, fmt.Sprintf("bundle: a subject of the statement has %d digests, more than %d", n, limits.MaxSubjectDigests)
		}
	}
	for _, sub := range s.GetSubject() {
		if d, ok := sub.GetDigest()["sha256"]; ok {
			st.subjects = append(st.subjects, "sha256:"+d)
		}
	}
	if use == useAttestation {
		facts := &policy.AttestationFacts{Predicate: json.RawMessage("{}")}
		for _, sub := range s.GetSubject() {
			facts.Subject = append(facts.Subject, policy.StatementSubject{Name: sub.GetName(), Digest: sub.GetDigest()})
		}
		if pred := s.GetPredicate(); pred != nil {
			raw, err := protojson.Marshal(pred)
			if err != nil {
				return st, true, fmt.Sprintf("bundle: statement predicate: %v", err)
			}
			facts.Predicate = raw
		}
		st.facts = facts
	}
	return st, true, ""
}

func malformed(problem string) policy.Signature {
	return policy.Signature{Malformed: true, Problem: problem}
}
