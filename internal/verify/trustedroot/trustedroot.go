// Package trustedroot holds the Sigstore public-good trusted root that
// chartproof ships, so a keyless authority without a trustedRoot of its own
// verifies offline. The file is sigstore-go v1.3.0's
// examples/trusted-root-public-good.json, byte for byte; PublicGoodSHA256
// pins it, and docs/policy-keyless.md says how to refresh it.
package trustedroot

import (
	_ "embed" // the public-good trusted root
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// PublicGoodSHA256 is the lowercase hex sha256 of PublicGoodJSON. A test
// fails when the embedded file does not hash to it.
const PublicGoodSHA256 = "4364d7724c04cc912ce2a6c45ed2610e8d8d1c4dc857fb500292738d4d9c8d2c"

// PublicGoodSource names the embedded root in messages and evidence.
const PublicGoodSource = "sigstore-public-good (embedded, sha256:" + PublicGoodSHA256 + ")"

//go:embed public-good.json
var publicGoodJSON []byte

// PublicGoodJSON returns a copy of the embedded trusted_root.json.
func PublicGoodJSON() []byte {
	return append([]byte(nil), publicGoodJSON...)
}

// PublicGood parses the embedded trusted root. Each call returns a new
// value; callers build their verifiers from it once.
func PublicGood() (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(publicGoodJSON)
	if err != nil {
		return nil, fmt.Errorf("trustedroot: public-good: %w", err)
	}
	return tr, nil
}
