package gate_test

import (
	"context"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	clocktesting "k8s.io/utils/clock/testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// countingRegistry is go-containerregistry's registry on loopback, counting
// the requests for signatures (anything but the chart's own manifest tag)
// and for blobs.
type countingRegistry struct {
	testsign.Registry
	mu                   sync.Mutex
	signatureReqs, blobs int
	byDigest             int // manifests read by digest
}

func newCountingRegistry(t *testing.T) *countingRegistry {
	t.Helper()
	c := &countingRegistry{}
	handler := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		switch {
		case strings.Contains(r.URL.Path, "/blobs/"):
			c.blobs++
		case strings.Contains(r.URL.Path, "/referrers/"), strings.Contains(r.URL.Path, "/manifests/sha256-"):
			c.signatureReqs++
		case strings.Contains(r.URL.Path, "/manifests/sha256:"):
			c.byDigest++
		}
		c.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.Registry = testsign.Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
	return c
}

func (c *countingRegistry) take() (signatureReqs, blobs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, b := c.signatureReqs, c.blobs
	c.signatureReqs, c.blobs, c.byDigest = 0, 0, 0
	return s, b
}

func (c *countingRegistry) manifestsByDigest() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byDigest
}

// TestCacheSkipsSignatureReads checks what a Cache saves and when it must
// not: a second verification of the same digest under the same policy
// reads no signature (and a second chart load no blob), while a policy
// with any other trust material, a refusal, and an expired entry are all
// read again. The tag is resolved every time.
func TestCacheSkipsSignatureReads(t *testing.T) {
	reg := newCountingRegistry(t)
	k, _ := testsign.NewKey("p256")
	other, _ := testsign.NewKey("p256")
	d := pushChart(t, reg.Registry, "charts/hello", "1.0.0")
	if err := reg.SignLegacy("charts/hello", d, d, k); err != nil {
		t.Fatal(err)
	}
	p, v := compile(t, reg.Host, k)
	clk := clocktesting.NewFakePassiveClock(time.Now())
	cache := gate.NewCacheWithClock(5*time.Minute, clk)
	lookups := &lookupCounter{}
	cache.Lookups = lookups
	client := oci.NewClient(oci.Options{PlainHTTP: true})
	check := func(p *policy.Policy, v *verify.Verifier) gate.Result {
		t.Helper()
		res := gate.Check(context.Background(), client, nil, gate.Request{
			URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v, Cache: cache,
		})
		return res
	}
	reg.take()

	first := check(p, v)
	if !first.Verdict.Passed() || first.Cached {
		t.Fatalf("first check: passed %v cached %v (%s); want passed, read from the registry", first.Verdict.Passed(), first.Cached, first.Verdict.Message())
	}
	if sigs, _ := reg.take(); sigs == 0 {
		t.Fatal("first check read no signature: the counter is broken")
	}
	if loaded := gate.Load(context.Background(), client, nil, first); loaded.Chart == nil {
		t.Fatalf("Load: %s", loaded.Verdict.Message())
	}
	if _, blobs := reg.take(); blobs == 0 {
		t.Fatal("first load read no blob: the counter is broken")
	}
	firstLookups := lookups.take()
	// One miss for the signatures, one per blob the signature needed read
	// by digest (its layer) and one per chart blob (layer and config).
	if want := map[string]int{"signatures miss": 1, "reads miss": 1, "charts miss": 2}; !maps.Equal(firstLookups, want) {
		t.Fatalf("first check and load counted lookups %v, want %v", firstLookups, want)
	}

	second := check(p, v)
	if !second.Verdict.Passed() || !second.Cached || second.Digest != d {
		t.Fatalf("second check: passed %v cached %v digest %s; want passed from the cache, %s", second.Verdict.Passed(), second.Cached, second.Digest, d)
	}
	if loaded := gate.Load(context.Background(), client, nil, second); loaded.Chart == nil {
		t.Fatalf("Load from the cache: %s", loaded.Verdict.Message())
	}
	if sigs, blobs := reg.take(); sigs != 0 || blobs != 0 {
		t.Errorf("second check and load: %d signature and %d blob requests, want none", sigs, blobs)
	}
	if got, want := lookups.take(), map[string]int{"signatures hit": 1, "charts hit": 2}; !maps.Equal(got, want) {
		t.Errorf("second check and load counted lookups %v, want %v", got, want)
	}

	// The same name with another key: another fingerprint, read again, and
	// refused. Signatures behind a refusal are kept only for
	// gate.RefusedEvidenceTTL.
	otherP, otherV := compile(t, reg.Host, other)
	if otherP.Fingerprint == p.Fingerprint {
		t.Fatal("two policies with different keys share a fingerprint")
	}
	for i, step := range []struct {
		after  time.Duration
		cached bool
	}{{0, false}, {gate.RefusedEvidenceTTL - time.Millisecond, true}, {2 * time.Millisecond, false}} {
		clk.SetTime(clk.Now().Add(step.after))
		res := check(otherP, otherV)
		if res.Verdict.Code() != chartproofv1.ReasonUntrustedSigner || res.Cached != step.cached {
			t.Fatalf("other key, check %d: %s cached %v; want %s, cached %v", i, res.Verdict.Code(), res.Cached, chartproofv1.ReasonUntrustedSigner, step.cached)
		}
		if sigs, _ := reg.take(); (sigs == 0) != step.cached {
			t.Fatalf("other key, check %d: %d signature requests; cached %v", i, sigs, step.cached)
		}
	}

	// Past the TTL, read again.
	clk.SetTime(clk.Now().Add(5*time.Minute + time.Second))
	if res := check(p, v); !res.Verdict.Passed() || res.Cached {
		t.Fatalf("after the TTL: passed %v cached %v; want passed, read again", res.Verdict.Passed(), res.Cached)
	}
	if sigs, _ := reg.take(); sigs == 0 {
		t.Error("after the TTL: no signature read")
	}
}

// TestCacheRefusalReadsLookupsAgain: signatures behind a refusal are kept
// for gate.RefusedEvidenceTTL only, so a signature attached after a
// refusal counts once that passed, and what a digest names (a referrer's
// manifest, a bundle) is read once. A digest with no signature at all
// keeps nothing: its referrers are looked up at every check (the push→sign
// window of a CI pipeline).
func TestCacheRefusalReadsLookupsAgain(t *testing.T) {
	reg := newCountingRegistry(t)
	k, _ := testsign.NewKey("p256")
	other, _ := testsign.NewKey("p256")
	d := pushChart(t, reg.Registry, "charts/hello", "1.0.0")
	p, v := compile(t, reg.Host, k)
	clk := clocktesting.NewFakePassiveClock(time.Now())
	cache := gate.NewCacheWithClock(time.Hour, clk)
	client := oci.NewClient(oci.Options{PlainHTTP: true})
	req := gate.Request{URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v, Cache: cache}
	reg.take()

	for i := range 2 {
		res := gate.Check(context.Background(), client, nil, req)
		if res.Verdict.Code() != chartproofv1.ReasonNoSignature || res.Cached {
			t.Fatalf("unsigned, check %d: %s cached %v; want %s, not cached", i, res.Verdict.Code(), res.Cached, chartproofv1.ReasonNoSignature)
		}
		if sigs, _ := reg.take(); sigs == 0 {
			t.Fatalf("unsigned, check %d did not look the referrers up", i)
		}
	}

	if err := attach(reg.Registry, "charts/hello", d, other, false); err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		after  time.Duration
		cached bool
	}{{0, false}, {time.Second, true}, {gate.RefusedEvidenceTTL + time.Millisecond, false}} {
		clk.SetTime(clk.Now().Add(step.after))
		res := gate.Check(context.Background(), client, nil, req)
		if res.Verdict.Code() != chartproofv1.ReasonUntrustedSigner || res.Cached != step.cached {
			t.Fatalf("check %d: %s cached %v; want %s, cached %v", i, res.Verdict.Code(), res.Cached, chartproofv1.ReasonUntrustedSigner, step.cached)
		}
		byDigest := reg.manifestsByDigest()
		sigs, blobs := reg.take()
		if (sigs == 0) != step.cached {
			t.Fatalf("check %d: %d referrer lookups; cached %v", i, sigs, step.cached)
		}
		if first := i == 0; first != (blobs > 0 && byDigest > 0) {
			t.Fatalf("check %d: %d blob and %d manifest-by-digest requests; want some the first time only", i, blobs, byDigest)
		}
	}
	// Signed by the policy's key now: seen once the refusal's signatures
	// expired (the next check but one at most, after a change of trust).
	if err := attach(reg.Registry, "charts/hello", d, k, false); err != nil {
		t.Fatal(err)
	}
	if res := gate.Check(context.Background(), client, nil, req); res.Verdict.Passed() || !res.Cached {
		t.Fatalf("within %s of the refusal: %s cached %v; want the kept refusal's signatures", gate.RefusedEvidenceTTL, res.Verdict.Message(), res.Cached)
	}
	clk.SetTime(clk.Now().Add(gate.RefusedEvidenceTTL + time.Millisecond))
	if res := gate.Check(context.Background(), client, nil, req); !res.Verdict.Passed() || res.Cached {
		t.Fatalf("after the signature was attached: %s cached %v; want passed, read afresh", res.Verdict.Message(), res.Cached)
	}
}

// TestCacheTagMoved: a cache never answers for a tag. After the tag moves
// to an unsigned digest, the next check resolves it and refuses, although
// the old digest's signatures are cached.
func TestCacheTagMoved(t *testing.T) {
	reg := newCountingRegistry(t)
	k, _ := testsign.NewKey("p256")
	d := pushChart(t, reg.Registry, "charts/hello", "1.0.0")
	if err := reg.SignLegacy("charts/hello", d, d, k); err != nil {
		t.Fatal(err)
	}
	p, v := compile(t, reg.Host, k)
	cache := gate.NewCache(time.Hour)
	client := oci.NewClient(oci.Options{PlainHTTP: true})
	req := gate.Request{URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v, Cache: cache}
	if res := gate.Check(context.Background(), client, nil, req); !res.Verdict.Passed() {
		t.Fatalf("control: %s", res.Verdict.Message())
	}
	if res := gate.Check(context.Background(), client, nil, req); !res.Verdict.Passed() || !res.Cached {
		t.Fatalf("control, again: passed %v cached %v; want passed from the cache", res.Verdict.Passed(), res.Cached)
	}
	moved := pushChartWithDescription(t, reg.Registry, "charts/hello", "1.0.0", "unsigned rebuild")
	if moved == d {
		t.Fatal("the rebuild has the same digest")
	}
	res := gate.Check(context.Background(), client, nil, req)
	if res.Digest != moved || res.Verdict.Code() != chartproofv1.ReasonNoSignature || res.Cached {
		t.Fatalf("after the tag moved: digest %s code %s cached %v; want %s, %s, not cached", res.Digest, res.Verdict.Code(), res.Cached, moved, chartproofv1.ReasonNoSignature)
	}
}

// pushChartWithDescription pushes the hello chart with an extra file, so
// its digest differs from pushChart's at the same name and version.
func pushChartWithDescription(t *testing.T, reg testsign.Registry, repo, version, note string) string {
	t.Helper()
	files := testchart.Files("hello", version)
	files["NOTES.md"] = note
	archive, err := testchart.Build(testchart.Entries("hello", files))
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg.PushChart(repo, version, archive, "hello", version)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// lookupCounter counts a Cache's lookups by "store hit" or "store miss".
type lookupCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *lookupCounter) Lookup(store string, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	c.n[store+" "+result]++
}

// take returns the counts since the last take and resets them.
func (c *lookupCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}
