package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// floodOf pushes n signatures or attestations by keys nobody trusts for
// digest: what anyone with push rights to the repository can add.
type floodOf func(t *testing.T, reg testsign.Registry, digest string, n int, referrersAPI bool)

func untrustedKey(t *testing.T) *testsign.Key {
	t.Helper()
	k, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	floodLegacy floodOf = func(t *testing.T, reg testsign.Registry, digest string, n int, _ bool) {
		for range n {
			if err := reg.SignLegacy(chartRepo, digest, digest, untrustedKey(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	floodBundles floodOf = func(t *testing.T, reg testsign.Registry, digest string, n int, referrersAPI bool) {
		for range n {
			b, err := testsign.Bundle(testsign.Statement(reg.Host+"/"+chartRepo, digest), untrustedKey(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.AttachBundle(chartRepo, digest, b, !referrersAPI); err != nil {
				t.Fatal(err)
			}
		}
	}
	floodAttestations floodOf = func(t *testing.T, reg testsign.Registry, digest string, n int, referrersAPI bool) {
		for range n {
			st := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`,
				reg.Host+"/"+chartRepo, strings.TrimPrefix(digest, "sha256:"))
			b, err := testsign.Bundle([]byte(st), untrustedKey(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.AttachBundle(chartRepo, digest, b, !referrersAPI); err != nil {
				t.Fatal(err)
			}
		}
	}
)

// TestCosignFlood (issue 10, "no starvation"): 32 untrusted legacy
// signatures, 32 untrusted bundles or 32 attestations are pushed before the
// real cosign signs the chart. cosign verifies it, and so does `chartproof
// verify`: a flood does not hide the trusted signature. With one budget for
// both layouts, capped before it was filtered, the legacy floods did (the
// bundle cases depend on the order in which the registry lists referrers;
// internal/gate.TestFloodDoesNotHideTrustedSignature fixes that order).
// Each case has its twin without the flood.
func TestCosignFlood(t *testing.T) {
	const flood = 32
	v3Flags := []string{"--signing-config", "$S", "--trusted-root", "$R"}
	cases := []struct {
		name              string
		v3                bool
		referrersRegistry bool
		signFlags         []string
		flood             floodOf
	}{
		{name: "untrusted legacy signatures, then cosign v2 legacy", signFlags: []string{"--tlog-upload=false"}, flood: floodLegacy},
		{name: "untrusted bundles, then cosign v3 bundle in the referrers tag", v3: true, signFlags: v3Flags, flood: floodBundles},
		{name: "untrusted bundles, then cosign v3 bundle through the referrers API", v3: true, referrersRegistry: true, signFlags: v3Flags, flood: floodBundles},
		{name: "attestations, then cosign v3 bundle through the referrers API", v3: true, referrersRegistry: true, signFlags: v3Flags, flood: floodAttestations},
		{name: "untrusted legacy signatures, then cosign v3 bundle", v3: true, signFlags: v3Flags, flood: floodLegacy},
	}
	for _, tc := range cases {
		for _, n := range []int{flood, 0} {
			t.Run(fmt.Sprintf("%s/flood %d", tc.name, n), func(t *testing.T) {
				t.Parallel()
				host := startRegistryFor(t, tc.referrersRegistry)
				digest := pushChart(t, host, chartRepo, chartVersion)
				tc.flood(t, testsign.Registry{Host: host}, digest, n, tc.referrersRegistry)

				signer := newCosign(t, tools.cosignV2, false)
				if tc.v3 {
					signer = newCosign(t, tools.cosignV3, true)
				}
				key, pub := signer.generateKeyPair("signer")
				ref := host + "/" + chartRepo + "@" + digest
				args := []string{"sign", "--key", key}
				for _, f := range tc.signFlags {
					args = append(args, strings.NewReplacer("$S", signer.signingConfig, "$R", signer.trustedRoot).Replace(f))
				}
				signer.mustRun(append(args, "--allow-http-registry", "--yes", ref)...)

				vargs := []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry"}
				if tc.v3 {
					vargs = append(vargs, "--trusted-root", signer.trustedRoot)
				}
				if res := signer.run(append(vargs, ref)...); res.code != 0 {
					t.Fatalf("cosign verify %s: %s; want exit 0 (the reference accepts it)", ref, res)
				}
				pemText, _ := readPublicKey(t, pub)
				res, out := chartproofVerify(t, "oci://"+ref, writePolicyFile(t, host+"/"+chartRepo, pemText))
				if res.code != 0 || !out.Passed {
					t.Errorf("chartproof verify after a flood of %d: %s; want allowed, as cosign", n, res)
				}
			})
		}
	}
}

// startRegistryFor starts go-containerregistry's registry with the
// referrers API, or the distribution registry (without it).
func startRegistryFor(t *testing.T, referrersAPI bool) string {
	t.Helper()
	if referrersAPI {
		return startReferrersRegistry(t)
	}
	return startRegistry(t).Host
}

// TestReferrersEndpointRefused (issue 10, "referrers fallback"): a proxy in
// front of the registry answers the referrers endpoint with 400 or 405, as
// proxies and registries without the API do. A chart that cosign v2 signed
// (legacy layout) still verifies with `chartproof verify`, as with cosign:
// the registry is taken to have no referrers API, not to be down. The twin,
// 503, is an outage: inconclusive (RegistryUnavailable).
func TestReferrersEndpointRefused(t *testing.T) {
	host := startRegistry(t).Host
	digest := pushChart(t, host, chartRepo, chartVersion)
	signer := newCosign(t, tools.cosignV2, false)
	key, pub := signer.generateKeyPair("signer")
	signer.mustRun("sign", "--key", key, "--tlog-upload=false", "--allow-http-registry", "--yes", host+"/"+chartRepo+"@"+digest)
	pemText, _ := readPublicKey(t, pub)

	for _, tc := range []struct {
		status   int
		wantCode int
		wantWhy  string
	}{
		{status: http.StatusBadRequest, wantCode: 0},
		{status: http.StatusMethodNotAllowed, wantCode: 0},
		{status: http.StatusServiceUnavailable, wantCode: 3, wantWhy: chartproofv1.ReasonRegistryUnavailable}, // inconclusive
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			target, err := url.Parse("http://" + host)
			if err != nil {
				t.Fatal(err)
			}
			upstream := httputil.NewSingleHostReverseProxy(target)
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/referrers/") {
					http.Error(w, "no", tc.status)
					return
				}
				upstream.ServeHTTP(w, r)
			}))
			t.Cleanup(proxy.Close)
			via := strings.TrimPrefix(proxy.URL, "http://")
			res, out := chartproofVerify(t, "oci://"+via+"/"+chartRepo+"@"+digest, writePolicyFile(t, via+"/"+chartRepo, pemText))
			if res.code != tc.wantCode || (tc.wantWhy != "" && (!out.Inconclusive || out.codes()[0] != tc.wantWhy)) {
				t.Errorf("chartproof verify through a proxy answering %d on the referrers path: %s; want exit %d %s", tc.status, res, tc.wantCode, tc.wantWhy)
			}
		})
	}
}
