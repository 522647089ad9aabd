package gate_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/testsign"
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
// The "cached" cases run with a gate.Cache, as the manager does, after one
// verification filled it: what a release costs when another release of the
// same chart under the same policy was verified within the TTL.
func BenchmarkCheck(b *testing.B) {
	for _, name := range []string{"legacy", "bundle", "legacy-cached", "bundle-cached"} {
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
			if layout == "legacy" {
				err = reg.SignLegacy("charts/hello", digest, digest, k)
			} else {
				err = attach(reg, "charts/hello", digest, k, false)
			}
			if err != nil {
				b.Fatal(err)
			}
			p, v := compile(b, reg.Host, k)
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
