package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// This file holds the test harness: go-containerregistry's in-process
// registry on loopback, artifacts built by hand the way Helm and cosign lay
// them out, and handlers that make the registry lie.

// testRegistry is a real registry handler on loopback, reached by a Client
// over plain HTTP.
type testRegistry struct {
	srv    *httptest.Server
	repo   Repository
	client *Client
	// push configures go-containerregistry's client, used to push.
	push []remote.Option
}

// newTestRegistry starts a registry. referrers turns the OCI 1.1 referrers
// API on; without it, referrers live under the fallback tag. wrap, when not
// nil, sits in front of the registry to make it lie.
func newTestRegistry(t *testing.T, referrers bool, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	srv := httptest.NewServer(registryHandler(referrers, wrap))
	t.Cleanup(srv.Close)
	return &testRegistry{
		srv:    srv,
		repo:   Repository{Registry: srv.Listener.Addr().String(), Path: "charts/demo"},
		client: NewClient(Options{PlainHTTP: true}),
	}
}

// newTLSRegistry is newTestRegistry behind TLS, reached by a Client with
// the default options but a transport trusting the test certificate. wrap,
// when not nil, sits in front of the registry.
func newTLSRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	srv := httptest.NewTLSServer(registryHandler(false, wrap))
	t.Cleanup(srv.Close)
	return &testRegistry{
		srv:    srv,
		repo:   Repository{Registry: srv.Listener.Addr().String(), Path: "charts/demo"},
		client: NewClient(Options{Transport: srv.Client().Transport}),
		push:   []remote.Option{remote.WithTransport(srv.Client().Transport)},
	}
}

func registryHandler(referrers bool, wrap func(http.Handler) http.Handler) http.Handler {
	var h http.Handler = registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(referrers),
	)
	if wrap != nil {
		h = wrap(h)
	}
	return h
}

// nameRepo is the repository in go-containerregistry's terms, for pushing.
func (r *testRegistry) nameRepo(t *testing.T) name.Repository {
	t.Helper()
	repo, err := name.NewRepository(r.repo.String())
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// pushBlob uploads data as a blob and returns its descriptor.
func (r *testRegistry) pushBlob(t *testing.T, data []byte, mediaType types.MediaType) v1.Descriptor {
	t.Helper()
	if err := remote.WriteLayer(r.nameRepo(t), static.NewLayer(data, mediaType), r.push...); err != nil {
		t.Fatalf("pushing blob: %v", err)
	}
	return descriptorOf(data, mediaType)
}

// putManifest uploads body as a manifest of mediaType under tag, or by
// digest when tag is empty, and returns its digest.
func (r *testRegistry) putManifest(t *testing.T, tag string, body []byte, mediaType types.MediaType) string {
	t.Helper()
	digest := digestOf(body)
	var ref name.Reference = r.nameRepo(t).Digest(digest)
	if tag != "" {
		ref = r.nameRepo(t).Tag(tag)
	}
	if err := remote.Put(ref, rawManifest{body: body, mediaType: mediaType}, r.push...); err != nil {
		t.Fatalf("pushing manifest %s: %v", ref, err)
	}
	return digest
}

// rawManifest lets remote.Put upload bytes exactly as written.
type rawManifest struct {
	body      []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// chartArtifact is a Helm chart as Helm lays it out in a registry.
type chartArtifact struct {
	Version  string
	Tag      string
	Config   []byte
	Archive  []byte
	Manifest []byte
	Digest   string
	Layout   ChartManifest
}

// buildChart builds a small Helm chart of version, deterministically: the
// same version always gives the same digest.
func buildChart(t *testing.T, version string) chartArtifact {
	t.Helper()
	config := []byte(fmt.Sprintf(`{"apiVersion":"v2","name":"demo","version":%q}`, version))
	archive := tgz(t, "demo/Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: demo\nversion: %s\n", version))
	layout := ChartManifest{
		Config: descriptorOf(config, helmConfigMediaType),
		Chart:  descriptorOf(archive, helmChartMediaType),
	}
	manifest := mustJSON(t, v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        layout.Config,
		Layers:        []v1.Descriptor{layout.Chart},
	})
	return chartArtifact{
		Version:  version,
		Tag:      strings.ReplaceAll(version, "+", "_"),
		Config:   config,
		Archive:  archive,
		Manifest: manifest,
		Digest:   digestOf(manifest),
		Layout:   layout,
	}
}

// pushChart pushes c's blobs and its manifest under c.Tag.
func (r *testRegistry) pushChart(t *testing.T, c chartArtifact) {
	t.Helper()
	r.pushBlob(t, c.Config, helmConfigMediaType)
	r.pushBlob(t, c.Archive, helmChartMediaType)
	r.putManifest(t, c.Tag, c.Manifest, types.OCIManifestSchema1)
}

// pushReferrer pushes a manifest of artifactType whose subject is the
// manifest subject, the way cosign attaches a Sigstore bundle, and returns
// its digest. go-containerregistry's client keeps the fallback tag up to
// date when the registry has no referrers API.
func (r *testRegistry) pushReferrer(t *testing.T, subject []byte, artifactType, payload string) string {
	t.Helper()
	// The config carries the artifact type too: go-containerregistry's
	// registry derives a referrer's artifactType from it.
	config := r.pushBlob(t, []byte("{}"), types.MediaType(artifactType))
	layer := r.pushBlob(t, []byte(payload), types.MediaType(artifactType))
	sub := descriptorOf(subject, types.OCIManifestSchema1)
	body := mustJSON(t, v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        config,
		Layers:        []v1.Descriptor{layer},
		Subject:       &sub,
	})
	return r.putManifest(t, "", body, types.OCIManifestSchema1)
}

func descriptorOf(data []byte, mediaType types.MediaType) v1.Descriptor {
	h, err := v1.NewHash(digestOf(data))
	if err != nil {
		panic(err) // digestOf always returns a valid digest
	}
	return v1.Descriptor{MediaType: mediaType, Size: int64(len(data)), Digest: h}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tgz returns a gzipped tar holding one file, with fixed timestamps.
func tgz(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// isGet reports whether r is a GET whose path contains part ("/blobs/",
// "/manifests/", "/tags/list", "/referrers/").
func isGet(r *http.Request, part string) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, part)
}

// rewrite serves the registry's answer to the requests match selects after
// edit has changed its headers and body; Content-Length follows the new body
// unless edit deleted it (then the body is sent chunked). Every other
// request goes through untouched.
func rewrite(match func(*http.Request) bool, edit func(h http.Header, body []byte) []byte) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			h := rec.Header().Clone()
			body := edit(h, rec.Body.Bytes())
			if h.Get("Content-Length") != "" {
				h.Set("Content-Length", strconv.Itoa(len(body)))
			}
			for k, v := range h {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
}

// respond answers the requests match selects with status and body, without
// asking the registry.
func respond(match func(*http.Request) bool, status int, header http.Header, body []byte) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) {
				next.ServeHTTP(w, r)
				return
			}
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			_, _ = w.Write(body)
		})
	}
}

// flipByte returns body with its middle byte changed.
func flipByte(body []byte) []byte {
	out := bytes.Clone(body)
	out[len(out)/2] ^= 0x01
	return out
}
