package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/strictjson"
)

// Media types and annotations of cosign's two layouts.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	BundleMediaType        = "application/vnd.dev.sigstore.bundle.v0.3+json"
	bundleMediaTypePrefix  = "application/vnd.dev.sigstore.bundle"
)

// Registry is what Collect needs from a registry client. Every method checks
// what it returns against the digest it was asked for.
type Registry interface {
	LegacySignature(ctx context.Context, repo oci.Repository, digest string) (manifest []byte, manifestDigest string, found bool, err error)
	LegacyAttestation(ctx context.Context, repo oci.Repository, digest string) (manifest []byte, manifestDigest string, found bool, err error)
	Referrers(ctx context.Context, repo oci.Repository, digest string, keep oci.ReferrerFilter) ([]v1.Descriptor, error)
	Manifest(ctx context.Context, repo oci.Repository, digest string) ([]byte, error)
	Blob(ctx context.Context, repo oci.Repository, desc v1.Descriptor, max int64) ([]byte, error)
}

// Collect finds the signatures of digest in both cosign layouts and checks
// each one with v. A signature that cannot be read is reported as malformed
// and does not stop the others. An error is returned only when the registry
// itself fails (unreachable, or lying about a listing it must answer), since
// then the set of signatures is unknown.
//
// Each layout has its own budget, so that whoever can push signatures to
// the repository cannot keep a trusted one from counting by flooding the
// other layout: at most limits.MaxLegacySignatures layers of the legacy
// manifest and limits.MaxReferrers signature referrers (attestations and
// other artifacts are dropped before that cap) are read, and at most
// limits.MaxSignatureChecks signatures of each layout are verified
// cryptographically, the likely ones first (Prepared.Likely). Identical
// legacy layers are one signature, and a payload is fetched once.
func Collect(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, digest string) ([]policy.Signature, error) {
	legacy, err := collectLegacy(ctx, reg, v, repo, digest)
	if err != nil {
		return nil, err
	}
	bundles, err := collectBundles(ctx, reg, v, repo, digest)
	if err != nil {
		return nil, err
	}
	return append(legacy, bundles...), nil
}

// fatal reports whether a registry error makes the whole collection unknown
// rather than spoiling one signature.
func fatal(err error) bool {
	return errors.Is(err, oci.ErrUnavailable) || errors.Is(err, oci.ErrUnauthorized) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func collectLegacy(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, digest string) ([]policy.Signature, error) {
	raw, ref, found, err := reg.LegacySignature(ctx, repo, digest)
	switch {
	case err != nil && fatal(err):
		return nil, fmt.Errorf("verify: legacy signature of %s: %w", digest, err)
	case err != nil:
		return []policy.Signature{legacyMalformed(ref, err.Error())}, nil
	case !found:
		return nil, nil
	}
	m, err := parseManifest(raw)
	if err != nil {
		return []policy.Signature{legacyMalformed(ref, err.Error())}, nil
	}
	var (
		items    []Prepared
		payloads = map[string][]byte{} // by layer digest
		seen     = map[string]bool{}   // layer digest and annotations
	)
	for i, layer := range m.Layers {
		if i == limits.MaxLegacySignatures {
			break
		}
		if string(layer.MediaType) != SimpleSigningMediaType {
			items = append(items, done(legacyMalformed(ref, fmt.Sprintf("layer %d has media type %q", i, layer.MediaType)), true))
			continue
		}
		key, _ := json.Marshal(struct {
			Digest      string
			Annotations map[string]string
		}{layer.Digest.String(), layer.Annotations})
		if seen[string(key)] {
			continue // the same signature again
		}
		seen[string(key)] = true
		payload, ok := payloads[layer.Digest.String()]
		if !ok {
			payload, err = reg.Blob(ctx, repo, layer, limits.MaxSignatureLayerBytes)
			if err != nil {
				if fatal(err) {
					return nil, fmt.Errorf("verify: legacy signature payload %s: %w", layer.Digest, err)
				}
				items = append(items, done(legacyMalformed(ref, err.Error()), true))
				continue
			}
			payloads[layer.Digest.String()] = payload
		}
		items = append(items, v.prepareLegacy(payload, layer.Annotations))
	}
	sigs := check(items)
	for i := range sigs {
		sigs[i].Layout, sigs[i].Ref = policy.LayoutCosignLegacy, ref
	}
	return sigs, nil
}

// isSignatureReferrer keeps the entries of a referrers listing that may be
// a signature: a Sigstore bundle (or an artifact type a registry lists
// instead, maybeBundle) that does not say it holds another predicate than
// cosign's signing one. cosign writes the predicate type of what it
// attaches in the annotation dev.sigstore.bundle.predicateType; the
// listing is a hint, checked again on what is fetched.
func isSignatureReferrer(d v1.Descriptor) bool {
	if !maybeBundle(d.ArtifactType) {
		return false
	}
	pt, ok := d.Annotations[PredicateTypeAnnotation]
	return !ok || pt == CosignSignPredicate
}

// PredicateTypeAnnotation is the annotation in which cosign names the
// predicate type of a bundle it attaches as a referrer.
const PredicateTypeAnnotation = "dev.sigstore.bundle.predicateType"

func collectBundles(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, digest string) ([]policy.Signature, error) {
	descs, err := reg.Referrers(ctx, repo, digest, isSignatureReferrer)
	if err != nil {
		if fatal(err) {
			return nil, fmt.Errorf("verify: referrers of %s: %w", digest, err)
		}
		return []policy.Signature{{Layout: policy.LayoutSigstoreBundle, Malformed: true, Problem: err.Error()}}, nil
	}
	var (
		items []Prepared
		refs  []string
	)
	for _, d := range descs {
		p, ok, err := collectBundle(ctx, reg, v, repo, digest, d)
		if err != nil {
			return nil, err
		}
		if ok {
			items, refs = append(items, p), append(refs, d.Digest.String())
		}
	}
	sigs := check(items)
	out := sigs[:0]
	for i, s := range sigs {
		if s.Layout == dropped {
			continue
		}
		s.Layout, s.Ref = policy.LayoutSigstoreBundle, refs[i]
		out = append(out, s)
	}
	return out, nil
}

// dropped marks, in what check returns, a signature that turned out not to
// be one (an attestation).
const dropped policy.Layout = "dropped"

// check runs the cryptography of prepared signatures of one layout, the
// likely ones first, at most limits.MaxSignatureChecks of them; the rest
// are reported as not verified. The result has one entry per item, in
// order; one that turned out not to be a signature has Layout dropped.
func check(items []Prepared) []policy.Signature {
	var order []int
	for _, likely := range []bool{true, false} {
		for i, p := range items {
			if p.Checked() && p.Likely == likely {
				order = append(order, i)
			}
		}
	}
	out := make([]policy.Signature, len(items))
	checks := 0
	for _, i := range order {
		if checks == limits.MaxSignatureChecks {
			out[i] = policy.Signature{Problem: fmt.Sprintf("not verified: over the cap of %d cryptographic checks of one layout", limits.MaxSignatureChecks)}
			continue
		}
		checks++
		out[i] = result(items[i].Run())
	}
	for i, p := range items {
		if !p.Checked() {
			out[i] = result(p.Run())
		}
	}
	return out
}

func result(s policy.Signature, ok bool) policy.Signature {
	if !ok {
		return policy.Signature{Layout: dropped}
	}
	return s
}

// collectBundle reads one referrer and prepares its bundle. ok is false
// when it turns out not to be a signature of digest at all (another
// subject, another artifact type).
func collectBundle(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, digest string, d v1.Descriptor) (Prepared, bool, error) {
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
	if m.Subject == nil || m.Subject.Digest.String() != digest {
		return Prepared{}, false, nil // registry metadata pointing elsewhere: not ours
	}
	if !strings.HasPrefix(m.ArtifactType, bundleMediaTypePrefix) {
		return Prepared{}, false, nil
	}
	if len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), bundleMediaTypePrefix) {
		return bad(fmt.Sprintf("want exactly one bundle layer, found %d layers", len(m.Layers)))
	}
	data, err := reg.Blob(ctx, repo, m.Layers[0], limits.MaxSignatureLayerBytes)
	if err != nil {
		if fatal(err) {
			return Prepared{}, false, fmt.Errorf("verify: bundle %s: %w", m.Layers[0].Digest, err)
		}
		return bad(err.Error())
	}
	return v.prepareBundle(data, useReferrer), true, nil
}

// maybeBundle reports whether a referrer listed with artifactType may be a
// Sigstore bundle. Some registries (go-containerregistry's among them) list
// a manifest's config media type as its artifact type, which for a bundle
// is the OCI empty descriptor's, so that counts as a maybe too.
func maybeBundle(artifactType string) bool {
	switch {
	case strings.HasPrefix(artifactType, bundleMediaTypePrefix):
		return true
	case artifactType == "", artifactType == "application/vnd.oci.empty.v1+json":
		return true
	default:
		return false
	}
}

// ociManifest is the part of an OCI image manifest signatures use.
type ociManifest struct {
	MediaType    string            `json:"mediaType"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	ArtifactType string            `json:"artifactType"`
	Config       *v1.Descriptor    `json:"config,omitempty"`
	Layers       []v1.Descriptor   `json:"layers"`
	Subject      *v1.Descriptor    `json:"subject"`
}

func parseManifest(raw []byte) (ociManifest, error) {
	var m ociManifest
	if err := strictjson.Check(raw); err != nil {
		return m, fmt.Errorf("signature manifest: %w", err)
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&m); err != nil {
		return m, fmt.Errorf("signature manifest: %w", err)
	}
	// A descriptor without a digest decodes to an empty one; refuse it here,
	// so that every digest read on is canonical.
	for i, l := range m.Layers {
		if !policy.CanonicalDigest(l.Digest.String()) {
			return ociManifest{}, fmt.Errorf("signature manifest: layer %d: digest %q is not a canonical sha256 digest", i, l.Digest)
		}
	}
	if m.Subject != nil && !policy.CanonicalDigest(m.Subject.Digest.String()) {
		return ociManifest{}, fmt.Errorf("signature manifest: subject digest %q is not a canonical sha256 digest", m.Subject.Digest)
	}
	return m, nil
}

func legacyMalformed(ref, problem string) policy.Signature {
	return policy.Signature{Layout: policy.LayoutCosignLegacy, Ref: ref, Malformed: true, Problem: problem}
}
