package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/chartproof/chartproof/internal/limits"
)

func TestResolve(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t, false, nil)
	charts := map[string]chartArtifact{}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.3+build.1", "2.0.0", "3.0.0-rc.1"} {
		charts[v] = buildChart(t, v)
		reg.pushChart(t, charts[v])
	}
	// A plain tag, and cosign tags whose names parse as versions higher than
	// any chart: a range must never resolve to them.
	reg.putManifest(t, "latest", charts["1.0.0"].Manifest, types.OCIManifestSchema1)
	for _, tag := range []string{"10.0.0_sig.sig", "11.0.0_x.att", "12.0.0_x.sbom"} {
		reg.putManifest(t, tag, buildChart(t, tag).Manifest, types.OCIManifestSchema1)
	}
	// The referrers fallback tag of a chart is not a version either.
	reg.putManifest(t, fallbackTag(charts["2.0.0"].Digest), []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), types.OCIImageIndex)
	missing := "sha256:" + strings.Repeat("0", 64)

	tests := []struct {
		name    string
		version string
		want    chartArtifact
		wantTag string
		wantErr error
	}{
		{name: "exact version", version: "1.1.0", want: charts["1.1.0"], wantTag: "1.1.0"},
		{name: "exact version with build metadata uses Helm's tag", version: "1.2.3+build.1", want: charts["1.2.3+build.1"], wantTag: "1.2.3_build.1"},
		{name: "plain tag", version: "latest", want: charts["1.0.0"], wantTag: "latest"},
		{name: "range takes the highest release", version: ">=1.0.0", want: charts["2.0.0"], wantTag: "2.0.0"},
		{name: "range with wildcard", version: "1.x", want: charts["1.2.3+build.1"], wantTag: "1.2.3_build.1"},
		{name: "tilde range", version: "~1.1", want: charts["1.1.0"], wantTag: "1.1.0"},
		{name: "range including prereleases", version: ">=1.0.0-0", want: charts["3.0.0-rc.1"], wantTag: "3.0.0-rc.1"},
		{name: "digest", version: charts["1.1.0"].Digest, want: charts["1.1.0"]},

		{name: "range matched only by cosign tags", version: ">=4.0.0", wantErr: ErrNotFound},
		{name: "range matching nothing", version: "<1.0.0", wantErr: ErrNotFound},
		{name: "missing tag", version: "9.9.9", wantErr: ErrNotFound},
		{name: "missing digest", version: missing, wantErr: ErrNotFound},
		{name: "empty version", version: "", wantErr: ErrInvalidReference},
		{name: "uppercase digest", version: strings.ToUpper(charts["1.1.0"].Digest[:7]) + charts["1.1.0"].Digest[7:], wantErr: ErrInvalidReference},
		{name: "uppercase hex", version: "sha256:" + strings.ToUpper(charts["1.1.0"].Digest[7:]), wantErr: ErrInvalidReference},
		{name: "short digest", version: charts["1.1.0"].Digest[:70], wantErr: ErrInvalidReference},
		{name: "sha512 digest", version: "sha512:" + strings.Repeat("a", 128), wantErr: ErrInvalidReference},
		{name: "digest in tag form", version: fallbackTag(charts["1.1.0"].Digest) + ":x", wantErr: ErrInvalidReference},
		{name: "path in tag", version: "../../blobs/x", wantErr: ErrInvalidReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reg.client.Resolve(ctx, reg.repo, tt.version)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Resolve(%q): got error %v, want %v", tt.version, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			want := Resolved{Digest: tt.want.Digest, Tag: tt.wantTag, Manifest: tt.want.Manifest}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Resolve(%q): got -want +got:\n%s", tt.version, diff)
			}
		})
	}
}

// TestResolvePaginatedTags resolves a range over a tag list served two tags
// per page, linked by relative Link headers as the distribution spec shows.
func TestResolvePaginatedTags(t *testing.T) {
	var pages atomic.Int32
	paginate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isGet(r, "/tags/list") {
				next.ServeHTTP(w, r)
				return
			}
			pages.Add(1)
			q := r.URL.Query()
			q.Set("n", "2")
			r.URL.RawQuery = q.Encode()
			rewrite(func(*http.Request) bool { return true }, func(h http.Header, body []byte) []byte {
				tags := strings.Split(strings.Trim(strings.SplitN(string(body), `"tags":[`, 2)[1], `]}`), ",")
				if len(tags) == 2 {
					last := strings.Trim(tags[1], `"`)
					h.Set("Link", fmt.Sprintf(`<%s?n=2&last=%s>; rel="next"`, r.URL.Path, url.QueryEscape(last)))
				}
				return body
			})(next).ServeHTTP(w, r)
		})
	}
	reg := newTestRegistry(t, false, paginate)
	var want chartArtifact
	for _, v := range []string{"1.0.0", "1.4.0", "1.2.0", "2.0.0", "1.3.0"} {
		c := buildChart(t, v)
		reg.pushChart(t, c)
		if v == "1.4.0" {
			want = c
		}
	}

	got, err := reg.client.Resolve(context.Background(), reg.repo, "^1.0.0")
	if err != nil {
		t.Fatalf("Resolve: got error %v, want nil", err)
	}
	if got.Tag != "1.4.0" || got.Digest != want.Digest {
		t.Errorf("Resolve: got %s@%s, want 1.4.0@%s", got.Tag, got.Digest, want.Digest)
	}
	if n := pages.Load(); n != 3 {
		t.Errorf("tag list pages read: got %d, want 3", n)
	}
}

// TestResolveIgnoresDockerContentDigest: a registry naming another digest in
// Docker-Content-Digest changes nothing; the digest is computed (REG-02).
func TestResolveIgnoresDockerContentDigest(t *testing.T) {
	other := buildChart(t, "6.6.6")
	lie := rewrite(func(r *http.Request) bool { return isGet(r, "/manifests/") }, func(h http.Header, body []byte) []byte {
		h.Set("Docker-Content-Digest", other.Digest)
		return body
	})
	reg := newTestRegistry(t, false, lie)
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)
	reg.pushChart(t, other)

	for _, version := range []string{"1.0.0", ">=1.0.0 <2.0.0", c.Digest} {
		got, err := reg.client.Resolve(context.Background(), reg.repo, version)
		if err != nil {
			t.Fatalf("Resolve(%q): got error %v, want nil", version, err)
		}
		if got.Digest != c.Digest || digestOf(got.Manifest) != c.Digest {
			t.Errorf("Resolve(%q): got digest %s over a manifest hashing to %s, want %s", version, got.Digest, digestOf(got.Manifest), c.Digest)
		}
	}
}

// TestTagListLoopTerminates: a Link header pointing at itself stops after
// limits.MaxTagListPages requests (REG-08 d).
func TestTagListLoopTerminates(t *testing.T) {
	var requests atomic.Int32
	loop := rewrite(func(r *http.Request) bool { return isGet(r, "/tags/list") }, func(h http.Header, body []byte) []byte {
		requests.Add(1)
		h.Set("Link", `</v2/charts/demo/tags/list?n=1000>; rel="next"`)
		return body
	})
	reg := newTestRegistry(t, false, loop)
	reg.pushChart(t, buildChart(t, "1.0.0"))

	_, err := reg.client.Resolve(context.Background(), reg.repo, ">=1.0.0")
	if !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("Resolve: got error %v, want %v", err, ErrLimitExceeded)
	}
	if n := requests.Load(); n != limits.MaxTagListPages {
		t.Errorf("tag list requests: got %d, want %d", n, limits.MaxTagListPages)
	}
}

func TestManifest(t *testing.T) {
	reg := newTestRegistry(t, false, nil)
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)

	tests := []struct {
		name    string
		digest  string
		want    []byte
		wantErr error
	}{
		{name: "by digest", digest: c.Digest, want: c.Manifest},
		{name: "missing", digest: "sha256:" + strings.Repeat("a", 64), wantErr: ErrNotFound},
		{name: "a tag is not a digest", digest: "1.0.0", wantErr: ErrInvalidReference},
		{name: "trailing newline", digest: c.Digest + "\n", wantErr: ErrInvalidReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reg.client.Manifest(context.Background(), reg.repo, tt.digest)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Manifest(%q): got error %v, want %v", tt.digest, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Manifest(%q): got -want +got:\n%s", tt.digest, diff)
			}
		})
	}
}

func TestLegacySignature(t *testing.T) {
	reg := newTestRegistry(t, false, nil)
	signed, unsigned := buildChart(t, "1.0.0"), buildChart(t, "2.0.0")
	reg.pushChart(t, signed)
	reg.pushChart(t, unsigned)
	sig := buildChart(t, "signature") // any manifest will do: the caller judges it
	sigDigest := reg.putManifest(t, fallbackTag(signed.Digest)+".sig", sig.Manifest, types.OCIManifestSchema1)

	tests := []struct {
		name       string
		digest     string
		want       []byte
		wantDigest string
		wantFound  bool
		wantErr    error
	}{
		{name: "found", digest: signed.Digest, want: sig.Manifest, wantDigest: sigDigest, wantFound: true},
		{name: "not found", digest: unsigned.Digest},
		{name: "invalid digest", digest: "sha256:ABC", wantErr: ErrInvalidReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotDigest, found, err := reg.client.LegacySignature(context.Background(), reg.repo, tt.digest)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LegacySignature: got error %v, want %v", err, tt.wantErr)
			}
			if found != tt.wantFound || gotDigest != tt.wantDigest {
				t.Errorf("LegacySignature: got found=%v digest=%q, want found=%v digest=%q", found, gotDigest, tt.wantFound, tt.wantDigest)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("LegacySignature: got -want +got:\n%s", diff)
			}
		})
	}
}

func TestBlob(t *testing.T) {
	reg := newTestRegistry(t, false, nil)
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)
	missing := descriptorOf([]byte("never pushed"), helmChartMediaType)
	uppercase := c.Layout.Chart
	uppercase.Digest.Hex = strings.ToUpper(uppercase.Digest.Hex)

	tests := []struct {
		name    string
		desc    v1.Descriptor
		max     int64
		want    []byte
		wantErr error
	}{
		{name: "chart layer", desc: c.Layout.Chart, max: limits.MaxChartLayerBytes, want: c.Archive},
		{name: "config", desc: c.Layout.Config, max: limits.MaxConfigBytes, want: c.Config},
		{name: "size over the cap", desc: c.Layout.Chart, max: c.Layout.Chart.Size - 1, wantErr: ErrLimitExceeded},
		{name: "missing", desc: missing, max: limits.MaxChartLayerBytes, wantErr: ErrNotFound},
		{name: "uppercase digest", desc: uppercase, max: limits.MaxChartLayerBytes, wantErr: ErrInvalidReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reg.client.Blob(context.Background(), reg.repo, tt.desc, tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Blob: got error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Blob: got -want +got:\n%s", diff)
			}
		})
	}
}

// TestPlainHTTPSessionsShareOneConnection: clients of a plain-HTTP registry
// that share a transport (one per reconcile, as the controller makes them)
// reuse one connection, and never open one for a TLS handshake the
// registry cannot answer (go-containerregistry pings HTTPS first, then
// falls back). The control is the same sessions over TLS.
func TestPlainHTTPSessionsShareOneConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain HTTP", false}, {"control: TLS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(registryHandler(false, nil))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			base := http.DefaultTransport.(*http.Transport)
			if tc.tls {
				srv.StartTLS()
				base = srv.Client().Transport.(*http.Transport)
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			reg := &testRegistry{srv: srv, repo: Repository{Registry: srv.Listener.Addr().String(), Path: "charts/demo"},
				push: []remote.Option{remote.WithTransport(base.Clone())}}
			reg.pushChart(t, buildChart(t, "1.0.0"))
			conns.Store(0)
			transport := base.Clone() // the controller's, shared by the sessions

			for i := range 3 {
				c := NewClient(Options{PlainHTTP: !tc.tls, Transport: transport})
				if _, err := c.Resolve(context.Background(), reg.repo, "1.0.0"); err != nil {
					t.Fatalf("session %d: %v", i, err)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("3 sessions opened %d connections; want 1", n)
			}
		})
	}
}
