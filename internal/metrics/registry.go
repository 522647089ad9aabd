package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxRegistryLabels bounds the registry label of the registry metrics: the
// hosts releases name are chosen by whoever may write a release, so past
// this many distinct hosts the rest are counted as "other".
const MaxRegistryLabels = 64

// OtherRegistry is the registry label of the hosts past MaxRegistryLabels.
const OtherRegistry = "other"

// Endpoint label values of the registry metrics: which part of the OCI
// distribution API a request was for.
const (
	EndpointPing      = "ping"      // GET /v2/
	EndpointManifest  = "manifest"  // /v2/<name>/manifests/<ref>
	EndpointBlob      = "blob"      // /v2/<name>/blobs/<digest>
	EndpointTags      = "tags"      // /v2/<name>/tags/list
	EndpointReferrers = "referrers" // /v2/<name>/referrers/<digest>
	EndpointToken     = "token"     // anything else on the registry's host
	// EndpointElsewhere is a request to another host than the registry's:
	// its token server, or the storage a blob download is redirected to.
	EndpointElsewhere = "elsewhere"
)

// CodeError is the code label of a request that got no HTTP response (a
// refused connection, a TLS failure, a timeout).
const CodeError = "error"

// Registry counts and times the requests chartproof sends to OCI
// registries (token exchanges and redirects included), by the registry a
// release names, endpoint and HTTP status, so an SRE sees which registry
// fails or slows verification.
type Registry struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu    sync.Mutex
	hosts map[string]bool
}

// NewRegistry creates the collectors and registers them on reg.
func NewRegistry(reg prometheus.Registerer) (*Registry, error) {
	m := &Registry{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chartproof_registry_requests_total",
			Help: "Requests sent for OCI registries, by registry (the host[:port] a release's chart URL names; the first 64 seen, later ones \"other\"), endpoint (ping, manifest, blob, tags, referrers, token, or elsewhere: its token server or the storage a blob is redirected to) and code (the HTTP status, its class such as 5xx for an uncommon one, or \"error\" when no response came).",
		}, []string{"registry", "endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chartproof_registry_request_duration_seconds",
			Help:    "Time from sending a request for an OCI registry to its response headers (or its failure), by registry and endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"registry", "endpoint"}),
		hosts: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RoundTripper returns next with every request counted and timed under
// registry (host[:port]): requests to that host by their endpoint, those
// to any other host (a token server, a redirect) as EndpointElsewhere. A
// nil *Registry returns next.
func (m *Registry) RoundTripper(registry string, next http.RoundTripper) http.RoundTripper {
	if m == nil {
		return next
	}
	return instrumented{m: m, registry: registry, next: next}
}

type instrumented struct {
	m        *Registry
	registry string
	next     http.RoundTripper
}

func (t instrumented) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	took := time.Since(start)
	host, endpoint := t.m.host(t.registry), EndpointElsewhere
	if req.URL.Host == t.registry {
		endpoint = Endpoint(req.URL.Path)
	}
	code := CodeError
	if err == nil {
		code = statusCode(resp.StatusCode)
	}
	t.m.requests.WithLabelValues(host, endpoint, code).Inc()
	t.m.duration.WithLabelValues(host, endpoint).Observe(took.Seconds())
	return resp, err
}

// host returns the registry label of host: host itself while fewer than
// MaxRegistryLabels have been seen, else OtherRegistry.
func (m *Registry) host(host string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hosts[host] {
		return host
	}
	if len(m.hosts) >= MaxRegistryLabels {
		return OtherRegistry
	}
	m.hosts[host] = true
	return host
}

// Endpoint names the part of the distribution API a request path is for.
func Endpoint(path string) string {
	rest, ok := strings.CutPrefix(path, "/v2/")
	switch {
	case path == "/v2" || path == "/v2/":
		return EndpointPing
	case !ok:
		return EndpointToken
	case strings.HasSuffix(rest, "/tags/list"):
		return EndpointTags
	case strings.Contains(rest, "/manifests/"):
		return EndpointManifest
	case strings.Contains(rest, "/blobs/"):
		return EndpointBlob
	case strings.Contains(rest, "/referrers/"):
		return EndpointReferrers
	default:
		return EndpointToken
	}
}

// commonCodes are the statuses a registry answers with that an SRE tells
// apart; any other is labelled by its class.
var commonCodes = map[int]bool{200: true, 201: true, 202: true, 204: true, 206: true, 301: true, 302: true, 303: true,
	307: true, 308: true, 400: true, 401: true, 403: true, 404: true, 405: true, 416: true, 429: true,
	500: true, 502: true, 503: true, 504: true}

// statusCode is the code label of an HTTP status: a common one itself, any
// other its class (1xx to 5xx), and "other" outside them.
func statusCode(code int) string {
	switch {
	case commonCodes[code]:
		return strconv.Itoa(code)
	case code >= 100 && code <= 599:
		return strconv.Itoa(code/100) + "xx"
	default:
		return "other"
	}
}

// Cache label values of chartproof_cache_lookups_total.
const (
	CacheSignatures = "signatures"
	CacheCharts     = "charts"
	CacheReads      = "reads"
)

// Cache counts the lookups in the verification cache (internal/gate.Cache):
// signatures a policy's verifier checked, chart layers and configs, and
// signature manifests and layers read by digest.
type Cache struct {
	lookups *prometheus.CounterVec
}

// NewCache creates the collector and registers it on reg.
func NewCache(reg prometheus.Registerer) (*Cache, error) {
	m := &Cache{lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chartproof_cache_lookups_total",
		Help: "Lookups in the verification cache, by cache (signatures: a digest's signatures as a policy checked them; charts: chart layers and configs; reads: signature manifests and layers read by digest) and result (hit, or miss: read from the registry, or shared with a concurrent read).",
	}, []string{"cache", "result"})}
	if err := reg.Register(m.lookups); err != nil {
		return nil, err
	}
	return m, nil
}

// Lookup counts one lookup in cache, a hit or a miss.
func (m *Cache) Lookup(cache string, hit bool) {
	if m == nil {
		return
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	m.lookups.WithLabelValues(cache, result).Inc()
}
