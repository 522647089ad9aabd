package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	fluxoci "github.com/fluxcd/pkg/oci"

	"github.com/chartproof/chartproof/internal/limits"
)

// Resolved is a version resolved to exactly one manifest.
type Resolved struct {
	// Digest is "sha256:<64 lowercase hex>", computed over Manifest.
	Digest string
	// Tag is the tag the manifest came from; empty when the version was a
	// digest.
	Tag string
	// Manifest is the raw manifest, already checked against Digest.
	Manifest []byte
}

// Resolve turns version into one manifest, fetched once. version is one of:
//
//   - a digest "sha256:<64 lowercase hex>": fetched by digest, and the body
//     must hash to it;
//   - an exact semver version, as Masterminds semver parses one ("1.2.3",
//     "1.2.3+build", also "v1.2.3" and "1.2"): used as a tag, with '+'
//     replaced by '_' as Helm does;
//   - a semver range (">=1.0.0 <2.0.0", "~1.2", "1.x"): the highest tag that
//     is a strict semver version matching the range, ignoring cosign's
//     .sig/.att/.sbom tags and the sha256-<hex> referrers tags;
//   - any other string: used as a tag.
//
// The digest returned is always computed over the bytes returned; the
// registry's Docker-Content-Digest header is not used.
func (c *Client) Resolve(ctx context.Context, repo Repository, version string) (Resolved, error) {
	if version == "" {
		return Resolved{}, fmt.Errorf("%w: empty version", ErrInvalidReference)
	}
	if strings.HasPrefix(version, "sha256:") {
		body, err := c.Manifest(ctx, repo, version)
		if err != nil {
			return Resolved{}, err
		}
		return Resolved{Digest: version, Manifest: body}, nil
	}

	constraint, isRange := semverRange(version)
	tag := version
	if !isRange {
		tag = helmTag(version)
		if err := checkTag(tag); err != nil {
			return Resolved{}, err
		}
	}
	s, err := c.session(ctx, repo)
	if err != nil {
		return Resolved{}, err
	}
	if isRange {
		tag, err = s.highestTag(ctx, constraint, version)
		if err != nil {
			return Resolved{}, err
		}
	}
	body, digest, err := s.manifest(ctx, tag, "")
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{Digest: digest, Tag: tag, Manifest: body}, nil
}

// Manifest fetches the manifest digest, capped at limits.MaxManifestBytes,
// and checks that its body hashes to digest.
func (c *Client) Manifest(ctx context.Context, repo Repository, digest string) ([]byte, error) {
	if err := checkDigest(digest); err != nil {
		return nil, err
	}
	s, err := c.session(ctx, repo)
	if err != nil {
		return nil, err
	}
	body, _, err := s.manifest(ctx, digest, digest)
	if err != nil {
		return nil, err
	}
	return body, nil
}

// LegacySignature fetches the manifest at cosign's legacy signature tag
// "sha256-<hex>.sig" of digest. found is false when the tag does not exist.
// The manifest is returned with its computed digest; the tag is mutable, so
// the caller verifies what it holds.
func (c *Client) LegacySignature(ctx context.Context, repo Repository, digest string) (manifest []byte, manifestDigest string, found bool, err error) {
	return c.legacyTag(ctx, repo, digest, ".sig")
}

// LegacyAttestation reads the manifest of cosign's legacy attestation tag
// for digest, "sha256-<hex>.att", as LegacySignature reads the signature
// tag.
func (c *Client) LegacyAttestation(ctx context.Context, repo Repository, digest string) (manifest []byte, manifestDigest string, found bool, err error) {
	return c.legacyTag(ctx, repo, digest, ".att")
}

func (c *Client) legacyTag(ctx context.Context, repo Repository, digest, suffix string) (manifest []byte, manifestDigest string, found bool, err error) {
	if err := checkDigest(digest); err != nil {
		return nil, "", false, err
	}
	s, err := c.session(ctx, repo)
	if err != nil {
		return nil, "", false, err
	}
	body, got, err := s.manifest(ctx, fallbackTag(digest)+suffix, "")
	if errors.Is(err, ErrNotFound) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, err
	}
	return body, got, true, nil
}

// semverRange reports whether version is a semver range, as opposed to an
// exact version or a plain tag.
func semverRange(version string) (*semver.Constraints, bool) {
	if _, err := semver.NewVersion(version); err == nil {
		return nil, false
	}
	constraint, err := semver.NewConstraint(version)
	if err != nil {
		return nil, false
	}
	return constraint, true
}

// helmTag returns the tag Helm pushes an exact semver version under: OCI
// tags cannot hold '+', so Helm writes '_'.
func helmTag(version string) string {
	if _, err := semver.NewVersion(version); err != nil {
		return version
	}
	return strings.ReplaceAll(version, "+", "_")
}

// highestTag returns the tag holding the highest strict semver version that
// satisfies constraint. Versions equal but for build metadata are ordered by
// tag, so the choice does not depend on the registry's listing order.
func (s *session) highestTag(ctx context.Context, constraint *semver.Constraints, version string) (string, error) {
	tags, err := s.tags(ctx)
	if err != nil {
		return "", err
	}
	tag, ok := highest(tags, constraint)
	if !ok {
		return "", fmt.Errorf("%w: no tag of %s matches %q", ErrNotFound, s.repo, version)
	}
	return tag, nil
}

// highest returns the tag among tags holding the highest strict semver
// version that satisfies constraint. ok is false when none does.
func highest(tags []string, constraint *semver.Constraints) (string, bool) {
	var best *semver.Version
	var bestTag string
	for _, tag := range tags {
		if fluxoci.IsCosignArtifact(tag) || strings.HasPrefix(tag, "sha256-") || checkTag(tag) != nil {
			continue
		}
		v, err := semver.StrictNewVersion(strings.ReplaceAll(tag, "_", "+"))
		if err != nil || !constraint.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) || v.Equal(best) && tag > bestTag {
			best, bestTag = v, tag
		}
	}
	return bestTag, best != nil
}

// tags lists the repository's tags, following Link pages up to
// limits.MaxTagListPages and failing past limits.MaxTags tags: a range
// resolved on a partial list could miss the highest version.
func (s *session) tags(ctx context.Context) ([]string, error) {
	u := s.url("tags/list", "")
	var tags []string
	for page := 0; ; page++ {
		if page == limits.MaxTagListPages {
			return nil, fmt.Errorf("%w: tags of %s: more than %d pages", ErrLimitExceeded, s.repo, limits.MaxTagListPages)
		}
		resp, err := s.get(ctx, u, "application/json")
		if err != nil {
			return nil, err
		}
		body, err := readBody(resp, limits.MaxTagListBytes)
		if err != nil {
			return nil, err
		}
		list, err := parseTagList(body)
		if err != nil {
			return nil, fmt.Errorf("%w: tags of %s: %w", ErrUnavailable, s.repo, err)
		}
		tags = append(tags, list...)
		if len(tags) > limits.MaxTags {
			return nil, fmt.Errorf("%w: tags of %s: more than %d", ErrLimitExceeded, s.repo, limits.MaxTags)
		}
		next, ok, err := s.nextPage(resp)
		if err != nil {
			return nil, err
		}
		if !ok {
			return tags, nil
		}
		u = next
	}
}

// parseTagList decodes one page of a tag listing, {"name": ..., "tags": [...]}.
func parseTagList(body []byte) ([]string, error) {
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("malformed listing: %w", err)
	}
	return list.Tags, nil
}
