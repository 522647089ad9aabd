package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileProxy is a loopback HTTP server in front of a real registry. It
// passes every request through unchanged, except requests whose path a test
// gave a behaviour to: those it answers as a hostile registry would. With no
// behaviour at all it is the control twin of every hostile case.
type hostileProxy struct {
	Host string // 127.0.0.1:port, what chartproof is pointed at

	upstream *httputil.ReverseProxy
	closing  chan struct{} // closed when the test ends: stalled handlers return

	mu         sync.Mutex
	behaviours map[string]behaviour // by URL path
	hits       map[string]int       // GET and HEAD requests, by URL path
}

// behaviour answers one request for a path. n counts the requests for that
// path, from 1. up reaches the real registry.
type behaviour func(w http.ResponseWriter, r *http.Request, n int, up upstream)

// startHostileProxy starts a proxy in front of the registry at host
// (host:port, plain HTTP), answering the paths in behaviours with them. It
// is stopped when the test ends.
func startHostileProxy(t *testing.T, registryHost string, behaviours map[string]behaviour) *hostileProxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: registryHost}
	p := &hostileProxy{
		upstream:   httputil.NewSingleHostReverseProxy(target),
		closing:    make(chan struct{}),
		behaviours: behaviours,
		hits:       map[string]int{},
	}
	// The registry's own redirects and Location headers name the proxy's
	// host already: the reverse proxy keeps the request's Host header.
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		close(p.closing)
		srv.Close()
	})
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *hostileProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	b := p.behaviours[r.URL.Path]
	n := 0
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		p.hits[r.URL.Path]++
		n = p.hits[r.URL.Path]
	}
	p.mu.Unlock()
	if b == nil {
		p.upstream.ServeHTTP(w, r)
		return
	}
	b(w, r, n, upstream{p})
}

// requests returns how many GET and HEAD requests path received.
func (p *hostileProxy) requests(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

// upstream is the real registry behind a proxy.
type upstream struct {
	p *hostileProxy
}

// forward passes r to the registry and its answer back, unchanged.
func (u upstream) forward(w http.ResponseWriter, r *http.Request) {
	u.p.upstream.ServeHTTP(w, r)
}

// fetch passes r to the registry and returns its whole answer.
func (u upstream) fetch(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	u.p.upstream.ServeHTTP(rec, r)
	return rec
}

// passThrough forwards the request: the registry's honest answer.
func passThrough(w http.ResponseWriter, r *http.Request, _ int, up upstream) {
	up.forward(w, r)
}

// serveManifest answers with body as a manifest of media type mt, and a
// Docker-Content-Digest that is the body's own digest unless header says
// otherwise. Each value of header replaces the header of that name.
func serveManifest(mt string, body []byte, header ...string) behaviour {
	return func(w http.ResponseWriter, r *http.Request, _ int, _ upstream) {
		h := w.Header()
		h.Set("Content-Type", mt)
		h.Set("Docker-Content-Digest", sha256Digest(body))
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		writeBody(w, r, http.StatusOK, body)
	}
}

// rewrite forwards the request and answers with the registry's answer after
// edit has changed its headers and body. Content-Length follows the new
// body.
func rewrite(edit func(h http.Header, body []byte) []byte) behaviour {
	return func(w http.ResponseWriter, r *http.Request, _ int, up upstream) {
		rec := up.fetch(r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			body = edit(rec.Header(), bytes.Clone(body))
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		writeBody(w, r, rec.Code, body)
	}
}

// writeBody writes status and body with a Content-Length matching it (none
// for a HEAD request).
func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// firstThen answers the first request for the path with first, and every
// later one with later.
func firstThen(first, later behaviour) behaviour {
	return func(w http.ResponseWriter, r *http.Request, n int, up upstream) {
		if n <= 1 {
			first(w, r, n, up)
			return
		}
		later(w, r, n, up)
	}
}

// status answers with an HTTP status and a registry error body.
func status(code int) behaviour {
	return func(w http.ResponseWriter, r *http.Request, _ int, _ upstream) {
		w.Header().Set("Content-Type", "application/json")
		writeBody(w, r, code, []byte(`{"errors":[{"code":"UNKNOWN","message":"hostile proxy"}]}`))
	}
}

// endless answers 200 with the registry's headers but no Content-Length,
// and a body of zeros that never ends: it stops only when the client hangs
// up (or the test ends).
func endless(w http.ResponseWriter, r *http.Request, _ int, up upstream) {
	head := up.fetch(r)
	for k, v := range head.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	chunk := make([]byte, 32<<10)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-up.p.closing:
			return
		default:
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// stall accepts the request and never answers, until the client hangs up.
func stall(w http.ResponseWriter, r *http.Request, _ int, up upstream) {
	select {
	case <-r.Context().Done():
	case <-up.p.closing:
	}
}

// drip answers with the registry's status and headers at once, then sends
// the body one byte every 100ms: a slow-loris registry.
func drip(w http.ResponseWriter, r *http.Request, _ int, up upstream) {
	rec := up.fetch(r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for _, b := range rec.Body.Bytes() {
		select {
		case <-r.Context().Done():
			return
		case <-up.p.closing:
			return
		case <-tick.C:
		}
		if _, err := w.Write([]byte{b}); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// linkLoop forwards the request and adds a Link header whose next page is
// the request itself, so a client that follows Link never reaches the end.
func linkLoop(w http.ResponseWriter, r *http.Request, n int, up upstream) {
	rewrite(func(h http.Header, body []byte) []byte {
		h.Set("Link", "<"+r.URL.RequestURI()+">; rel=\"next\"")
		return body
	})(w, r, n, up)
}

// sha256Digest is the canonical digest of b.
func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
