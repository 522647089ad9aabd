package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
)

// Media types of Notary Project signatures.
const (
	NotationArtifactType  = "application/vnd.cncf.notary.signature"
	NotationJWSMediaType  = "application/jose+json"
	NotationCOSEMediaType = "application/cose"
)

// notationAuthority is a Notation authority: notation-go's own verifier over
// the authority's trust policy statement and trust store. It has no plugin
// manager, so an envelope that needs a verification plugin fails (THREATS
// NOT-04).
type notationAuthority struct {
	name string
	v    notation.Verifier
}

func newNotationAuthority(a policy.Authority) (notationAuthority, error) {
	v, err := verifier.NewWithOptions(a.Notation.Document, a.Notation, nil, verifier.VerifierOptions{})
	if err != nil {
		return notationAuthority{}, err
	}
	return notationAuthority{name: a.Name, v: v}, nil
}

// HasNotation reports whether the verifier has a Notation authority: only
// then are a chart's Notation signatures worth listing.
func (v *Verifier) HasNotation() bool { return len(v.notationAuthorities) > 0 }

// CollectNotation finds the Notary Project signatures attached to target
// (the chart's manifest: its media type, digest and size) as OCI referrers
// of the Notation artifact type, and checks each with notation-go under
// every Notation authority of v. Like the Sigstore referrers, they have
// their own budgets (limits.MaxReferrers listed, limits.MaxSignatureChecks
// verified); an error is returned only when the registry fails.
func CollectNotation(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, target v1.Descriptor) ([]policy.Signature, error) {
	descs, err := reg.Referrers(ctx, repo, target.Digest.String(), oci.ArtifactType(NotationArtifactType))
	if err != nil {
		if fatal(err) {
			return nil, fmt.Errorf("verify: referrers of %s: %w", target.Digest, err)
		}
		return []policy.Signature{{Layout: policy.LayoutNotation, Malformed: true, Problem: err.Error()}}, nil
	}
	var (
		items []Prepared
		refs  []string
	)
	for _, d := range descs {
		p, ok, err := collectNotationSignature(ctx, reg, v, repo, target, d)
		if err != nil {
			return nil, err
		}
		if ok {
			items, refs = append(items, p), append(refs, d.Digest.String())
		}
	}
	sigs := check(items)
	for i := range sigs {
		sigs[i].Layout, sigs[i].Ref = policy.LayoutNotation, refs[i]
	}
	return sigs, nil
}

// collectNotationSignature reads one referrer: a manifest whose subject is
// target, of the Notation artifact type (the manifest's artifactType or,
// as notation writes it, its config's media type), with exactly one layer,
// a JWS or COSE envelope.
func collectNotationSignature(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, target v1.Descriptor, d v1.Descriptor) (Prepared, bool, error) {
	bad := func(problem string) (Prepared, bool, error) {
		return done(policy.Signature{Malformed: true, Problem: problem}, true), true, nil
	}
	ref := d.Digest.String()
	raw, err := reg.Manifest(ctx, repo, ref)
	if err != nil {
		if fatal(err) {
			return Prepared{}, false, fmt.Errorf("verify: referrer %s: %w", ref, err)
		}
		return bad(err.Error())
	}
	m, err := parseManifest(raw)
	if err != nil {
		return bad(err.Error())
	}
	if m.Subject == nil || m.Subject.Digest != target.Digest {
		return Prepared{}, false, nil // registry metadata pointing elsewhere: not ours
	}
	if m.ArtifactType != NotationArtifactType && (m.ArtifactType != "" || m.Config == nil || string(m.Config.MediaType) != NotationArtifactType) {
		return Prepared{}, false, nil
	}
	if len(m.Layers) != 1 {
		return bad(fmt.Sprintf("notation signature manifest: want exactly one envelope layer, found %d layers", len(m.Layers)))
	}
	mt := string(m.Layers[0].MediaType)
	if mt != NotationJWSMediaType && mt != NotationCOSEMediaType {
		return bad(fmt.Sprintf("notation signature manifest: envelope media type %q is neither %s nor %s", mt, NotationJWSMediaType, NotationCOSEMediaType))
	}
	env, err := reg.Blob(ctx, repo, m.Layers[0], limits.MaxSignatureLayerBytes)
	if err != nil {
		if fatal(err) {
			return Prepared{}, false, fmt.Errorf("verify: notation envelope %s: %w", m.Layers[0].Digest, err)
		}
		return bad(err.Error())
	}
	artifactRef := repo.String() + "@" + target.Digest.String()
	return Prepared{Likely: true, verify: func() (policy.Signature, bool) {
		return v.notationEnvelope(ctx, env, mt, target, artifactRef), true
	}}, true, nil
}

// notationEnvelope verifies one envelope under each Notation authority.
// The first that accepts it names the signer: the leaf certificate (its
// sha256 as key ID) and its subject. An envelope that verifies but names
// another artifact than target (THREATS NOT-01: another digest, size or
// media type) is reported with what it names as its subject, for Evaluate
// to refuse as SubjectMismatch.
func (v *Verifier) notationEnvelope(ctx context.Context, env []byte, mediaType string, target v1.Descriptor, artifactRef string) policy.Signature {
	desc := ocispec.Descriptor{MediaType: string(target.MediaType), Digest: digest.Digest(target.Digest.String()), Size: target.Size}
	var problems []string
	for _, a := range v.notationAuthorities {
		outcome, err := a.v.Verify(ctx, desc, env, notation.VerifierVerifyOptions{ArtifactReference: artifactRef, SignatureMediaType: mediaType})
		if outcome == nil || outcome.EnvelopeContent == nil || len(outcome.EnvelopeContent.SignerInfo.CertificateChain) == 0 {
			problems = append(problems, fmt.Sprintf("%s: %v", a.name, err))
			continue
		}
		subject := target.Digest.String()
		if err != nil {
			named, ok := otherTarget(ctx, a, outcome, env, mediaType, target, artifactRef)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: %v", a.name, err))
				continue
			}
			subject = named
		}
		if crit := unknownCritical(outcome); crit != "" {
			// notation-go v1.3.2 lets these through; the Notary Project
			// specification says a verifier must fail (THREATS NOT-02).
			problems = append(problems, fmt.Sprintf("%s: the envelope has a critical signed attribute %q no verifier here understands", a.name, crit))
			continue
		}
		chain := outcome.EnvelopeContent.SignerInfo.CertificateChain
		leaf := chain[0]
		return policy.Signature{
			Authority: a.name,
			Chain:     policy.PathOf(chain),
			KeyID:     policy.CertKeyID(leaf),
			Subjects:  []string{subject},
			Identity:  &policy.CertIdentity{Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), SubjectType: "x509.subject"},
		}
	}
	return policy.Signature{Problem: "notation: " + strings.Join(problems, "; ")}
}

// otherTarget reports what an envelope names when it names another
// artifact than target (THREATS NOT-01), and only when the envelope passes
// every check of the authority against that artifact, verified again in
// full: then named describes it so that it can never equal a digest.
// Otherwise (any other failure) ok is false.
func otherTarget(ctx context.Context, a notationAuthority, outcome *notation.VerificationOutcome, env []byte, mediaType string, target v1.Descriptor, artifactRef string) (named string, ok bool) {
	var payload struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}
	if err := json.Unmarshal(outcome.EnvelopeContent.Payload.Content, &payload); err != nil {
		return "", false
	}
	t := payload.TargetArtifact
	if t.Digest.String() == target.Digest.String() && t.Size == target.Size && t.MediaType == string(target.MediaType) {
		return "", false // the descriptor agrees: the failure was something else
	}
	if _, err := a.v.Verify(ctx, t, env, notation.VerifierVerifyOptions{ArtifactReference: artifactRef, SignatureMediaType: mediaType}); err != nil {
		return "", false
	}
	return fmt.Sprintf("%s (size %d, mediaType %s)", t.Digest, t.Size, t.MediaType), true
}

// unknownCritical returns the key of an extended signed attribute marked
// critical that chartproof does not process, or "". It knows none: the
// verification plugin attributes are critical too, and with no plugin the
// envelope cannot be verified (THREATS NOT-04).
func unknownCritical(outcome *notation.VerificationOutcome) string {
	for _, attr := range outcome.EnvelopeContent.SignerInfo.SignedAttributes.ExtendedAttributes {
		if attr.Critical {
			return fmt.Sprint(attr.Key)
		}
	}
	return ""
}
