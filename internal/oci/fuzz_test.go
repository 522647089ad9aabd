package oci

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/chartproof/chartproof/internal/limits"
)

// The fuzz targets of this file cover the parsers of what a registry sends
// besides chart manifests (FuzzParseChartManifest): referrer indexes, tag
// listings and Link headers (THREATS DOS-04). Each checks that whatever is
// accepted holds the invariants the callers rely on.

// FuzzReferrersIndex feeds parseIndex and appendReferrers, which turn a
// referrers answer or fallback-tag index into the list of referrers.
func FuzzReferrersIndex(f *testing.F) {
	good := descriptorOf([]byte("referrer"), types.OCIManifestSchema1)
	good.ArtifactType = bundleType
	other := descriptorOf([]byte("attestation"), types.OCIManifestSchema1)
	other.ArtifactType = attestedType
	seed := mustJSON(f, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{good, other, good}})
	f.Add(seed, bundleType)
	f.Add(seed, "")
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:AAAA","size":1},{"digest":"sha512:`+strings.Repeat("a", 128)+`","size":10}]}`), "")
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`), "")
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}`), bundleType)
	f.Fuzz(func(t *testing.T, body []byte, artifactType string) {
		index, err := parseIndex(body, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("parseIndex: got error %v, want one wrapping %v", err, ErrInvalidManifest)
			}
			return
		}
		if index.SchemaVersion != 2 || index.MediaType != types.OCIImageIndex {
			t.Fatalf("parseIndex accepted schemaVersion %d, mediaType %q", index.SchemaVersion, index.MediaType)
		}
		refs := appendReferrers([]v1.Descriptor{}, index.Manifests, ArtifactType(artifactType))
		if len(refs) > limits.MaxReferrers {
			t.Errorf("got %d referrers, cap %d", len(refs), limits.MaxReferrers)
		}
		seen := map[v1.Hash]bool{}
		for _, r := range refs {
			if err := checkHash(r.Digest); err != nil {
				t.Errorf("kept a referrer whose digest is not canonical: %v", err)
			}
			if r.Size <= 0 || r.Size > limits.MaxManifestBytes {
				t.Errorf("kept a referrer of size %d", r.Size)
			}
			if artifactType != "" && r.ArtifactType != artifactType {
				t.Errorf("kept artifactType %q, filter %q", r.ArtifactType, artifactType)
			}
			if seen[r.Digest] {
				t.Errorf("kept %s twice", r.Digest)
			}
			seen[r.Digest] = true
			if !slices.ContainsFunc(index.Manifests, func(d v1.Descriptor) bool { return d.Digest == r.Digest }) {
				t.Errorf("kept %s, which the index does not list", r.Digest)
			}
		}
	})
}

// FuzzTagList feeds parseTagList and highest, which pick the tag a semver
// range resolves to from a registry's listing.
func FuzzTagList(f *testing.F) {
	f.Add([]byte(`{"name":"charts/demo","tags":["1.0.0","1.2.0","2.0.0-rc.1","sha256-`+strings.Repeat("a", 64)+`.sig","latest"]}`), ">=1.0.0 <2.0.0")
	f.Add([]byte(`{"name":"charts/demo","tags":["1.0.0_build.1","1.0.0_build.2","v1.0.0","01.0.0"]}`), "1.x")
	f.Add([]byte(`{"tags":null}`), "*")
	f.Add([]byte(`{"tags":[1,2]}`), "~1.2")
	f.Add([]byte(`not json`), ">=0")
	f.Fuzz(func(t *testing.T, body []byte, rng string) {
		tags, err := parseTagList(body)
		if err != nil {
			return
		}
		constraint, err := semver.NewConstraint(rng)
		if err != nil {
			return
		}
		tag, ok := highest(tags, constraint)
		if !ok {
			if tag != "" {
				t.Errorf("no match, but tag %q", tag)
			}
			return
		}
		if !slices.Contains(tags, tag) {
			t.Fatalf("picked %q, which the listing does not hold", tag)
		}
		if err := checkTag(tag); err != nil {
			t.Errorf("picked a tag outside the OCI grammar: %v", err)
		}
		v, err := semver.StrictNewVersion(strings.ReplaceAll(tag, "_", "+"))
		if err != nil {
			t.Fatalf("picked %q, not a strict semver version: %v", tag, err)
		}
		if !constraint.Check(v) {
			t.Errorf("picked %q, outside %q", tag, rng)
		}
		if strings.HasPrefix(tag, "sha256-") {
			t.Errorf("picked a referrers or signature tag %q", tag)
		}
	})
}

// FuzzLinkHeader feeds nextPage, which follows pagination: whatever it
// follows stays on the registry's own scheme and host.
func FuzzLinkHeader(f *testing.F) {
	f.Add(`</v2/charts/demo/tags/list?n=2&last=b>; rel="next"`)
	f.Add(`<https://evil.example/v2/charts/demo/tags/list>; rel="next"`)
	f.Add(`<//evil.example/x>; rel=next, </v2/x>; rel="prev"`)
	f.Add(`<http://registry.example/v2/x>; rel="next"`)
	f.Add(`</v2/x>; rel="prev next"; title="x"`)
	f.Add(`<>; rel="next"`)
	f.Add(`rel="next"`)
	f.Fuzz(func(t *testing.T, link string) {
		s := &session{scheme: "https", repo: Repository{Registry: "registry.example", Path: "charts/demo"}}
		req := &http.Request{URL: s.url("tags/list", "")}
		resp := &http.Response{Header: http.Header{"Link": {link}}, Request: req}
		next, ok, err := s.nextPage(resp)
		switch {
		case err != nil:
			if ok || next != nil {
				t.Errorf("error %v with a next page %v", err, next)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("got error %v, want one wrapping %v", err, ErrUnavailable)
			}
		case ok:
			if next == nil {
				t.Fatal("ok without a next page")
			}
			if next.Scheme != "https" || next.Host != "registry.example" || next.User != nil {
				t.Errorf("next page %s leaves https://registry.example", next)
			}
			if _, err := url.Parse(next.String()); err != nil {
				t.Errorf("next page %q does not parse again: %v", next, err)
			}
		case next != nil:
			t.Errorf("no next page, but %v", next)
		}
	})
}
