package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/chartproof/chartproof/internal/limits"
)

// Referrers lists the manifests whose subject is digest: from the OCI 1.1
// referrers API, or, where the registry has none (it answers 404, or
// something that is not an image index), from the fallback tag
// "sha256-<hex>" holding an index. When the API exists the fallback tag is
// not read.
//
// A registry whose referrers endpoint answers 400, 404, 405, 406 or 501 to
// the first request is one without the API, as the distribution spec's
// clients take it.
//
// Entries are filtered by keep client-side (nil keeps all) before anything
// is capped, deduplicated by digest, stripped of entries whose digest is not
// canonical sha256, and capped at limits.MaxReferrers. They are untrusted
// hints: the caller fetches each with Manifest and checks its subject.
func (c *Client) Referrers(ctx context.Context, repo Repository, digest string, keep ReferrerFilter) ([]v1.Descriptor, error) {
	if err := checkDigest(digest); err != nil {
		return nil, err
	}
	s, err := c.session(ctx, repo)
	if err != nil {
		return nil, err
	}
	refs, supported, err := s.referrersAPI(ctx, digest, keep)
	if err != nil {
		return nil, err
	}
	if supported {
		return refs, nil
	}
	return s.referrersTag(ctx, digest, keep)
}

// ReferrerFilter says which entries of a referrers listing to keep.
type ReferrerFilter func(v1.Descriptor) bool

// ArtifactType keeps the entries of one artifact type; "" keeps all.
func ArtifactType(artifactType string) ReferrerFilter {
	if artifactType == "" {
		return nil
	}
	return func(d v1.Descriptor) bool { return d.ArtifactType == artifactType }
}

// noReferrersAPI reports whether the first answer of the referrers endpoint
// says the registry has no such API: 404, as the spec says, or 400, 405,
// 406 or 501, as registries and proxies without it answer.
func noReferrersAPI(err error) bool {
	var se *httpStatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.code {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusNotImplemented:
		return true
	}
	return false
}

// referrersAPI reads GET /v2/<repo>/referrers/<digest>, page by page.
// supported is false when the registry does not implement the API.
func (s *session) referrersAPI(ctx context.Context, digest string, keep ReferrerFilter) (refs []v1.Descriptor, supported bool, err error) {
	u := s.url("referrers", digest)
	refs = []v1.Descriptor{}
	for page := 0; ; page++ {
		if page == limits.MaxTagListPages {
			return nil, false, fmt.Errorf("%w: referrers of %s in %s: more than %d pages", ErrLimitExceeded, digest, s.repo, limits.MaxTagListPages)
		}
		resp, err := s.get(ctx, u, string(types.OCIImageIndex))
		if page == 0 && noReferrersAPI(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		body, err := readBody(resp, limits.MaxManifestBytes)
		if err != nil {
			return nil, false, err
		}
		index, err := parseIndex(body, fmt.Sprintf("referrers of %s in %s", digest, s.repo))
		if page == 0 && err != nil {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		refs = appendReferrers(refs, index.Manifests, keep)
		if len(refs) == limits.MaxReferrers {
			return refs, true, nil
		}
		next, ok, err := s.nextPage(resp)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return refs, true, nil
		}
		u = next
	}
}

// referrersTag reads the index at the referrers fallback tag
// "sha256-<hex>". No tag means no referrers.
func (s *session) referrersTag(ctx context.Context, digest string, keep ReferrerFilter) ([]v1.Descriptor, error) {
	body, _, err := s.manifest(ctx, fallbackTag(digest), "")
	if errors.Is(err, ErrNotFound) {
		return []v1.Descriptor{}, nil
	}
	if err != nil {
		return nil, err
	}
	index, err := parseIndex(body, fmt.Sprintf("referrers tag %s in %s", fallbackTag(digest), s.repo))
	if err != nil {
		return nil, err
	}
	return appendReferrers([]v1.Descriptor{}, index.Manifests, keep), nil
}

// parseIndex decodes an OCI image index; what names it in errors.
func parseIndex(body []byte, what string) (v1.IndexManifest, error) {
	var index v1.IndexManifest
	if err := json.Unmarshal(body, &index); err != nil {
		return v1.IndexManifest{}, fmt.Errorf("%w: %s: malformed image index: %v", ErrInvalidManifest, what, err)
	}
	if index.SchemaVersion != 2 || index.MediaType != types.OCIImageIndex {
		return v1.IndexManifest{}, fmt.Errorf("%w: %s: want an image index (schemaVersion 2, mediaType %s), got schemaVersion %d, mediaType %q",
			ErrInvalidManifest, what, types.OCIImageIndex, index.SchemaVersion, index.MediaType)
	}
	return index, nil
}

// appendReferrers appends to refs the entries of an index that have a
// canonical sha256 digest, a plausible size and that keep keeps (all when
// nil), skipping digests already in refs, up to limits.MaxReferrers.
func appendReferrers(refs, entries []v1.Descriptor, keep ReferrerFilter) []v1.Descriptor {
	for _, d := range entries {
		if len(refs) == limits.MaxReferrers {
			break
		}
		if checkHash(d.Digest) != nil || d.Size <= 0 || d.Size > limits.MaxManifestBytes {
			continue
		}
		if keep != nil && !keep(d) {
			continue
		}
		if containsDigest(refs, d.Digest) {
			continue
		}
		refs = append(refs, d)
	}
	return refs
}

func containsDigest(refs []v1.Descriptor, h v1.Hash) bool {
	for _, r := range refs {
		if r.Digest == h {
			return true
		}
	}
	return false
}
