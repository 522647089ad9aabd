// Package revocation establishes whether the certificates of a validated
// x509 path are revoked: OCSP where a certificate names a responder, else the
// CRLs of its distribution points (each with the delta CRL it names), with
// notation-core-go's revocation package (which checks each answer's
// signature by the certificate's issuer, a CRL's nextUpdate, a delta against
// its base, and an entry's invalidity date against the signing time). It
// gathers evidence; internal/policy decides what a status means.
//
// What it answers is kept no longer than the authority's refresh interval
// (60 s by default) whatever a CRL's nextUpdate says; an unknown status is
// kept a few seconds only, so that a burst of verifications does not ask a
// down responder a thousand times. CRLs the cluster serves (revocation.crls)
// are used instead of fetching their URLs.
//
// A path a verification asked about is checked again in the background
// (Checker.Start) within its refresh interval, and a status that changed is
// announced (Checker.OnChange), so a revocation published is seen within
// the interval without every release re-verifying at it.
package revocation

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	"github.com/notaryproject/notation-core-go/revocation/crl"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"

	"github.com/chartproof/chartproof/internal/policy"
)

// Bounds of what a Checker keeps.
const (
	// maxAnswers is how many path statuses are kept.
	maxAnswers = 4096
	// maxCRLCacheBytes bounds the fetched CRLs kept, together.
	maxCRLCacheBytes = 64 << 20
	// unknownTTL is how long an unknown status is kept.
	unknownTTL = 5 * time.Second
	// maxWatched is how many paths are checked again in the background.
	maxWatched = maxAnswers
	// forgetAfter is how long a path no verification asked about is still
	// checked again in the background: longer than any sensible release
	// interval, so the paths of what is installed stay watched.
	forgetAfter = 24 * time.Hour
	// refreshWorkers bounds the background checks run at once.
	refreshWorkers = 8
)

// Checker checks paths and keeps what it learnt for a bounded time. Its
// zero value is not usable; a nil *Checker checks every time with
// http.DefaultTransport and keeps nothing. It is safe for concurrent use.
type Checker struct {
	transport http.RoundTripper
	clock     clock.PassiveClock
	answers   *cache.LRUExpireCache
	flight    singleflight.Group

	mu       sync.Mutex
	crls     map[string]fetchedCRL // by URL
	crlBytes int

	watchMu  sync.Mutex
	watched  map[string]*watchedPath // by watchKey
	onChange []func()
}

// path is what a status is asked of: a chain, a signing time, an
// authority's settings.
type path struct {
	chain    []*x509.Certificate
	signedAt time.Time
	o        policy.X509Revocation
}

// watchedPath is a path a verification asked about, under its owner's
// latest settings, with the status last found and when.
type watchedPath struct {
	path
	status  string    // "" until a check under these settings completes
	checked time.Time // how old the last answer is: when the oldest CRL it read was fetched, else when it was found
	asked   time.Time // when a verification last asked
}

type fetchedCRL struct {
	bundle *crl.Bundle
	at     time.Time
	size   int
}

// New returns a Checker whose requests go through transport (nil:
// http.DefaultTransport).
func New(transport http.RoundTripper) *Checker {
	return NewWithClock(transport, clock.RealClock{})
}

// NewWithClock is New with the clock what it keeps expires by (tests).
func NewWithClock(transport http.RoundTripper, clk clock.PassiveClock) *Checker {
	if transport == nil {
		transport = http.DefaultTransport
	}
	return &Checker{transport: transport, clock: clk, answers: cache.NewLRUExpireCacheWithClock(maxAnswers, clk), crls: map[string]fetchedCRL{}}
}

// Check returns the revocation status of chain (leaf first, root last) for
// a signature made at signedAt (zero: now), under an authority's settings.
func (c *Checker) Check(ctx context.Context, chain []*x509.Certificate, signedAt time.Time, o policy.X509Revocation) policy.RevocationStatus {
	if len(chain) < 2 {
		return policy.RevocationStatus{Status: policy.RevocationUnknown, Detail: "a path without an issuer cannot be checked"}
	}
	if c == nil {
		st, _ := check(ctx, http.DefaultTransport, nil, chain, signedAt, o)
		return st
	}
	p := path{chain: chain, signedAt: signedAt, o: o}
	c.asked(p)
	if v, ok := c.answers.Get(answerKey(chain, signedAt, o)); ok {
		return v.(policy.RevocationStatus)
	}
	return c.recheck(ctx, p)
}

// recheck checks p afresh (CRLs kept less than the refresh interval
// excepted), sharing one check among concurrent callers, keeps the answer
// and notes it as p's status.
func (c *Checker) recheck(ctx context.Context, p path) policy.RevocationStatus {
	key := answerKey(p.chain, p.signedAt, p.o)
	v, _, _ := c.flight.Do(key, func() (any, error) {
		st, oldest := check(ctx, c.transport, c, p.chain, p.signedAt, p.o)
		if ctx.Err() != nil { // a caller that gave up learnt nothing about the path
			return st, nil
		}
		// An answer is as old as the oldest CRL it read: it is kept only
		// for what is left of that CRL's refresh interval.
		at := c.clock.Now()
		if !oldest.IsZero() {
			at = oldest
		}
		ttl := p.o.Refresh - c.clock.Since(at)
		if st.Status == policy.RevocationUnknown {
			ttl = min(ttl, unknownTTL)
		}
		if ttl > 0 {
			c.answers.Add(key, st, ttl)
		}
		c.found(p, st.Status, at)
		return st, nil
	})
	return v.(policy.RevocationStatus)
}

// OnChange registers f, called (on the goroutine of the check) each time the
// status of a path a verification asked about is found to differ from the
// one found before: whatever depends on it should be verified again. The
// first status of a path is not a change.
func (c *Checker) OnChange(f func()) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	c.onChange = append(c.onChange, f)
}

// watchKey names a watched path: the chain and signing time, and the owner
// of the settings (the ID of settings that name no owner). Settings compiled
// anew for the same owner replace the old ones in the entry, so what a
// superseded policy held (its CRLs) is not kept.
func watchKey(p path) string {
	owner := p.o.Owner
	if owner == "" {
		owner = "settings " + p.o.ID
	}
	return answerKey(p.chain, p.signedAt, policy.X509Revocation{}) + " " + owner
}

// asked notes that a verification asked about p, watching it from now on.
func (c *Checker) asked(p path) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	now := c.clock.Now()
	key := watchKey(p)
	w, ok := c.watched[key]
	if ok && w.o.ID != p.o.ID {
		// The owner's settings changed (a change of trust, which re-queues
		// its releases itself): watch under the new ones, afresh.
		w.path, w.status, w.checked = p, "", time.Time{}
	}
	if !ok {
		if c.watched == nil {
			c.watched = map[string]*watchedPath{}
		}
		if len(c.watched) >= maxWatched {
			// The path asked about least recently is watched no more.
			oldest := ""
			for k, e := range c.watched {
				if oldest == "" || e.asked.Before(c.watched[oldest].asked) {
					oldest = k
				}
			}
			delete(c.watched, oldest)
		}
		w = &watchedPath{path: p}
		c.watched[key] = w
	}
	w.asked = now
}

// found notes status as the status of p, as old as at, and announces a
// change. A status found under settings its owner has since replaced is not
// noted.
func (c *Checker) found(p path, status string, at time.Time) {
	c.watchMu.Lock()
	w, ok := c.watched[watchKey(p)]
	ok = ok && w.o.ID == p.o.ID
	changed := ok && w.status != "" && w.status != status
	if ok {
		w.status, w.checked = status, at
	}
	callbacks := c.onChange
	c.watchMu.Unlock()
	if changed {
		for _, f := range callbacks {
			f()
		}
	}
}

// Refresh checks again every watched path whose answer is as old as its
// refresh interval, up to refreshWorkers at once, and stops watching the
// paths no verification asked about in forgetAfter. Start runs it every
// second; tests call it directly.
func (c *Checker) Refresh(ctx context.Context) {
	now := c.clock.Now()
	var todo []path
	c.watchMu.Lock()
	for key, w := range c.watched {
		switch {
		case now.Sub(w.asked) >= forgetAfter:
			delete(c.watched, key)
		case now.Sub(w.checked) >= w.o.Refresh:
			todo = append(todo, w.path)
		}
	}
	c.watchMu.Unlock()
	workers := make(chan struct{}, refreshWorkers)
	var wg sync.WaitGroup
	for _, p := range todo {
		select {
		case workers <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-workers }()
			c.recheck(ctx, p)
		})
	}
	wg.Wait()
}

// Start runs Refresh every second until ctx ends (a manager Runnable).
func (c *Checker) Start(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.Refresh(ctx)
		}
	}
}

// Annotate returns sigs with the revocation status of each path an x509
// authority of p validated (policy.X509Facts.Revocation); a copy when there
// is any, since sigs may be a cache's.
func (c *Checker) Annotate(ctx context.Context, p *policy.Policy, sigs []policy.Signature) []policy.Signature {
	var out []policy.Signature
	for i, s := range sigs {
		if s.X509 == nil || len(s.X509.Chains) == 0 {
			continue
		}
		if out == nil {
			out = slices.Clone(sigs)
		}
		facts := *s.X509
		facts.Revocation = map[string]policy.RevocationStatus{}
		for name, chain := range facts.Chains {
			if a := p.Authority(name); a != nil && a.X509 != nil {
				facts.Revocation[name] = c.Check(ctx, chain, s.SignedAt, a.X509.Revocation)
			}
		}
		out[i].X509 = &facts
	}
	if out == nil {
		return sigs
	}
	return out
}

// answerKey names a status: the path, the signing time and the settings.
func answerKey(chain []*x509.Certificate, signedAt time.Time, o policy.X509Revocation) string {
	h := sha256.New()
	for _, cert := range chain {
		sum := sha256.Sum256(cert.Raw)
		h.Write(sum[:])
	}
	fmt.Fprintf(h, "%d %s", signedAt.UnixNano(), o.ID)
	return hex.EncodeToString(h.Sum(nil))
}

// check asks the responders and reads the CRLs; keep, when set, keeps the
// CRLs it fetched. It returns when the oldest kept CRL it read was fetched
// (zero when it read none).
func check(ctx context.Context, transport http.RoundTripper, keep *Checker, chain []*x509.Certificate, signedAt time.Time, o policy.X509Revocation) (policy.RevocationStatus, time.Time) {
	client := &http.Client{Transport: transport, Timeout: o.Timeout}
	f := &fetcher{client: client, keep: keep, o: o}
	v, err := revocation.NewWithOptions(revocation.Options{
		OCSPHTTPClient:   client,
		CRLFetcher:       f,
		CertChainPurpose: purpose.CodeSigning,
	})
	if err != nil {
		return policy.RevocationStatus{Status: policy.RevocationUnknown, Detail: err.Error()}, time.Time{}
	}
	results, err := v.ValidateContext(ctx, revocation.ValidateContextOptions{CertChain: chain, AuthenticSigningTime: signedAt})
	if err != nil {
		return policy.RevocationStatus{Status: policy.RevocationUnknown, Detail: fmt.Sprintf("the path could not be checked: %v", err)}, f.oldestRead()
	}
	return judge(chain, results), f.oldestRead()
}

// judge sums up the results of each certificate of chain: Revoked when any
// is, else Unknown when any is, else Good.
func judge(chain []*x509.Certificate, results []*result.CertRevocationResult) policy.RevocationStatus {
	var unknown []string
	for i, r := range results {
		if r == nil || i >= len(chain) {
			continue
		}
		switch r.Result {
		case result.ResultRevoked:
			return policy.RevocationStatus{Status: policy.RevocationRevoked, Detail: describe(chain[i], r, "revoked")}
		case result.ResultUnknown:
			unknown = append(unknown, describe(chain[i], r, "status unknown"))
		}
	}
	if len(unknown) > 0 {
		return policy.RevocationStatus{Status: policy.RevocationUnknown, Detail: strings.Join(unknown, "; ")}
	}
	return policy.RevocationStatus{Status: policy.RevocationGood}
}

// describe names a certificate, what was found and where.
func describe(cert *x509.Certificate, r *result.CertRevocationResult, what string) string {
	var servers []string
	for _, s := range r.ServerResults {
		if s == nil {
			continue
		}
		d := fmt.Sprintf("%s %s", method(s.RevocationMethod), s.Server)
		if s.Error != nil {
			d += ": " + s.Error.Error()
		}
		servers = append(servers, d)
	}
	return fmt.Sprintf("certificate %q serial %s %s (%s)", cert.Subject.String(), cert.SerialNumber.Text(16), what, strings.Join(servers, "; "))
}

func method(m result.RevocationMethod) string {
	switch m {
	case result.RevocationMethodOCSP:
		return "OCSP"
	case result.RevocationMethodCRL:
		return "CRL"
	case result.RevocationMethodOCSPFallbackCRL:
		return "OCSP then CRL"
	}
	return "unknown method"
}

// fetcher gives notation-core-go the CRL of a distribution point: the
// cluster's copy when the settings name the URL, else one fetched less than
// the refresh interval ago, else a fresh download.
// It is called from a goroutine per certificate.
type fetcher struct {
	client *http.Client
	keep   *Checker
	o      policy.X509Revocation

	mu     sync.Mutex
	oldest time.Time // when the oldest kept CRL it returned was fetched
}

func (f *fetcher) oldestRead() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.oldest
}

func (f *fetcher) Fetch(ctx context.Context, u string) (*crl.Bundle, error) {
	if _, ok := f.o.CRLs[u]; ok {
		b, _, err := f.bundle(ctx, u)
		return b, err
	}
	if b, at := f.keep.cached(u, f.o.Refresh); b != nil {
		f.mu.Lock()
		if f.oldest.IsZero() || at.Before(f.oldest) {
			f.oldest = at
		}
		f.mu.Unlock()
		return b, nil
	}
	b, size, err := f.bundle(ctx, u)
	if err != nil {
		return nil, err
	}
	f.keep.store(u, b, size)
	return b, nil
}

// bundle reads the CRL of distribution point u and the delta CRL its
// Freshest CRL extension names, if any (RFC 5280, 5.2.6): a base CRL that
// names one is not complete without it, and a delta that cannot be read
// leaves the status unknown. notation-core-go checks the delta against the
// base (the issuer's signature, its nextUpdate, the base CRL number). size
// is their bytes together.
func (f *fetcher) bundle(ctx context.Context, u string) (b *crl.Bundle, size int, err error) {
	b = &crl.Bundle{}
	if b.BaseCRL, size, err = f.read(ctx, u); err != nil {
		return nil, 0, err
	}
	deltas, err := freshestCRL(b.BaseCRL)
	if err != nil {
		return nil, 0, fmt.Errorf("CRL %s: %w", u, err)
	}
	for i, d := range deltas {
		if i == maxDeltaURLs {
			break
		}
		var n int
		if b.DeltaCRL, n, err = f.read(ctx, d); err == nil {
			return b, size + n, nil
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("the delta CRL of %s: %w", u, err)
	}
	return b, size, nil
}

// maxDeltaURLs bounds the delta CRL locations tried for one base CRL.
const maxDeltaURLs = 4

// read returns the CRL at u: the cluster's copy when the settings serve
// it, else a download.
func (f *fetcher) read(ctx context.Context, u string) (*x509.RevocationList, int, error) {
	if der, ok := f.o.CRLs[u]; ok {
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, 0, fmt.Errorf("the cluster's CRL for %s: %w", u, err)
		}
		return rl, len(der), nil
	}
	return download(ctx, f.client, u)
}

// oidFreshestCRL is the extension of a base CRL naming its delta CRLs.
var oidFreshestCRL = asn1.ObjectIdentifier{2, 5, 29, 46}

// freshestCRL returns the URIs a CRL's Freshest CRL extension names, whose
// syntax is a certificate's CRL distribution points (RFC 5280, 4.2.1.13 and
// 4.2.1.15): the URIs of each distribution point's full name.
func freshestCRL(rl *x509.RevocationList) ([]string, error) {
	var urls []string
	for _, ext := range rl.Extensions {
		if !ext.Id.Equal(oidFreshestCRL) {
			continue
		}
		malformed := errors.New("malformed Freshest CRL extension")
		val := cryptobyte.String(ext.Value)
		if !val.ReadASN1(&val, cbasn1.SEQUENCE) {
			return nil, malformed
		}
		for !val.Empty() {
			var point, name cryptobyte.String
			var named bool
			if !val.ReadASN1(&point, cbasn1.SEQUENCE) ||
				!point.ReadOptionalASN1(&name, &named, cbasn1.Tag(0).Constructed().ContextSpecific()) {
				return nil, malformed
			}
			if !named {
				continue
			}
			if !name.ReadASN1(&name, cbasn1.Tag(0).Constructed().ContextSpecific()) {
				continue // a name relative to the CRL issuer: no URI
			}
			for name.PeekASN1Tag(cbasn1.Tag(6).ContextSpecific()) {
				var uri cryptobyte.String
				if !name.ReadASN1(&uri, cbasn1.Tag(6).ContextSpecific()) {
					return nil, malformed
				}
				urls = append(urls, string(uri))
			}
		}
	}
	return urls, nil
}

// download reads a CRL over HTTP(S), at most policy.MaxCRLBytes.
func download(ctx context.Context, client *http.Client, u string) (*x509.RevocationList, int, error) {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return nil, 0, fmt.Errorf("CRL distribution point %q is not an http(s) URL", u)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("CRL %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("CRL %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, policy.MaxCRLBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("CRL %s: %w", u, err)
	}
	if len(data) > policy.MaxCRLBytes {
		return nil, 0, fmt.Errorf("CRL %s exceeds %d bytes", u, policy.MaxCRLBytes)
	}
	if block, _ := pem.Decode(data); block != nil && block.Type == "X509 CRL" {
		data = block.Bytes
	}
	rl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, 0, fmt.Errorf("CRL %s does not parse: %w", u, err)
	}
	return rl, len(data), nil
}

// cached returns the CRL of u fetched less than refresh ago and still
// before its nextUpdate, and when it was fetched; nil otherwise (and for a
// nil Checker).
func (c *Checker) cached(u string, refresh time.Duration) (*crl.Bundle, time.Time) {
	if c == nil {
		return nil, time.Time{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.crls[u]
	now := c.clock.Now()
	if !ok || now.Sub(e.at) >= refresh || now.Before(e.at) || now.After(e.bundle.BaseCRL.NextUpdate) {
		return nil, time.Time{}
	}
	return e.bundle, e.at
}

// store keeps a fetched CRL, dropping the oldest ones beyond
// maxCRLCacheBytes.
func (c *Checker) store(u string, b *crl.Bundle, size int) {
	if c == nil || size > maxCRLCacheBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.crls[u]; ok {
		c.crlBytes -= old.size
	}
	c.crls[u] = fetchedCRL{bundle: b, at: c.clock.Now(), size: size}
	c.crlBytes += size
	for c.crlBytes > maxCRLCacheBytes {
		oldest := ""
		for k, e := range c.crls {
			if oldest == "" || e.at.Before(c.crls[oldest].at) {
				oldest = k
			}
		}
		c.crlBytes -= c.crls[oldest].size
		delete(c.crls, oldest)
	}
}
