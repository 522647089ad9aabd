package oci

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/strictjson"
)

// Helm's media types (helm.sh/helm/v3/pkg/registry/constants.go).
const (
	helmConfigMediaType      types.MediaType = "application/vnd.cncf.helm.config.v1+json"
	helmChartMediaType       types.MediaType = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	helmLegacyChartMediaType types.MediaType = "application/tar+gzip"
	helmProvenanceMediaType  types.MediaType = "application/vnd.cncf.helm.chart.provenance.v1.prov"
)

// ChartManifest is a Helm chart manifest that passed the shape checks.
type ChartManifest struct {
	Config     v1.Descriptor
	Chart      v1.Descriptor
	Provenance *v1.Descriptor
}

// ParseChartManifest checks that raw is a Helm chart manifest whose meaning
// is the same for every reader, Helm included:
//
//   - JSON decoded strictly: no duplicate keys (nor keys differing only in
//     case, which encoding/json conflates), no data after the value;
//   - an OCI image manifest: schemaVersion 2, mediaType
//     application/vnd.oci.image.manifest.v1+json, and no "manifests" field.
//     The mediaType may be absent, because Helm itself does not write it;
//     an index, a Docker manifest or list, or schema1 is refused;
//   - exactly one config, of the Helm config type;
//   - exactly one chart layer, of the Helm type or the legacy
//     application/tar+gzip, not both; Helm would install the last one;
//   - at most one provenance layer, and no layer of any other type;
//   - every descriptor with a canonical sha256 digest, a size above zero and
//     within its cap, and neither embedded data nor foreign URLs.
func ParseChartManifest(raw []byte) (ChartManifest, error) {
	if len(raw) > limits.MaxManifestBytes {
		return ChartManifest{}, fmt.Errorf("%w: chart manifest of %d bytes, cap %d", ErrLimitExceeded, len(raw), limits.MaxManifestBytes)
	}
	if err := strictjson.Check(raw); err != nil {
		return ChartManifest{}, fmt.Errorf("%w: chart manifest: %v", ErrInvalidManifest, err)
	}
	var m struct {
		v1.Manifest
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return ChartManifest{}, fmt.Errorf("%w: chart manifest: %v", ErrInvalidManifest, err)
	}
	switch {
	case m.SchemaVersion != 2:
		return ChartManifest{}, fmt.Errorf("%w: chart manifest: schemaVersion %d, want 2", ErrInvalidManifest, m.SchemaVersion)
	case m.MediaType != "" && m.MediaType != types.OCIManifestSchema1:
		return ChartManifest{}, fmt.Errorf("%w: chart manifest: mediaType %q, want %s", ErrInvalidManifest, m.MediaType, types.OCIManifestSchema1)
	case m.Manifests != nil:
		return ChartManifest{}, fmt.Errorf("%w: chart manifest: has a \"manifests\" field, as an index does", ErrInvalidManifest)
	case m.Config.MediaType != helmConfigMediaType:
		return ChartManifest{}, fmt.Errorf("%w: chart manifest: config mediaType %q, want %s", ErrInvalidManifest, m.Config.MediaType, helmConfigMediaType)
	}
	if err := checkDescriptor("config", m.Config, limits.MaxConfigBytes); err != nil {
		return ChartManifest{}, err
	}

	cm := ChartManifest{Config: m.Config}
	var charts, provenances int
	for i, layer := range m.Layers {
		what := fmt.Sprintf("layer %d", i)
		switch layer.MediaType {
		case helmChartMediaType, helmLegacyChartMediaType:
			if err := checkDescriptor(what, layer, limits.MaxChartLayerBytes); err != nil {
				return ChartManifest{}, err
			}
			charts++
			cm.Chart = layer
		case helmProvenanceMediaType:
			if err := checkDescriptor(what, layer, limits.MaxProvenanceBytes); err != nil {
				return ChartManifest{}, err
			}
			provenances++
			cm.Provenance = &layer
		default:
			return ChartManifest{}, fmt.Errorf("%w: chart manifest: %s has mediaType %q, not a Helm chart or provenance layer", ErrInvalidManifest, what, layer.MediaType)
		}
	}
	if charts != 1 {
		return ChartManifest{}, fmt.Errorf("%w: chart manifest: %d chart layers (%s or %s), want exactly 1", ErrInvalidManifest, charts, helmChartMediaType, helmLegacyChartMediaType)
	}
	if provenances > 1 {
		return ChartManifest{}, fmt.Errorf("%w: chart manifest: %d provenance layers, want at most 1", ErrInvalidManifest, provenances)
	}
	return cm, nil
}

// checkDescriptor checks the digest, size and plain form of one descriptor
// of a chart manifest.
func checkDescriptor(what string, d v1.Descriptor, max int64) error {
	switch {
	case checkHash(d.Digest) != nil:
		return fmt.Errorf("%w: chart manifest: %s digest %q, want sha256:<64 lowercase hex>", ErrInvalidManifest, what, d.Digest)
	case d.Size <= 0:
		return fmt.Errorf("%w: chart manifest: %s size %d, want more than 0", ErrInvalidManifest, what, d.Size)
	case d.Size > max:
		return fmt.Errorf("%w: chart manifest: %s size %d, cap %d", ErrLimitExceeded, what, d.Size, max)
	case d.Data != nil || d.URLs != nil:
		return fmt.Errorf("%w: chart manifest: %s has embedded data or foreign URLs", ErrInvalidManifest, what)
	}
	return nil
}
