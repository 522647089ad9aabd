package gate_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

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
func BenchmarkCheck(b *testing.B) {
	for _, layout := range []string{"legacy", "bundle"} {
		b.Run(layout, func(b *testing.B) {
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
			req := gate.Request{URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v}
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
