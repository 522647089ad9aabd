package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/strictjson"
)

// Attestations in the registry (issue 15). cosign v2 `attest` writes each
// as a layer of the manifest at the tag "sha256-<hex>.att": a DSSE envelope
// whose layer annotations carry the certificate, chain, Rekor bundle and
// timestamp as a `.sig` layer's do, and the predicate type (a hint).
// cosign v3 and GitHub's attest-build-provenance attach a Sigstore bundle
// as a referrer, as a v3 signature is, with the predicate type in the
// annotation dev.sigstore.bundle.predicateType (a hint, which the
// referrers fallback tag loses). The signed statement decides what an
// attestation is: its predicate type, its subjects.
const (
	// DSSEMediaType is the media type of a layer of cosign's `.att` tag.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// LegacyPredicateTypeAnnotation names the predicate type of a `.att`
	// layer.
	LegacyPredicateTypeAnnotation = "predicateType"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
)

// ForPolicy builds the verifier of a policy: its authorities' and, for each
// attestation requirement with authorities of its own, theirs.
func ForPolicy(p *policy.Policy) (*Verifier, error) {
	v, err := New(p.Authorities)
	if err != nil {
		return nil, err
	}
	for _, a := range p.Attestations {
		set := attestationSet{name: a.Set(), v: v}
		if a.Authorities != nil {
			if set.v, err = New(a.Authorities); err != nil {
				return nil, fmt.Errorf("attestation %q: %w", a.Name, err)
			}
		}
		if !v.hasSet(set.name) {
			v.attestations = append(v.attestations, set)
		}
	}
	return v, nil
}

// attestationSet is a verifier attestations are checked by: the policy's
// own (name ""), or an attestation requirement's authorities (its name).
type attestationSet struct {
	name string
	v    *Verifier
}

func (v *Verifier) hasSet(name string) bool {
	for _, s := range v.attestations {
		if s.name == name {
			return true
		}
	}
	return false
}

// HasAttestations reports whether the policy requires attestations, which
// CollectAttestations then reads.
func (v *Verifier) HasAttestations() bool { return len(v.attestations) > 0 }

// Attestation checks one Sigstore bundle as an attestation under the
// verifier of set (an attestation requirement's name, or "" for the
// policy's authorities), as CollectAttestations checks a referrer. ok is
// false when it is not an attestation (a signature), or the policy has no
// such set.
func (v *Verifier) Attestation(data []byte, set string) (policy.Signature, bool) {
	for _, s := range v.attestations {
		if s.name != set {
			continue
		}
		sig, ok := s.v.prepareBundle(data, useAttestation).Run()
		if ok {
			if sig.Attestation == nil {
				sig.Attestation = &policy.AttestationFacts{}
			}
			sig.Attestation.Set = set
		}
		return sig, ok
	}
	return policy.Signature{}, false
}

// rawAttestation is an attestation as the registry holds it, before a
// verifier checks it.
type rawAttestation struct {
	layout      policy.Layout
	ref         string // the manifest that holds it
	claimed     string // the predicate type the registry's metadata gives
	legacy      bool   // a `.att` layer: data is the envelope
	data        []byte
	annotations map[string]string
	problem     string // why it could not be read
}

// CollectAttestations finds the attestations of digest in both layouts
// (the `.att` tag, bundle referrers) and checks each one with every
// verifier of the policy's attestation requirements; what the registry
// holds is read once. Each result has Attestation set, naming its
// verifier's set. As with Collect, an attestation that cannot be read is
// reported as malformed, an error is returned only when the registry
// fails, and each layout has its own budget: at most
// limits.MaxLegacySignatures layers and limits.MaxReferrers referrers,
// limits.MaxSignatureChecks cryptographic checks per layout and verifier.
// A referrer that says it holds cosign's signing statement is not read;
// one that says nothing (the fallback tag) is, and the verified statement
// decides.
func CollectAttestations(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, digest string) ([]policy.Signature, error) {
	if !v.HasAttestations() {
		return nil, nil
	}
	legacy, err := readLegacyAttestations(ctx, reg, repo, digest)
	if err != nil {
		return nil, err
	}
	bundles, err := readBundleAttestations(ctx, reg, repo, digest)
	if err != nil {
		return nil, err
	}
	var out []policy.Signature
	for _, set := range v.attestations {
		for _, raws := range [][]rawAttestation{legacy, bundles} {
			items := make([]Prepared, len(raws))
			for i, r := range raws {
				switch {
				case r.problem != "":
					items[i] = done(malformed(r.problem), true)
				case r.legacy:
					items[i] = set.v.prepareLegacyAttestation(r.data, r.annotations)
				default:
					items[i] = set.v.prepareBundle(r.data, useAttestation)
				}
			}
			for i, s := range check(items) {
				if s.Layout == dropped {
					continue // a signature, not an attestation
				}
				s.Layout, s.Ref = raws[i].layout, raws[i].ref
				if s.Attestation == nil {
					s.Attestation = &policy.AttestationFacts{}
				}
				s.Attestation.Set, s.Attestation.Claimed = set.name, raws[i].claimed
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func readLegacyAttestations(ctx context.Context, reg Registry, repo oci.Repository, digest string) ([]rawAttestation, error) {
	raw, ref, found, err := reg.LegacyAttestation(ctx, repo, digest)
	bad := func(problem string) []rawAttestation {
		return []rawAttestation{{layout: policy.LayoutCosignLegacy, ref: ref, problem: problem}}
	}
	switch {
	case err != nil && fatal(err):
		return nil, fmt.Errorf("verify: legacy attestations of %s: %w", digest, err)
	case err != nil:
		return bad(err.Error()), nil
	case !found:
		return nil, nil
	}
	m, err := parseManifest(raw)
	if err != nil {
		return bad(err.Error()), nil
	}
	var (
		out  []rawAttestation
		seen = map[string]bool{} // layer digest and annotations
	)
	for i, layer := range m.Layers {
		if i == limits.MaxLegacySignatures {
			break
		}
		r := rawAttestation{layout: policy.LayoutCosignLegacy, ref: ref, legacy: true, annotations: layer.Annotations,
			claimed: layer.Annotations[LegacyPredicateTypeAnnotation]}
		if string(layer.MediaType) != DSSEMediaType {
			r.problem = fmt.Sprintf("layer %d has media type %q", i, layer.MediaType)
			out = append(out, r)
			continue
		}
		key, _ := json.Marshal(struct {
			Digest      string
			Annotations map[string]string
		}{layer.Digest.String(), layer.Annotations})
		if seen[string(key)] {
			continue
		}
		seen[string(key)] = true
		if r.data, err = reg.Blob(ctx, repo, layer, limits.MaxSignatureLayerBytes); err != nil {
			if fatal(err) {
				return nil, fmt.Errorf("verify: legacy attestation %s: %w", layer.Digest, err)
			}
			r.problem = err.Error()
		}
		out = append(out, r)
	}
	return out, nil
}

// isAttestationReferrer keeps the entries of a referrers listing that may
// be an attestation: a Sigstore bundle (or what a registry lists instead)
// that does not say it holds cosign's signing statement.
func isAttestationReferrer(d v1.Descriptor) bool {
	if !maybeBundle(d.ArtifactType) {
		return false
	}
	pt, ok := d.Annotations[PredicateTypeAnnotation]
	return !ok || pt != CosignSignPredicate
}

func readBundleAttestations(ctx context.Context, reg Registry, repo oci.Repository, digest string) ([]rawAttestation, error) {
	descs, err := reg.Referrers(ctx, repo, digest, isAttestationReferrer)
	if err != nil {
		if fatal(err) {
			return nil, fmt.Errorf("verify: referrers of %s: %w", digest, err)
		}
		return []rawAttestation{{layout: policy.LayoutSigstoreBundle, problem: err.Error()}}, nil
	}
	var out []rawAttestation
	for _, d := range descs {
		r := rawAttestation{layout: policy.LayoutSigstoreBundle, ref: d.Digest.String(), claimed: d.Annotations[PredicateTypeAnnotation]}
		raw, err := reg.Manifest(ctx, repo, r.ref)
		if err != nil {
			if fatal(err) {
				return nil, fmt.Errorf("verify: referrer %s: %w", r.ref, err)
			}
			r.problem = err.Error()
			out = append(out, r)
			continue
		}
		m, err := parseManifest(raw)
		switch {
		case err != nil:
			r.problem = err.Error()
			out = append(out, r)
			continue
		case m.Subject == nil || m.Subject.Digest.String() != digest, !strings.HasPrefix(m.ArtifactType, bundleMediaTypePrefix):
			continue // registry metadata pointing elsewhere, another artifact: not ours
		case len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), bundleMediaTypePrefix):
			r.problem = fmt.Sprintf("want exactly one bundle layer, found %d layers", len(m.Layers))
			out = append(out, r)
			continue
		}
		if pt, ok := m.Annotations[PredicateTypeAnnotation]; ok {
			if pt == CosignSignPredicate {
				continue // the manifest says it is a signature
			}
			r.claimed = pt
		}
		if r.data, err = reg.Blob(ctx, repo, m.Layers[0], limits.MaxSignatureLayerBytes); err != nil {
			if fatal(err) {
				return nil, fmt.Errorf("verify: bundle %s: %w", m.Layers[0].Digest, err)
			}
			r.problem = err.Error()
		}
		if r.claimed == "" && r.problem == "" {
			// No annotation (the fallback tag): what the unverified
			// statement says is the hint. A signature (cosign's signing
			// statement) is not an attestation; one that lies about it
			// hides only itself, as its signature covers the statement.
			if r.claimed = unverifiedPredicateType(r.data); r.claimed == CosignSignPredicate {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// prepareLegacyAttestation reads a `.att` layer, a DSSE envelope with its
// layer's annotations, into a bundle, leaving the cryptography to Run.
// One that carries a certificate is judged by it (keyless, x509); one
// without, under the key authorities.
func (v *Verifier) prepareLegacyAttestation(envelope []byte, annotations map[string]string) Prepared {
	for k, val := range annotations {
		if len(val) > limits.MaxSignatureAnnotationBytes {
			return done(malformed(fmt.Sprintf("annotation %s is %d bytes, over the cap of %d", k, len(val), limits.MaxSignatureAnnotationBytes)), true)
		}
	}
	env, err := parseDSSE(envelope)
	if err != nil {
		return done(malformed(err.Error()), true)
	}
	m, err := parseLegacyMaterial(annotations)
	if err != nil {
		return done(malformed(err.Error()), true)
	}
	b, err := bundle.NewBundle(&protobundle.Bundle{
		MediaType:            m.mediaType,
		VerificationMaterial: m.vm,
		Content:              &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env},
	})
	if err != nil {
		return done(malformed(fmt.Sprintf("attestation: %v", err)), true)
	}
	if m.leaf != nil {
		return Prepared{Likely: v.mayHaveSigned(b) || v.mayBeX509(m.leaf), verify: func() (policy.Signature, bool) {
			return v.certificate(b, sgverify.WithoutArtifactUnsafe(), "", "keyless attestation", useAttestation, m.leaf, m.chain)
		}}
	}
	return Prepared{Likely: len(v.authorities) > 0, verify: func() (policy.Signature, bool) {
		return v.bundleKeyed(b, sgverify.WithoutArtifactUnsafe(), "", useAttestation)
	}}
}

// parseDSSE reads a DSSE envelope as cosign writes it: an in-toto payload
// and one signature. The payload is checked to read the same in every
// JSON parser (strictjson): sigstore-go reads the statement it verified,
// the condition reads its predicate.
func parseDSSE(raw []byte) (*protodsse.Envelope, error) {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   []byte `json:"sig"`
		} `json:"signatures"`
	}
	if err := decodeExact(raw, &env, "payloadType", "payload", "signatures"); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	switch {
	case env.PayloadType != InTotoPayloadType:
		return nil, fmt.Errorf("DSSE envelope: payload type %q, want %s", env.PayloadType, InTotoPayloadType)
	case len(env.Signatures) != 1 || len(env.Signatures[0].Sig) == 0:
		return nil, fmt.Errorf("DSSE envelope: %d signatures, want one", len(env.Signatures))
	case len(env.Payload) == 0:
		return nil, errors.New("DSSE envelope: no payload")
	}
	if err := strictjson.Check(env.Payload); err != nil {
		return nil, fmt.Errorf("DSSE envelope: statement: %w", err)
	}
	return &protodsse.Envelope{
		Payload:     env.Payload,
		PayloadType: env.PayloadType,
		Signatures:  []*protodsse.Signature{{Sig: env.Signatures[0].Sig, Keyid: env.Signatures[0].KeyID}},
	}, nil
}

// unverifiedPredicateType reads the predicate type of the in-toto
// statement in a bundle's DSSE envelope without verifying anything: a
// hint, as an annotation is; "" when there is none.
func unverifiedPredicateType(bundleJSON []byte) string {
	var b struct {
		DSSEEnvelope *struct {
			Payload []byte `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if json.Unmarshal(bundleJSON, &b) != nil || b.DSSEEnvelope == nil {
		return ""
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(b.DSSEEnvelope.Payload, &st) != nil {
		return ""
	}
	return st.PredicateType
}
