package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/chartproof/chartproof/internal/limits"
)

// TestHostileRegistry puts a lying handler in front of a real registry
// holding a real chart, and checks that each lie is caught with the right
// sentinel (THREATS REG-02, REG-03, REG-04, REG-08 d).
func TestHostileRegistry(t *testing.T) {
	chart := buildChart(t, "1.0.0")
	other := buildChart(t, "2.0.0")
	manifests := func(r *http.Request) bool { return isGet(r, "/manifests/") }
	blobs := func(r *http.Request) bool { return isGet(r, "/blobs/") }
	tagList := func(r *http.Request) bool { return isGet(r, "/tags/list") }
	referrers := func(r *http.Request) bool { return isGet(r, "/referrers/") }
	edit := func(f func([]byte) []byte) func(http.Header, []byte) []byte {
		return func(_ http.Header, body []byte) []byte { return f(body) }
	}
	oversized := bytes.Repeat([]byte(" "), limits.MaxManifestBytes+1)

	resolve := func(version string) func(context.Context, *testRegistry) error {
		return func(ctx context.Context, reg *testRegistry) error {
			_, err := reg.client.Resolve(ctx, reg.repo, version)
			return err
		}
	}
	manifest := func(ctx context.Context, reg *testRegistry) error {
		_, err := reg.client.Manifest(ctx, reg.repo, chart.Digest)
		return err
	}
	blob := func(size int64) func(context.Context, *testRegistry) error {
		return func(ctx context.Context, reg *testRegistry) error {
			desc := chart.Layout.Chart
			desc.Size += size
			_, err := reg.client.Blob(ctx, reg.repo, desc, limits.MaxChartLayerBytes)
			return err
		}
	}
	referrersOf := func(ctx context.Context, reg *testRegistry) error {
		_, err := reg.client.Referrers(ctx, reg.repo, chart.Digest, nil)
		return err
	}

	tests := []struct {
		name    string
		wrap    func(http.Handler) http.Handler
		call    func(context.Context, *testRegistry) error
		wantErr error
	}{
		{
			name:    "manifest body altered, fetched by digest",
			wrap:    rewrite(manifests, edit(flipByte)),
			call:    manifest,
			wantErr: ErrDigestMismatch,
		},
		{
			name:    "manifest body altered, resolved by digest",
			wrap:    rewrite(manifests, edit(flipByte)),
			call:    resolve(chart.Digest),
			wantErr: ErrDigestMismatch,
		},
		{
			name: "another manifest served for a digest, with that digest in Docker-Content-Digest",
			wrap: rewrite(manifests, func(h http.Header, _ []byte) []byte {
				h.Set("Docker-Content-Digest", chart.Digest)
				return other.Manifest
			}),
			call:    resolve(chart.Digest),
			wantErr: ErrDigestMismatch,
		},
		{
			name:    "blob altered",
			wrap:    rewrite(blobs, edit(flipByte)),
			call:    blob(0),
			wantErr: ErrDigestMismatch,
		},
		{
			name:    "blob truncated by one byte",
			wrap:    rewrite(blobs, edit(func(b []byte) []byte { return b[:len(b)-1] })),
			call:    blob(0),
			wantErr: ErrDigestMismatch,
		},
		{
			name:    "blob extended by one byte",
			wrap:    rewrite(blobs, edit(func(b []byte) []byte { return append(b, 0) })),
			call:    blob(0),
			wantErr: ErrDigestMismatch,
		},
		{
			name: "blob extended by one byte, without Content-Length",
			wrap: rewrite(blobs, func(h http.Header, b []byte) []byte {
				h.Del("Content-Length")
				return append(append(b, 0), bytes.Repeat([]byte{0}, 64<<10)...)
			}),
			call:    blob(0),
			wantErr: ErrDigestMismatch,
		},
		{
			name:    "descriptor size one byte short of the blob",
			call:    blob(-1),
			wantErr: ErrDigestMismatch,
		},
		{
			name:    "descriptor size one byte over the blob",
			call:    blob(+1),
			wantErr: ErrDigestMismatch,
		},
		{
			name:    "oversized manifest",
			wrap:    respond(manifests, http.StatusOK, nil, oversized),
			call:    resolve("1.0.0"),
			wantErr: ErrLimitExceeded,
		},
		{
			name: "oversized manifest, without Content-Length",
			wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !manifests(r) {
						next.ServeHTTP(w, r)
						return
					}
					w.WriteHeader(http.StatusOK)
					for range 5 { // chunked: flushed before the length is known
						_, _ = w.Write(oversized[:limits.MaxManifestBytes/4+1])
						w.(http.Flusher).Flush()
					}
				})
			},
			call:    resolve("1.0.0"),
			wantErr: ErrLimitExceeded,
		},
		{
			name: "tag list Link loops",
			wrap: rewrite(tagList, func(h http.Header, body []byte) []byte {
				h.Set("Link", `</v2/charts/demo/tags/list>; rel="next"`)
				return body
			}),
			call:    resolve(">=1.0.0"),
			wantErr: ErrLimitExceeded,
		},
		{
			name: "tag list Link to another host",
			wrap: rewrite(tagList, func(h http.Header, body []byte) []byte {
				h.Set("Link", `<https://evil.example/v2/charts/demo/tags/list?last=1.0.0>; rel="next"`)
				return body
			}),
			call:    resolve(">=1.0.0"),
			wantErr: ErrUnavailable,
		},
		{
			name:    "tag list malformed",
			wrap:    respond(tagList, http.StatusOK, nil, []byte(`{"tags":`)),
			call:    resolve(">=1.0.0"),
			wantErr: ErrUnavailable,
		},
		{
			name: "referrers Link loops",
			wrap: respond(referrers, http.StatusOK, http.Header{"Link": {`</v2/charts/demo/referrers/` + chart.Digest + `>; rel="next"`}},
				[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)),
			call:    referrersOf,
			wantErr: ErrLimitExceeded,
		},
		{name: "manifest 500", wrap: respond(manifests, http.StatusInternalServerError, nil, nil), call: resolve("1.0.0"), wantErr: ErrUnavailable},
		{name: "manifest 429", wrap: respond(manifests, http.StatusTooManyRequests, nil, nil), call: resolve("1.0.0"), wantErr: ErrUnavailable},
		{name: "manifest 400", wrap: respond(manifests, http.StatusBadRequest, nil, nil), call: manifest, wantErr: ErrUnavailable},
		{name: "manifest 401", wrap: respond(manifests, http.StatusUnauthorized, nil, nil), call: manifest, wantErr: ErrUnauthorized},
		{name: "manifest 403", wrap: respond(manifests, http.StatusForbidden, nil, nil), call: manifest, wantErr: ErrUnauthorized},
		{name: "blob 503", wrap: respond(blobs, http.StatusServiceUnavailable, nil, nil), call: blob(0), wantErr: ErrUnavailable},
		{name: "tag list 502", wrap: respond(tagList, http.StatusBadGateway, nil, nil), call: resolve(">=1.0.0"), wantErr: ErrUnavailable},
		{name: "referrers 500", wrap: respond(referrers, http.StatusInternalServerError, nil, nil), call: referrersOf, wantErr: ErrUnavailable},
		{name: "legacy signature 500", wrap: respond(manifests, http.StatusInternalServerError, nil, nil), call: func(ctx context.Context, reg *testRegistry) error {
			_, _, _, err := reg.client.LegacySignature(ctx, reg.repo, chart.Digest)
			return err
		}, wantErr: ErrUnavailable},
		{name: "registry ping 500", wrap: respond(func(r *http.Request) bool { return r.URL.Path == "/v2/" }, http.StatusInternalServerError, nil, nil), call: manifest, wantErr: ErrUnavailable},
		{name: "registry ping 404", wrap: respond(func(r *http.Request) bool { return r.URL.Path == "/v2/" }, http.StatusNotFound, nil, nil), call: manifest, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lying atomic.Bool
			reg := newTestRegistry(t, false, whenArmed(&lying, tt.wrap))
			reg.pushChart(t, chart)
			reg.pushChart(t, other)
			lying.Store(true)
			err := tt.call(context.Background(), reg)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "oci: ") {
				t.Errorf("got error %q, want it prefixed %q", err, "oci: ")
			}
		})
	}
}

// whenArmed applies wrap only once armed is set, so that the artifacts are
// pushed to an honest registry.
func whenArmed(armed *atomic.Bool, wrap func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	if wrap == nil {
		return nil
	}
	return func(next http.Handler) http.Handler {
		lying := wrap(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if armed.Load() {
				lying.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestCanceledContext: a canceled call is inconclusive, and says why.
func TestCanceledContext(t *testing.T) {
	reg := newTestRegistry(t, false, nil)
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := reg.client.Resolve(ctx, reg.repo, "1.0.0")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve: got error %v, want %v wrapping %v", err, ErrUnavailable, context.Canceled)
	}
}

// TestNoPlainHTTPFallback: a client without PlainHTTP never speaks plain
// HTTP, not even to a loopback registry, which go-containerregistry would
// otherwise try over HTTP too.
func TestNoPlainHTTPFallback(t *testing.T) {
	var plain atomic.Int32
	var counting atomic.Bool
	reg := newTestRegistry(t, false, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if counting.Load() {
				plain.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)
	counting.Store(true)

	_, err := NewClient(Options{}).Resolve(context.Background(), reg.repo, "1.0.0")
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Resolve over HTTPS to a plain HTTP registry: got error %v, want %v", err, ErrUnavailable)
	}
	if n := plain.Load(); n != 0 {
		t.Errorf("plain HTTP requests that reached the registry: got %d, want 0", n)
	}

	// The same registry, asked for plain HTTP explicitly, answers: the
	// refusal above is the client's doing.
	if _, err := NewClient(Options{PlainHTTP: true}).Resolve(context.Background(), reg.repo, "1.0.0"); err != nil {
		t.Errorf("Resolve with PlainHTTP: got error %v, want nil", err)
	}
}

// TestHTTPS resolves a chart from a registry behind TLS with the default
// options but the transport, which trusts the test certificate.
func TestHTTPS(t *testing.T) {
	reg := newTLSRegistry(t, nil)
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)

	got, err := reg.client.Resolve(context.Background(), reg.repo, "1.0.0")
	if err != nil {
		t.Fatalf("Resolve: got error %v, want nil", err)
	}
	if got.Digest != c.Digest {
		t.Errorf("Resolve: got digest %s, want %s", got.Digest, c.Digest)
	}
}

// TestKeychain: credentials come from the keychain; without them a registry
// that requires them answers ErrUnauthorized.
func TestKeychain(t *testing.T) {
	requireAuth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if user, pass, ok := r.BasicAuth(); r.Method == http.MethodGet && (!ok || user != "reader" || pass != "secret") {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := newTestRegistry(t, false, requireAuth)
	c := buildChart(t, "1.0.0")
	reg.pushChart(t, c)
	good := staticKeychain{authn.FromConfig(authn.AuthConfig{Username: "reader", Password: "secret"})}
	bad := staticKeychain{authn.FromConfig(authn.AuthConfig{Username: "reader", Password: "wrong"})}

	tests := []struct {
		name     string
		keychain authn.Keychain
		wantErr  error
	}{
		{name: "credentials", keychain: good},
		{name: "wrong credentials", keychain: bad, wantErr: ErrUnauthorized},
		{name: "anonymous", wantErr: ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := NewClient(Options{PlainHTTP: true, Keychain: tt.keychain})
			_, err := client.Resolve(context.Background(), reg.repo, "1.0.0")
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Resolve: got error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

// TestRequestTimeout: a registry that stalls a response cannot hold a
// caller whose context has no deadline: the request times out and the
// error is ErrUnavailable. The control, the same registry answering, works
// with the same timeout.
func TestRequestTimeout(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stall=%v", stall), func(t *testing.T) {
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			reg := newTestRegistry(t, false, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if stall && strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet {
						select {
						case <-release:
						case <-r.Context().Done():
						}
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			reg.pushChart(t, buildChart(t, "1.0.0"))
			client := NewClient(Options{PlainHTTP: true, RequestTimeout: 300 * time.Millisecond})
			_, err := client.Resolve(context.Background(), reg.repo, "1.0.0")
			switch {
			case !stall && err != nil:
				t.Fatalf("control: Resolve: %v", err)
			case stall && !errors.Is(err, ErrUnavailable):
				t.Fatalf("Resolve against a stalled registry: got %v, want %v", err, ErrUnavailable)
			}
		})
	}
}

// TestClientReusesSession: the calls of one Client share one session — the
// registry is pinged once, not before every request — while a new Client
// starts a session of its own (credentials are read afresh).
func TestClientReusesSession(t *testing.T) {
	var pings atomic.Int32
	reg := newTestRegistry(t, false, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				pings.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	reg.pushChart(t, buildChart(t, "1.0.0"))
	pings.Store(0)
	client := NewClient(Options{PlainHTTP: true})
	for i := 0; i < 3; i++ {
		if _, err := client.Resolve(context.Background(), reg.repo, "1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	if got := pings.Load(); got != 1 {
		t.Errorf("pings for three calls of one client: got %d, want 1", got)
	}
	if _, err := NewClient(Options{PlainHTTP: true}).Resolve(context.Background(), reg.repo, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if got := pings.Load(); got != 2 {
		t.Errorf("pings after a second client: got %d, want 2", got)
	}
}
