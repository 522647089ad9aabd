package oci

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/strictjson"
)

const (
	configDigest = "sha256:b79606fb3afea5bd1609ed40b622142f1c98125abcfe89a76a661b0e8e343910"
	chartDigest  = "sha256:cc57fc1903e444cf6a726490b43b27ee9f87facc037f86872201847c565b45fb"
	provDigest   = "sha256:dd0c2c70261f62045ff1b8d639a29b945c4bf822d852f96f1d68ee9e05f3bbbc"
	ociManifest  = "application/vnd.oci.image.manifest.v1+json"
)

// desc writes a descriptor as JSON text, so that cases can hold what no Go
// struct would marshal.
func desc(mediaType, digest, size string, extra ...string) string {
	fields := append([]string{`"mediaType":"` + mediaType + `"`, `"digest":"` + digest + `"`, `"size":` + size}, extra...)
	return "{" + strings.Join(fields, ",") + "}"
}

// manifestJSON writes a manifest; mediaType "" leaves the field out, as Helm
// does.
func manifestJSON(mediaType, config string, layers ...string) string {
	mt := ""
	if mediaType != "" {
		mt = `"mediaType":"` + mediaType + `",`
	}
	return `{"schemaVersion":2,` + mt + `"config":` + config + `,"layers":[` + strings.Join(layers, ",") + `]}`
}

func TestParseChartManifest(t *testing.T) {
	config := desc(string(helmConfigMediaType), configDigest, "117")
	chart := desc(string(helmChartMediaType), chartDigest, "3716")
	legacy := desc(string(helmLegacyChartMediaType), chartDigest, "3716")
	prov := desc(string(helmProvenanceMediaType), provDigest, "1024")
	evil := desc(string(helmChartMediaType), provDigest, "3716")

	hash := func(s string) v1.Hash {
		h, err := v1.NewHash(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	wantConfig := v1.Descriptor{MediaType: helmConfigMediaType, Digest: hash(configDigest), Size: 117}
	wantChart := v1.Descriptor{MediaType: helmChartMediaType, Digest: hash(chartDigest), Size: 3716}
	wantLegacy := v1.Descriptor{MediaType: helmLegacyChartMediaType, Digest: hash(chartDigest), Size: 3716}
	wantProv := v1.Descriptor{MediaType: helmProvenanceMediaType, Digest: hash(provDigest), Size: 1024}
	nested := strings.Repeat("[", strictjson.MaxDepth+1) + strings.Repeat("]", strictjson.MaxDepth+1)

	tests := []struct {
		name    string
		raw     string
		want    ChartManifest
		wantErr error
	}{
		{name: "oci manifest", raw: manifestJSON(ociManifest, config, chart), want: ChartManifest{Config: wantConfig, Chart: wantChart}},
		{name: "without mediaType, as Helm pushes it", raw: manifestJSON("", config, chart), want: ChartManifest{Config: wantConfig, Chart: wantChart}},
		{name: "with provenance", raw: manifestJSON(ociManifest, config, chart, prov), want: ChartManifest{Config: wantConfig, Chart: wantChart, Provenance: &wantProv}},
		{name: "provenance first", raw: manifestJSON(ociManifest, config, prov, chart), want: ChartManifest{Config: wantConfig, Chart: wantChart, Provenance: &wantProv}},
		{name: "legacy chart layer", raw: manifestJSON(ociManifest, config, legacy), want: ChartManifest{Config: wantConfig, Chart: wantLegacy}},
		{name: "annotations and subject", raw: strings.TrimSuffix(manifestJSON(ociManifest, config, chart), "}") +
			`,"annotations":{"org.opencontainers.image.title":"demo"},"subject":` + desc(ociManifest, provDigest, "10") + "}",
			want: ChartManifest{Config: wantConfig, Chart: wantChart}},

		// REG-06: media-type confusion.
		{name: "index", raw: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + desc(ociManifest, chartDigest, "500") + `]}`, wantErr: ErrInvalidManifest},
		{name: "index without mediaType", raw: `{"schemaVersion":2,"manifests":[` + desc(ociManifest, chartDigest, "500") + `]}`, wantErr: ErrInvalidManifest},
		{name: "manifest with manifests", raw: strings.TrimSuffix(manifestJSON(ociManifest, config, chart), "}") + `,"manifests":[]}`, wantErr: ErrInvalidManifest},
		{name: "docker manifest list", raw: `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`, wantErr: ErrInvalidManifest},
		{name: "docker schema2 manifest", raw: manifestJSON("application/vnd.docker.distribution.manifest.v2+json", config, chart), wantErr: ErrInvalidManifest},
		{name: "docker schema1", raw: `{"schemaVersion":1,"name":"charts/demo","tag":"1.0.0","fsLayers":[],"signatures":[]}`, wantErr: ErrInvalidManifest},
		{name: "artifact manifest", raw: manifestJSON("application/vnd.oci.artifact.manifest.v1+json", config, chart), wantErr: ErrInvalidManifest},

		// REG-05: ambiguous layers.
		{name: "two chart layers", raw: manifestJSON(ociManifest, config, chart, evil), wantErr: ErrInvalidManifest},
		{name: "legacy and new chart layers", raw: manifestJSON(ociManifest, config, chart, legacy), wantErr: ErrInvalidManifest},
		{name: "two legacy chart layers", raw: manifestJSON(ociManifest, config, legacy, legacy), wantErr: ErrInvalidManifest},
		{name: "two provenance layers", raw: manifestJSON(ociManifest, config, chart, prov, prov), wantErr: ErrInvalidManifest},
		{name: "no chart layer", raw: manifestJSON(ociManifest, config, prov), wantErr: ErrInvalidManifest},
		{name: "no layers", raw: manifestJSON(ociManifest, config), wantErr: ErrInvalidManifest},
		{name: "unknown layer type", raw: manifestJSON(ociManifest, config, chart, desc("application/vnd.oci.image.layer.v1.tar+gzip", provDigest, "10")), wantErr: ErrInvalidManifest},
		{name: "layer without mediaType", raw: manifestJSON(ociManifest, config, chart, `{"digest":"`+provDigest+`","size":10}`), wantErr: ErrInvalidManifest},
		{name: "wrong config type", raw: manifestJSON(ociManifest, desc("application/vnd.oci.image.config.v1+json", configDigest, "117"), chart), wantErr: ErrInvalidManifest},
		{name: "no config", raw: `{"schemaVersion":2,"mediaType":"` + ociManifest + `","layers":[` + chart + `]}`, wantErr: ErrInvalidManifest},

		// BND-08: parser differentials.
		{name: "duplicate layers key", raw: `{"schemaVersion":2,"config":` + config + `,"layers":[` + chart + `],"layers":[` + evil + `]}`, wantErr: ErrInvalidManifest},
		{name: "duplicate key differing in case", raw: strings.TrimSuffix(manifestJSON(ociManifest, config, chart), "}") + `,"Layers":[` + evil + `]}`, wantErr: ErrInvalidManifest},
		{name: "duplicate key folded by encoding/json", raw: strings.TrimSuffix(manifestJSON(ociManifest, config, chart), "}") + `,"\u017fchemaVersion":1}`, wantErr: ErrInvalidManifest},
		{name: "duplicate digest in a descriptor", raw: manifestJSON(ociManifest, config, desc(string(helmChartMediaType), chartDigest, "3716", `"digest":"`+provDigest+`"`)), wantErr: ErrInvalidManifest},
		{name: "trailing object", raw: manifestJSON(ociManifest, config, chart) + "{}", wantErr: ErrInvalidManifest},
		{name: "trailing garbage", raw: manifestJSON(ociManifest, config, chart) + "x", wantErr: ErrInvalidManifest},
		{name: "nested too deeply", raw: strings.TrimSuffix(manifestJSON(ociManifest, config, chart), "}") + `,"x":` + nested + "}", wantErr: ErrInvalidManifest},
		{name: "not json", raw: "not json", wantErr: ErrInvalidManifest},
		{name: "empty", raw: "", wantErr: ErrInvalidManifest},

		// REG-07 and caps: descriptors.
		{name: "uppercase digest", raw: manifestJSON(ociManifest, config, desc(string(helmChartMediaType), strings.ToUpper(chartDigest), "3716")), wantErr: ErrInvalidManifest},
		{name: "sha512 digest", raw: manifestJSON(ociManifest, config, desc(string(helmChartMediaType), "sha512:"+strings.Repeat("a", 128), "3716")), wantErr: ErrInvalidManifest},
		{name: "zero size", raw: manifestJSON(ociManifest, config, desc(string(helmChartMediaType), chartDigest, "0")), wantErr: ErrInvalidManifest},
		{name: "negative size", raw: manifestJSON(ociManifest, config, desc(string(helmChartMediaType), chartDigest, "-1")), wantErr: ErrInvalidManifest},
		{name: "embedded data", raw: manifestJSON(ociManifest, config, desc(string(helmChartMediaType), chartDigest, "3716", `"data":"aGVsbG8="`)), wantErr: ErrInvalidManifest},
		{name: "foreign urls", raw: manifestJSON(ociManifest, config, desc(string(helmChartMediaType), chartDigest, "3716", `"urls":["https://evil.example/chart.tgz"]`)), wantErr: ErrInvalidManifest},
		{name: "chart layer over cap", raw: manifestJSON(ociManifest, config, desc(string(helmChartMediaType), chartDigest, "20971521")), wantErr: ErrLimitExceeded},
		{name: "config over cap", raw: manifestJSON(ociManifest, desc(string(helmConfigMediaType), configDigest, "1048577"), chart), wantErr: ErrLimitExceeded},
		{name: "provenance over cap", raw: manifestJSON(ociManifest, config, chart, desc(string(helmProvenanceMediaType), provDigest, "1048577")), wantErr: ErrLimitExceeded},
		{name: "manifest over cap", raw: manifestJSON(ociManifest, config, chart) + strings.Repeat(" ", limits.MaxManifestBytes), wantErr: ErrLimitExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChartManifest([]byte(tt.raw))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseChartManifest: got error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseChartManifest: got -want +got:\n%s", diff)
			}
		})
	}
}

// TestParseChartManifestTestdata accepts every seed in testdata, and a
// chart built the way the registry tests push it.
func TestParseChartManifestTestdata(t *testing.T) {
	for name, raw := range seeds(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseChartManifest(raw); err != nil {
				t.Errorf("ParseChartManifest: got error %v, want nil", err)
			}
		})
	}
	c := buildChart(t, "1.0.0")
	got, err := ParseChartManifest(c.Manifest)
	if err != nil {
		t.Fatalf("ParseChartManifest(built chart): got error %v, want nil", err)
	}
	if diff := cmp.Diff(c.Layout, got); diff != "" {
		t.Errorf("ParseChartManifest(built chart): got -want +got:\n%s", diff)
	}
}

func FuzzParseChartManifest(f *testing.F) {
	for _, raw := range seeds(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseChartManifest(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) && !errors.Is(err, ErrLimitExceeded) {
				t.Fatalf("got error %v, want one wrapping %v or %v", err, ErrInvalidManifest, ErrLimitExceeded)
			}
			return
		}
		// Whatever is accepted holds up.
		if got.Config.MediaType != helmConfigMediaType {
			t.Errorf("config mediaType: got %q, want %q", got.Config.MediaType, helmConfigMediaType)
		}
		if got.Chart.MediaType != helmChartMediaType && got.Chart.MediaType != helmLegacyChartMediaType {
			t.Errorf("chart mediaType: got %q, want a chart layer type", got.Chart.MediaType)
		}
		all := []v1.Descriptor{got.Config, got.Chart}
		if got.Provenance != nil {
			all = append(all, *got.Provenance)
		}
		for _, d := range all {
			if err := checkHash(d.Digest); err != nil {
				t.Errorf("accepted descriptor: %v", err)
			}
			if d.Size <= 0 || d.Size > limits.MaxChartLayerBytes {
				t.Errorf("accepted descriptor size %d", d.Size)
			}
		}
		if !bytes.Contains(raw, []byte(got.Chart.Digest.Hex)) {
			t.Errorf("chart digest %s not in the manifest", got.Chart.Digest)
		}
	})
}

// seeds reads the manifests in testdata.
func seeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("reading testdata: %v, %d files", err, len(paths))
	}
	out := map[string][]byte{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(p)] = raw
	}
	return out
}
