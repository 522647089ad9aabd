package gate

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"

	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
)

// Cache sizes. A cached chart layer is at most MaxCachedChartBytes, so the
// chart cache holds at most MaxCachedCharts*MaxCachedChartBytes (64 MiB);
// the reads by digest of signatures, at most
// MaxCachedReads*MaxCachedReadBytes (64 MiB, a few MiB in practice: a
// signature manifest or layer is a few KiB).
const (
	MaxCachedVerifications = 4096
	MaxCachedCharts        = 64
	MaxCachedChartBytes    = 1 << 20
	MaxCachedReads         = 2048
	MaxCachedReadBytes     = 32 << 10

	// RefusedEvidenceTTL is how long signatures behind a refusal are kept:
	// long enough that a change of trust re-judging a thousand releases of
	// one chart reads its signatures once, short enough that a signature
	// pushed after a refusal counts at the next verification but one.
	RefusedEvidenceTTL = 2 * time.Second
)

// Cache remembers, for a bounded time, what a verification established that
// no later request can change:
//
//   - the signatures of a digest, as one policy's verifier checked them,
//     keyed by the repository, the digest and the policy's Fingerprint (its
//     kind, namespace, name, UID, spec and every Secret and ConfigMap it
//     read) — never by tag, so a moved tag is always resolved again, and any
//     change of trust misses at once. Signatures that led to a passing
//     verdict are kept for the TTL; those behind a refusal only for
//     RefusedEvidenceTTL (the releases of one chart re-judged together
//     after a change of trust share them), and none at all when there was
//     none, so a signature pushed later is seen at once.
//   - chart layers and Helm configs, keyed by repository and digest: the bytes were checked
//     against the digest when read, and a digest names those bytes forever.
//     The repository is part of the key all the same, so what one
//     repository served never stands in for a read from another.
//
// Entries expire after the TTL whatever happens. internal/policy still
// evaluates every verification: the cache holds evidence, never verdicts.
// Concurrent verifications of the same digest under the same policy share
// one registry read. A nil *Cache caches nothing. It is safe for concurrent
// use.
type Cache struct {
	// Lookups counts each lookup, hit or miss, by store (signatures,
	// charts, reads); nil counts nothing. Set it before the cache is used.
	Lookups Lookups

	ttl        time.Duration
	signatures *cache.LRUExpireCache
	charts     *cache.LRUExpireCache
	reads      *cache.LRUExpireCache
	flight     singleflight.Group
}

// Lookups counts cache lookups (internal/metrics.Cache): store is
// metrics.CacheSignatures, CacheCharts or CacheReads; a miss is a read from the registry or
// one shared with a concurrent caller's.
type Lookups interface {
	Lookup(store string, hit bool)
}

// lookup counts one lookup in store.
func (c *Cache) lookup(store string, hit bool) {
	if c.Lookups != nil {
		c.Lookups.Lookup(store, hit)
	}
}

// NewCache returns a cache whose entries live for ttl; ttl <= 0 returns nil,
// which caches nothing.
func NewCache(ttl time.Duration) *Cache {
	return NewCacheWithClock(ttl, clock.RealClock{})
}

// NewCacheWithClock is NewCache with the clock entries expire by (tests).
func NewCacheWithClock(ttl time.Duration, clk clock.PassiveClock) *Cache {
	if ttl <= 0 {
		return nil
	}
	return &Cache{
		ttl:        ttl,
		signatures: cache.NewLRUExpireCacheWithClock(MaxCachedVerifications, clk),
		charts:     cache.NewLRUExpireCacheWithClock(MaxCachedCharts, clk),
		reads:      cache.NewLRUExpireCacheWithClock(MaxCachedReads, clk),
	}
}

// signatureKey names the signatures of digest in repo as p's verifier
// checked them.
func signatureKey(repo, sigRepo oci.Repository, digest string, p *policy.Policy) string {
	return repo.String() + "@" + digest + " " + sigRepo.String() + " " + p.Fingerprint
}

// collect returns the cached signatures for key, or runs fetch, sharing one
// run among concurrent callers with the same key, and keeps what it fetched
// (before the run ends, so no caller in between misses): for the TTL when
// passes says so, else for RefusedEvidenceTTL unless nothing was found.
// cached says whether the signatures came from the cache. The slice is
// shared: read it only.
func (c *Cache) collect(ctx context.Context, key string, fetch func() ([]policy.Signature, error), passes func([]policy.Signature) bool) (sigs []policy.Signature, cached bool, err error) {
	if c == nil {
		sigs, err = fetch()
		return sigs, false, err
	}
	if v, ok := c.signatures.Get(key); ok {
		c.lookup(metrics.CacheSignatures, true)
		return v.([]policy.Signature), true, nil
	}
	c.lookup(metrics.CacheSignatures, false)
	v, err := c.share(ctx, key, func() (any, error) {
		sigs, err := fetch()
		switch {
		case err != nil:
		case passes(sigs):
			c.signatures.Add(key, sigs, c.ttl)
		case len(sigs) > 0:
			c.signatures.Add(key, sigs, min(c.ttl, RefusedEvidenceTTL))
		}
		return sigs, err
	})
	sigs, _ = v.([]policy.Signature)
	return sigs, false, err
}

// blob returns a blob of a chart manifest of repo (the chart layer or the
// Helm config) from the cache, or reads it with read (which checks it
// against the descriptor). The slice is shared: read it only.
func (c *Cache) blob(ctx context.Context, repo oci.Repository, layer v1.Descriptor, read func() ([]byte, error)) ([]byte, error) {
	if c == nil {
		return read()
	}
	return c.keep(ctx, metrics.CacheCharts, c.charts, MaxCachedChartBytes, fmt.Sprintf("chart %s@%s %d", repo, layer.Digest, layer.Size), read)
}

// keep returns what key names from store (named name), or reads it with read, sharing
// one read among concurrent callers, and keeps it when it is at most limit
// bytes. key must name bytes that never change (a digest, and the size a
// descriptor gives: a read under a descriptor of another size fails, as a
// fresh read checks, whatever another caller read), and read must check
// them against it. The slice is shared: read it only.
func (c *Cache) keep(ctx context.Context, name string, store *cache.LRUExpireCache, limit int, key string, read func() ([]byte, error)) ([]byte, error) {
	if v, ok := store.Get(key); ok {
		c.lookup(name, true)
		return v.([]byte), nil
	}
	c.lookup(name, false)
	v, err := c.share(ctx, key, func() (any, error) {
		data, err := read()
		if err == nil && len(data) <= limit {
			store.Add(key, data, c.ttl)
		}
		return data, err
	})
	data, _ := v.([]byte)
	return data, err
}

// cachedReads is a Registry whose reads by digest go through a Cache; the
// lookups by name (tags, referrers, cosign's signature tag) are the
// registry's own.
type cachedReads struct {
	Registry
	cache *Cache
}

// withCache returns reg, its reads by digest cached in c when c is set.
func withCache(reg Registry, c *Cache) Registry {
	if c == nil {
		return reg
	}
	return cachedReads{Registry: reg, cache: c}
}

func (r cachedReads) Manifest(ctx context.Context, repo oci.Repository, digest string) ([]byte, error) {
	return r.cache.keep(ctx, metrics.CacheReads, r.cache.reads, MaxCachedReadBytes, "manifest "+repo.String()+"@"+digest, func() ([]byte, error) {
		return r.Registry.Manifest(ctx, repo, digest)
	})
}

func (r cachedReads) Blob(ctx context.Context, repo oci.Repository, desc v1.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max || desc.Size > MaxCachedReadBytes {
		return r.Registry.Blob(ctx, repo, desc, max)
	}
	return r.cache.keep(ctx, metrics.CacheReads, r.cache.reads, MaxCachedReadBytes, fmt.Sprintf("blob %s@%s %d", repo, desc.Digest, desc.Size), func() ([]byte, error) {
		return r.Registry.Blob(ctx, repo, desc, max)
	})
}

// share runs fn once for concurrent callers with the same key. A caller
// whose context ends stops waiting, with its context's error, whatever the
// shared run does; the run itself uses the first caller's context.
func (c *Cache) share(ctx context.Context, key string, fn func() (any, error)) (any, error) {
	select {
	case r := <-c.flight.DoChan(key, fn):
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
