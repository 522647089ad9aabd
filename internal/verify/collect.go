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
	Referrers(ctx context.Context, repo oci.Repository, digest, artifactType string) ([]v1.Descriptor, error)
	Manifest(ctx context.Context, repo oci.Repository, digest string) ([]byte, error)
	Blob(ctx context.Context, repo oci.Repository, desc v1.Descriptor, max int64) ([]byte, error)
}

// Collect finds the signatures of digest in both cosign layouts and checks
// each one with v. A signature that cannot be read is reported as malformed
// and does not stop the others. An error is returned only when the registry
// itself fails (unreachable, or lying about a listing it must answer), since
// then the set of signatures is unknown.
func Collect(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, digest string) ([]policy.Signature, error) {
	legacy, err := collectLegacy(ctx, reg, v, repo, digest)
	if err != nil {
		return nil, err
	}
	bundles, err := collectBundles(ctx, reg, v, repo, digest, limits.MaxSignatures-len(legacy))
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
	var sigs []policy.Signature
	for i, layer := range m.Layers {
		if len(sigs) == limits.MaxSignatures {
			break
		}
		if string(layer.MediaType) != SimpleSigningMediaType {
			sigs = append(sigs, legacyMalformed(ref, fmt.Sprintf("layer %d has media type %q", i, layer.MediaType)))
			continue
		}
		payload, err := reg.Blob(ctx, repo, layer, limits.MaxSignatureLayerBytes)
		if err != nil {
			if fatal(err) {
				return nil, fmt.Errorf("verify: legacy signature payload %s: %w", layer.Digest, err)
			}
			sigs = append(sigs, legacyMalformed(ref, err.Error()))
			continue
		}
		s := v.Legacy(payload, layer.Annotations)
		s.Layout, s.Ref = policy.LayoutCosignLegacy, ref
		sigs = append(sigs, s)
	}
	return sigs, nil
}

func collectBundles(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, digest string, max int) ([]policy.Signature, error) {
	if max <= 0 {
		return nil, nil
	}
	descs, err := reg.Referrers(ctx, repo, digest, "")
	if err != nil {
		if fatal(err) {
			return nil, fmt.Errorf("verify: referrers of %s: %w", digest, err)
		}
		return []policy.Signature{{Layout: policy.LayoutSigstoreBundle, Malformed: true, Problem: err.Error()}}, nil
	}
	var sigs []policy.Signature
	for _, d := range descs {
		if len(sigs) == max {
			break
		}
		// The listing is a hint: the artifact type is checked again on the
		// fetched manifest, and so is its subject.
		if !maybeBundle(d.ArtifactType) {
			continue
		}
		s, ok, err := collectBundle(ctx, reg, v, repo, digest, d)
		if err != nil {
			return nil, err
		}
		if ok {
			sigs = append(sigs, s)
		}
	}
	return sigs, nil
}

// collectBundle reads one referrer. ok is false when it turns out not to be
// a signature of digest at all (another subject, or an attestation).
func collectBundle(ctx context.Context, reg Registry, v *Verifier, repo oci.Repository, digest string, d v1.Descriptor) (policy.Signature, bool, error) {
	ref := d.Digest.String()
	bad := func(problem string) (policy.Signature, bool, error) {
		return policy.Signature{Layout: policy.LayoutSigstoreBundle, Ref: ref, Malformed: true, Problem: problem}, true, nil
	}
	raw, err := reg.Manifest(ctx, repo, ref)
	if err != nil {
		if fatal(err) {
			return policy.Signature{}, false, fmt.Errorf("verify: referrer %s: %w", ref, err)
		}
		return bad(err.Error())
	}
	m, err := parseManifest(raw)
	if err != nil {
		return bad(err.Error())
	}
	if m.Subject == nil || m.Subject.Digest.String() != digest {
		return policy.Signature{}, false, nil // registry metadata pointing elsewhere: not ours
	}
	if !strings.HasPrefix(m.ArtifactType, bundleMediaTypePrefix) {
		return policy.Signature{}, false, nil
	}
	if len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), bundleMediaTypePrefix) {
		return bad(fmt.Sprintf("want exactly one bundle layer, found %d layers", len(m.Layers)))
	}
	data, err := reg.Blob(ctx, repo, m.Layers[0], limits.MaxSignatureLayerBytes)
	if err != nil {
		if fatal(err) {
			return policy.Signature{}, false, fmt.Errorf("verify: bundle %s: %w", m.Layers[0].Digest, err)
		}
		return bad(err.Error())
	}
	s, ok := v.Bundle(data)
	s.Layout, s.Ref = policy.LayoutSigstoreBundle, ref
	return s, ok, nil
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
	MediaType    string          `json:"mediaType"`
	ArtifactType string          `json:"artifactType"`
	Layers       []v1.Descriptor `json:"layers"`
	Subject      *v1.Descriptor  `json:"subject"`
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
