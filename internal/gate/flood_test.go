package gate_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/testsign"
)

// The flood tests push, before the trusted signature, what anyone with push
// rights to the repository can push: signatures by keys no policy trusts,
// layers that are not signatures, attestations. A flood must not keep the
// trusted signature from counting, within the caps (THREATS DOS, issue 10);
// beyond them, the verdict is a refusal, never an allow. Each case has its
// twin without the flood.

const floodSize = 40 // more than the 32 that one shared budget allowed

// untrustedKeys are keys no policy of these tests trusts.
func untrustedKeys(t *testing.T, n int) []*testsign.Key {
	t.Helper()
	keys := make([]*testsign.Key, n)
	for i := range keys {
		k, err := testsign.NewKey("p256")
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	return keys
}

// pushLegacy writes the legacy .sig manifest of digest with layers, in
// order, at once (as a flood followed by cosign's append leaves it).
func pushLegacy(t *testing.T, reg testsign.Registry, repo, digest string, layers []testsign.Blob) {
	t.Helper()
	tag := strings.Replace(digest, ":", "-", 1) + ".sig"
	if _, err := reg.PushManifest(repo, tag, testsign.Manifest{
		Config: testsign.Blob{MediaType: "application/vnd.oci.image.config.v1+json", Data: []byte(`{}`)},
		Layers: layers,
	}); err != nil {
		t.Fatal(err)
	}
}

// legacyLayer is a legacy signature layer over digest's payload by k.
func legacyLayer(t *testing.T, reg testsign.Registry, repo, digest string, k *testsign.Key) testsign.Blob {
	t.Helper()
	payload := testsign.SimpleSigningPayload(reg.Host+"/"+repo, digest)
	sig, err := k.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return testsign.Blob{MediaType: testsign.SimpleSigningMediaType, Data: payload, Annotations: map[string]string{
		"dev.cosignproject.cosign/signature": b64(sig),
	}}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// listReferrers pushes each bundle in a referrer manifest whose subject is
// subject and lists them, in order, in the referrers fallback tag of
// listedUnder (normally subject itself; anyone who can push a tag can list
// any manifest there). predicateTypes[i], when set, is the annotation
// cosign writes on what it attaches. The index is written last, over what
// go-containerregistry's client keeps in that tag as it pushes, so that its
// order is this one.
func listReferrers(t *testing.T, reg testsign.Registry, repo, listedUnder, subject string, bundles [][]byte, predicateTypes []string) {
	t.Helper()
	sub := descriptor(t, reg, repo, subject)
	var entries []v1.Descriptor
	for i, b := range bundles {
		predicateType := predicateTypes[i]
		m := testsign.Manifest{
			ArtifactType: testsign.BundleMediaType,
			Config:       testsign.Blob{MediaType: "application/vnd.oci.empty.v1+json", Data: []byte("{}")},
			Layers:       []testsign.Blob{{MediaType: testsign.BundleMediaType, Data: b}},
			Subject:      &sub,
		}
		if predicateType != "" {
			m.Annotations = map[string]string{"dev.sigstore.bundle.predicateType": predicateType}
		}
		d, err := reg.PushManifest(repo, "", m)
		if err != nil {
			t.Fatal(err)
		}
		e := descriptor(t, reg, repo, d)
		e.ArtifactType, e.Annotations = testsign.BundleMediaType, m.Annotations
		entries = append(entries, e)
	}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: entries})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.PutRaw(repo, strings.Replace(listedUnder, ":", "-", 1), types.OCIImageIndex, index); err != nil {
		t.Fatal(err)
	}
}

// attestation is a bundle of an in-toto statement of another predicate
// than cosign's signing one, over digest, by k.
func attestation(t *testing.T, reg testsign.Registry, repo, digest string, k *testsign.Key) []byte {
	t.Helper()
	st := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`,
		reg.Host+"/"+repo, strings.TrimPrefix(digest, "sha256:"))
	b, err := testsign.Bundle([]byte(st), k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// floodCase builds, on a registry without the referrers API (so that the
// fallback tag's order is the listing's), a chart with n flood entries
// listed before one trusted signature, and checks it under a policy
// trusting key.
type floodCase struct {
	name string
	// legacy and referrers return the layers and bundles to push for a
	// flood of n; trusted is appended last, to the legacy manifest or to
	// the referrers.
	legacy    func(t *testing.T, reg testsign.Registry, digest string, n int) []testsign.Blob
	referrers func(t *testing.T, reg testsign.Registry, digest string, n int) [][]byte
	// predicateType annotates the flood's referrers ("" for none).
	predicateType  string
	trustedReferer bool
}

func (c floodCase) check(t *testing.T, n int) gate.Result {
	t.Helper()
	reg := newRegistry(t, false)
	key, _ := testsign.NewKey("p256")
	digest := pushChart(t, reg, "charts/hello", "1.0.0")
	var layers []testsign.Blob
	var bundles [][]byte
	if c.legacy != nil {
		layers = c.legacy(t, reg, digest, n)
	}
	if c.referrers != nil {
		bundles = c.referrers(t, reg, digest, n)
	}
	predicateTypes := make([]string, len(bundles))
	for i := range predicateTypes {
		predicateTypes[i] = c.predicateType
	}
	if c.trustedReferer {
		bundles = append(bundles, bundleFor(t, reg, "charts/hello", digest, key))
		predicateTypes = append(predicateTypes, "https://sigstore.dev/cosign/sign/v1")
	} else {
		layers = append(layers, legacyLayer(t, reg, "charts/hello", digest, key))
	}
	if len(layers) > 0 {
		pushLegacy(t, reg, "charts/hello", digest, layers)
	}
	if len(bundles) > 0 {
		listReferrers(t, reg, "charts/hello", digest, digest, bundles, predicateTypes)
	}
	p, v := compile(t, reg.Host, key)
	return gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
		URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
	})
}

var (
	untrustedLegacy = func(t *testing.T, reg testsign.Registry, digest string, n int) []testsign.Blob {
		var out []testsign.Blob
		for _, k := range untrustedKeys(t, n) {
			out = append(out, legacyLayer(t, reg, "charts/hello", digest, k))
		}
		return out
	}
	junkLayers = func(t *testing.T, reg testsign.Registry, digest string, n int) []testsign.Blob {
		var out []testsign.Blob
		for i := range n {
			out = append(out, testsign.Blob{MediaType: "application/octet-stream", Data: []byte(fmt.Sprintf("junk %d", i))})
		}
		return out
	}
	untrustedBundles = func(t *testing.T, reg testsign.Registry, digest string, n int) [][]byte {
		var out [][]byte
		for _, k := range untrustedKeys(t, n) {
			out = append(out, bundleFor(t, reg, "charts/hello", digest, k))
		}
		return out
	}
	attestations = func(t *testing.T, reg testsign.Registry, digest string, n int) [][]byte {
		var out [][]byte
		for _, k := range untrustedKeys(t, n) {
			out = append(out, attestation(t, reg, "charts/hello", digest, k))
		}
		return out
	}
)

// TestFloodDoesNotHideTrustedSignature: floods of 40, in either layout,
// before a trusted signature in either layout: it counts. The twin has no
// flood.
func TestFloodDoesNotHideTrustedSignature(t *testing.T) {
	cases := []floodCase{
		{name: "untrusted legacy signatures, trusted legacy", legacy: untrustedLegacy},
		{name: "junk legacy layers, trusted legacy", legacy: junkLayers},
		{name: "untrusted bundles, trusted bundle", referrers: untrustedBundles, predicateType: "https://sigstore.dev/cosign/sign/v1", trustedReferer: true},
		{name: "attestations, trusted bundle", referrers: attestations, predicateType: "https://slsa.dev/provenance/v1", trustedReferer: true},
		{name: "attestations without annotation, trusted bundle", referrers: attestations, trustedReferer: true},
		{name: "untrusted legacy signatures, trusted bundle", legacy: untrustedLegacy, trustedReferer: true},
		{name: "untrusted bundles, trusted legacy", referrers: untrustedBundles},
	}
	for _, c := range cases {
		for _, n := range []int{floodSize, 0} {
			t.Run(fmt.Sprintf("%s/flood %d", c.name, n), func(t *testing.T) {
				res := c.check(t, n)
				if !res.Verdict.Passed() {
					t.Fatalf("verdict %s: %s; want Verified", res.Verdict.Code(), res.Verdict.Message())
				}
			})
		}
	}
}

// TestFloodBeyondCaps: the caps are where a flood starts to hide a trusted
// signature, and there the verdict is a refusal. Listing: with
// limits.MaxLegacySignatures junk layers, or limits.MaxReferrers untrusted
// bundles, before it, the trusted signature is not read; one fewer, and it
// counts. Cryptographic checks: legacy signatures carry no key hint, so
// limits.MaxSignatureChecks untrusted ones before the trusted one use up
// the checks; more than that many bundles whose key hint names an
// untrusted key do not delay the trusted one, whose hint names its key
// (checked first); the same flood without hints does.
func TestFloodBeyondCaps(t *testing.T) {
	legacy := floodCase{legacy: untrustedLegacy}
	junk := floodCase{legacy: junkLayers}
	hinted := floodCase{referrers: junkLegacyFreeBundles(true), trustedReferer: true}
	unhinted := floodCase{referrers: junkLegacyFreeBundles(false), trustedReferer: true}
	for _, tc := range []struct {
		name string
		c    floodCase
		n    int
		want string
	}{
		// A legacy signature has no key hint: every one is checked, in order.
		{"legacy signatures under the check cap", legacy, limits.MaxSignatureChecks - 1, chartproofv1.ReasonVerified},
		{"legacy signatures at the check cap", legacy, limits.MaxSignatureChecks, chartproofv1.ReasonUntrustedSigner},
		// Layers that are not signatures cost no check, only the listing.
		{"junk layers under the listing cap", junk, limits.MaxLegacySignatures - 1, chartproofv1.ReasonVerified},
		{"junk layers at the listing cap", junk, limits.MaxLegacySignatures, chartproofv1.ReasonMalformedSignature},
		{"referrers under the listing cap", hinted, limits.MaxReferrers - 1, chartproofv1.ReasonVerified},
		{"referrers at the listing cap", hinted, limits.MaxReferrers, chartproofv1.ReasonUntrustedSigner},
		{"hinted flood over the check cap", hinted, limits.MaxSignatureChecks + 10, chartproofv1.ReasonVerified},
		{"unhinted flood over the check cap", unhinted, limits.MaxSignatureChecks + 10, chartproofv1.ReasonUntrustedSigner},
		{"control: unhinted flood within the check cap", unhinted, limits.MaxSignatureChecks - 1, chartproofv1.ReasonVerified},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.check(t, tc.n).Verdict; got.Code() != tc.want {
				t.Errorf("verdict %s: %s; want %s", got.Code(), got.Message(), tc.want)
			}
		})
	}
}

// junkLegacyFreeBundles floods with bundles by untrusted keys, carrying
// their own key's hint or none.
func junkLegacyFreeBundles(hinted bool) func(t *testing.T, reg testsign.Registry, digest string, n int) [][]byte {
	return func(t *testing.T, reg testsign.Registry, digest string, n int) [][]byte {
		k := untrustedKeys(t, 1)[0] // one key: signing is not what is tested
		var out [][]byte
		for i := range n {
			// Distinct statements, so that every bundle is its own referrer.
			st := testsign.Statement(fmt.Sprintf("%s/charts/hello-%d", reg.Host, i), digest)
			b, err := testsign.Bundle(st, k)
			if err != nil {
				t.Fatal(err)
			}
			if !hinted {
				b = dropHint(t, b)
			}
			out = append(out, b)
		}
		return out
	}
}

// dropHint removes the public key hint of a bundle.
func dropHint(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	vm := m["verificationMaterial"].(map[string]any)
	vm["publicKey"] = map[string]any{}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
