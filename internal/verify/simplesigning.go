package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/strictjson"
)

// SimpleSigningType is the "critical.type" of a cosign signature payload.
const SimpleSigningType = "cosign container image signature"

// parseSimpleSigning reads the digest a cosign simple-signing payload names.
// The payload is signed, so it is decoded strictly: exact key names (Go's
// encoding/json matches keys case-insensitively), no duplicate keys, no
// unknown fields in "critical", nothing after the object. A payload two
// parsers could read differently is refused.
func parseSimpleSigning(payload []byte) (string, error) {
	if err := strictjson.Check(payload); err != nil {
		return "", fmt.Errorf("simple-signing payload: %w", err)
	}
	var p struct {
		Critical *struct {
			Identity *struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image *struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
		Optional map[string]any `json:"optional"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return "", fmt.Errorf("simple-signing payload: %w", err)
	}
	switch {
	case p.Critical == nil || p.Critical.Image == nil:
		return "", errors.New("simple-signing payload: no critical.image")
	case p.Critical.Type != SimpleSigningType:
		return "", fmt.Errorf("simple-signing payload: type %q, want %q", p.Critical.Type, SimpleSigningType)
	case !policy.CanonicalDigest(p.Critical.Image.DockerManifestDigest):
		return "", fmt.Errorf("simple-signing payload: docker-manifest-digest %q is not a canonical sha256 digest", p.Critical.Image.DockerManifestDigest)
	}
	return p.Critical.Image.DockerManifestDigest, nil
}
