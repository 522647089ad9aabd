package oci

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/chartproof/chartproof/internal/limits"
)

const (
	bundleType   = "application/vnd.dev.sigstore.bundle.v0.3+json"
	attestedType = "application/vnd.in-toto+json"
)

// TestReferrers runs the same cases against a registry with the referrers
// API and one where go-containerregistry's client keeps the fallback tag.
func TestReferrers(t *testing.T) {
	for _, api := range []bool{true, false} {
		name := "fallback tag"
		if api {
			name = "referrers API"
		}
		t.Run(name, func(t *testing.T) {
			reg := newTestRegistry(t, api, nil)
			signed, unsigned := buildChart(t, "1.0.0"), buildChart(t, "2.0.0")
			reg.pushChart(t, signed)
			reg.pushChart(t, unsigned)
			bundle := reg.pushReferrer(t, signed.Manifest, bundleType, "bundle")
			attestation := reg.pushReferrer(t, signed.Manifest, attestedType, "attestation")

			tests := []struct {
				name         string
				digest       string
				artifactType string
				want         []string
				wantErr      error
			}{
				{name: "all", digest: signed.Digest, want: []string{bundle, attestation}},
				{name: "bundles only", digest: signed.Digest, artifactType: bundleType, want: []string{bundle}},
				{name: "attestations only", digest: signed.Digest, artifactType: attestedType, want: []string{attestation}},
				{name: "unknown artifact type", digest: signed.Digest, artifactType: "application/x-unknown", want: []string{}},
				{name: "no referrers", digest: unsigned.Digest, want: []string{}},
				{name: "invalid digest", digest: strings.ToUpper(signed.Digest), wantErr: ErrInvalidReference},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := reg.client.Referrers(context.Background(), reg.repo, tt.digest, ArtifactType(tt.artifactType))
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Referrers: got error %v, want %v", err, tt.wantErr)
					}
					if tt.wantErr != nil {
						return
					}
					if diff := cmp.Diff(sorted(tt.want), digests(got)); diff != "" {
						t.Errorf("Referrers: got -want +got:\n%s", diff)
					}
					for _, d := range got {
						if tt.artifactType != "" && d.ArtifactType != tt.artifactType {
							t.Errorf("Referrers: got artifactType %q, want %q", d.ArtifactType, tt.artifactType)
						}
					}
				})
			}
		})
	}
}

// TestReferrersAPIWinsOverFallbackTag: where the API exists, a fallback tag
// pushed by hand is not read (REG-08 a).
func TestReferrersAPIWinsOverFallbackTag(t *testing.T) {
	reg := newTestRegistry(t, true, nil)
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)
	bundle := reg.pushReferrer(t, c.Manifest, bundleType, "bundle")
	planted := buildChart(t, "planted")
	reg.pushChart(t, planted)
	index := mustJSON(t, v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{{MediaType: types.OCIManifestSchema1, Digest: descriptorOf(planted.Manifest, "").Digest, Size: int64(len(planted.Manifest)), ArtifactType: bundleType}},
	})
	reg.putManifest(t, fallbackTag(c.Digest), index, types.OCIImageIndex)

	got, err := reg.client.Referrers(context.Background(), reg.repo, c.Digest, nil)
	if err != nil {
		t.Fatalf("Referrers: got error %v, want nil", err)
	}
	if diff := cmp.Diff([]string{bundle}, digests(got)); diff != "" {
		t.Errorf("Referrers: got -want +got:\n%s", diff)
	}
}

// TestReferrersNonIndexAnswer: a registry answering the referrers endpoint
// with something that is not an image index has no referrers API; the
// fallback tag is read instead.
func TestReferrersNonIndexAnswer(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "html", body: "<html>hello</html>"},
		{name: "an image manifest", body: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`},
		{name: "an index without mediaType", body: `{"schemaVersion":2,"manifests":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The registry answers honestly (404) while go-containerregistry
			// pushes, so the fallback tag gets written, then lies.
			var lying atomic.Bool
			match := func(r *http.Request) bool { return lying.Load() && isGet(r, "/referrers/") }
			reg := newTestRegistry(t, false, respond(match, http.StatusOK, nil, []byte(tt.body)))
			c := buildChart(t, "1.0.0")
			reg.pushChart(t, c)
			bundle := reg.pushReferrer(t, c.Manifest, bundleType, "bundle")
			lying.Store(true)

			got, err := reg.client.Referrers(context.Background(), reg.repo, c.Digest, nil)
			if err != nil {
				t.Fatalf("Referrers: got error %v, want nil", err)
			}
			if diff := cmp.Diff([]string{bundle}, digests(got)); diff != "" {
				t.Errorf("Referrers: got -want +got:\n%s", diff)
			}
		})
	}
}

// TestReferrersStatusWithoutAPI: a registry or proxy answering the referrers
// endpoint with 400, 405, 406 or 501 has no referrers API, as the spec's
// clients take it: the fallback tag is read and the bundle found. The
// control, 500, is an outage: the listing fails as unavailable (an
// inconclusive verdict), the fallback tag is not read instead.
func TestReferrersStatusWithoutAPI(t *testing.T) {
	for _, tt := range []struct {
		status  int
		wantErr error
	}{
		{status: http.StatusBadRequest},
		{status: http.StatusMethodNotAllowed},
		{status: http.StatusNotAcceptable},
		{status: http.StatusNotImplemented},
		{status: http.StatusInternalServerError, wantErr: ErrUnavailable},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			var refusing atomic.Bool
			match := func(r *http.Request) bool { return refusing.Load() && isGet(r, "/referrers/") }
			reg := newTestRegistry(t, false, respond(match, tt.status, nil, nil))
			c := buildChart(t, "1.0.0")
			reg.pushChart(t, c)
			bundle := reg.pushReferrer(t, c.Manifest, bundleType, "bundle")
			refusing.Store(true)

			got, err := reg.client.Referrers(context.Background(), reg.repo, c.Digest, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Referrers: got error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if diff := cmp.Diff([]string{bundle}, digests(got)); diff != "" {
				t.Errorf("Referrers: got -want +got:\n%s", diff)
			}
		})
	}
}

// TestReferrersFilteredBeforeCap: entries the filter drops (attestations)
// do not use up the cap, however many come first.
func TestReferrersFilteredBeforeCap(t *testing.T) {
	subject := buildChart(t, "1.0.0")
	var entries []v1.Descriptor
	for i := range limits.MaxReferrers + 10 {
		d := descriptorOf([]byte{byte(i), byte(i >> 8), 1}, types.OCIManifestSchema1)
		d.ArtifactType = attestedType
		entries = append(entries, d)
	}
	wanted := descriptorOf([]byte("the signature"), types.OCIManifestSchema1)
	wanted.ArtifactType = bundleType
	entries = append(entries, wanted)
	index := mustJSON(t, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: entries})
	reg := newTestRegistry(t, true, respond(func(r *http.Request) bool { return isGet(r, "/referrers/") }, http.StatusOK,
		http.Header{"Content-Type": {string(types.OCIImageIndex)}}, index))
	got, err := reg.client.Referrers(context.Background(), reg.repo, subject.Digest, ArtifactType(bundleType))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]v1.Descriptor{wanted}, got); diff != "" {
		t.Errorf("Referrers after %d attestations (-want +got):\n%s", limits.MaxReferrers+10, diff)
	}
}

// TestReferrersListing checks what is kept of a listing the registry
// controls: canonical digests only, no duplicates, at most
// limits.MaxReferrers entries, artifactType filtered here even when the
// registry claims to have filtered (REG-08 c).
func TestReferrersListing(t *testing.T) {
	subject := buildChart(t, "1.0.0")
	entry := func(i int, artifactType string) v1.Descriptor {
		d := descriptorOf([]byte{byte(i), byte(i >> 8)}, types.OCIManifestSchema1)
		d.ArtifactType = artifactType
		return d
	}
	good := entry(0, bundleType)
	sha512 := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 10, Digest: v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("a", 128)}, ArtifactType: bundleType}
	zero := entry(1, bundleType)
	zero.Size = 0
	huge := entry(2, bundleType)
	huge.Size = limits.MaxManifestBytes + 1
	other := entry(3, attestedType)
	many := []v1.Descriptor{}
	for i := range limits.MaxReferrers + 5 {
		many = append(many, entry(100+i, bundleType))
	}

	tests := []struct {
		name    string
		entries []v1.Descriptor
		want    []v1.Descriptor
	}{
		{name: "invalid entries dropped", entries: []v1.Descriptor{sha512, zero, huge, good}, want: []v1.Descriptor{good}},
		{name: "duplicates dropped", entries: []v1.Descriptor{good, good}, want: []v1.Descriptor{good}},
		{name: "filter ignored by the registry", entries: []v1.Descriptor{other, good}, want: []v1.Descriptor{good}},
		{name: "capped", entries: many, want: many[:limits.MaxReferrers]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			index := mustJSON(t, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: tt.entries})
			header := http.Header{"Content-Type": {string(types.OCIImageIndex)}, "Oci-Filters-Applied": {"artifactType"}}
			reg := newTestRegistry(t, true, respond(func(r *http.Request) bool { return isGet(r, "/referrers/") }, http.StatusOK, header, index))
			got, err := reg.client.Referrers(context.Background(), reg.repo, subject.Digest, ArtifactType(bundleType))
			if err != nil {
				t.Fatalf("Referrers: got error %v, want nil", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Referrers: got -want +got:\n%s", diff)
			}
		})
	}
}

// TestReferrersPushedBeyondCap pushes more referrers than
// limits.MaxReferrers to a real registry.
func TestReferrersPushedBeyondCap(t *testing.T) {
	reg := newTestRegistry(t, false, nil)
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)
	for i := range limits.MaxReferrers + 2 {
		reg.pushReferrer(t, c.Manifest, bundleType, strings.Repeat("x", i+1))
	}
	got, err := reg.client.Referrers(context.Background(), reg.repo, c.Digest, ArtifactType(bundleType))
	if err != nil {
		t.Fatalf("Referrers: got error %v, want nil", err)
	}
	if len(got) != limits.MaxReferrers {
		t.Errorf("Referrers: got %d entries, want %d", len(got), limits.MaxReferrers)
	}
}

func digests(ds []v1.Descriptor) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Digest.String())
	}
	return sorted(out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
