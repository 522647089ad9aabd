package gate_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// countingTransport counts the requests a verification sends.
type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// BenchmarkCheck is one whole verification on loopback, in process: resolve
// the tag, read the manifest, find and check the signatures (legacy layout,
// referrers API), judge. It reports the registry requests per verification.
// "attested" is "legacy" under a policy that also requires two
// attestations (issue 15): SLSA provenance signed by a builder key in
// cosign v2's .att tag, with a condition over its predicate, and an SBOM
// signed by the release key as a bundle referrer, whose condition joins
// the provenance's run. The "cached" cases run with a gate.Cache, as the manager does, after one
// verification filled it: what a release costs when another release of the
// same chart under the same policy was verified within the TTL.
func BenchmarkCheck(b *testing.B) {
	for _, name := range []string{"legacy", "bundle", "attested", "legacy-cached", "bundle-cached", "attested-cached"} {
		b.Run(name, func(b *testing.B) {
			// b.Run may call this more than once: derive, never reassign name.
			layout, cached := strings.CutSuffix(name, "-cached")
			var cache *gate.Cache
			if cached {
				cache = gate.NewCache(time.Hour)
			}
			reg := newRegistry(b, true)
			k, _ := testsign.NewKey("p256")
			digest := pushChart(b, reg, "charts/hello", "1.0.0")
			var err error
			if layout == "bundle" {
				err = attach(reg, "charts/hello", digest, k, false)
			} else {
				err = reg.SignLegacy("charts/hello", digest, digest, k)
			}
			if err != nil {
				b.Fatal(err)
			}
			p, v := compile(b, reg.Host, k)
			if layout == "attested" {
				p, v = attestTwice(b, reg, digest, k)
			}
			ct := &countingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
			req := gate.Request{URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v, Cache: cache}
			if cache != nil { // fill it
				if res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, req); !res.Verdict.Passed() {
					b.Fatalf("not verified: %s", res.Verdict.Message())
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				// A client per verification, as the controller and the CLI
				// use them: its session (ping, token) is part of the cost.
				client := oci.NewClient(oci.Options{PlainHTTP: true, Transport: ct})
				if res := gate.Check(context.Background(), client, nil, req); !res.Verdict.Passed() {
					b.Fatalf("not verified: %s", res.Verdict.Message())
				}
			}
			b.ReportMetric(float64(ct.n.Load())/float64(b.N), "requests/op")
		})
	}
}

// attestTwice attaches the provenance and the SBOM of BenchmarkCheck's
// "attested" case to digest, and compiles its policy.
func attestTwice(b *testing.B, reg testsign.Registry, digest string, release *testsign.Key) (*policy.Policy, *verify.Verifier) {
	builder, _ := testsign.NewKey("p256")
	prov := testsign.AttestationStatement(slsaV1, githubProvenance(goodRepo, goodRef, goodBuilder), reg.Host+"/charts/hello", digest)
	env, err := testsign.DSSEEnvelope(prov, builder)
	if err != nil {
		b.Fatal(err)
	}
	if err := reg.AttachLegacyAttestation("charts/hello", digest, env, slsaV1); err != nil {
		b.Fatal(err)
	}
	sbom := testsign.AttestationStatement(spdxType, `{"spdxVersion":"SPDX-2.3","creationInfo":{"comment":"`+goodRepo+`/actions/runs/1/attempts/1"}}`, reg.Host+"/charts/hello", digest)
	bundle, err := testsign.Bundle(sbom, release)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := reg.AttachBundleAs("charts/hello", digest, bundle, spdxType, false); err != nil {
		b.Fatal(err)
	}
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{reg.Host + "/charts/**"},
		Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: release.PublicPEM()}}},
		Attestations: []chartproofv1.AttestationRequirement{
			{Name: "provenance", PredicateType: slsaV1, Condition: provenanceCondition,
				Authorities: []chartproofv1.Authority{{Name: "builder", Key: &chartproofv1.KeyAuthority{PublicKey: builder.PublicPEM()}}}},
			{Name: "sbom", PredicateType: spdxType,
				Condition: `predicate.creationInfo.comment == attestations.provenance.predicate.runDetails.metadata.invocationId`},
		},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.ForPolicy(p)
	if err != nil {
		b.Fatal(err)
	}
	return p, v
}
