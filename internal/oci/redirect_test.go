package oci

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/chartproof/chartproof/internal/limits"
)

// redirectBlob answers GET of the blob digest with a 302 to target.
func redirectBlob(digest string, target func() string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isGet(r, "/blobs/"+digest) {
				http.Redirect(w, r, target(), http.StatusFound)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestRedirectToPlainHTTPRefused (THREATS REG-11): a registry behind TLS
// that redirects the chart layer to a plain-HTTP URL is not followed there:
// the read fails as ErrUnavailable, saying only https is allowed, and the
// plain-HTTP server sees no request. The control twin redirects to an
// https URL on the same registry and the layer is read.
func TestRedirectToPlainHTTPRefused(t *testing.T) {
	c := buildChart(t, "1.0.0")
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "control: redirect to https", true: "redirect to http"}[plain], func(t *testing.T) {
			var plainHits atomic.Int32
			plainSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				plainHits.Add(1)
				_, _ = w.Write(c.Archive)
			}))
			t.Cleanup(plainSrv.Close)
			var reg *testRegistry
			target := func() string {
				if plain {
					return plainSrv.URL + "/blob"
				}
				return reg.srv.URL + "/elsewhere"
			}
			reg = newTLSRegistry(t, func(next http.Handler) http.Handler {
				redirect := redirectBlob(c.Layout.Chart.Digest.String(), target)(next)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/elsewhere" {
						_, _ = w.Write(c.Archive)
						return
					}
					redirect.ServeHTTP(w, r)
				})
			})
			reg.pushChart(t, c)

			got, err := reg.client.Blob(context.Background(), reg.repo, c.Layout.Chart, limits.MaxChartLayerBytes)
			if !plain {
				if err != nil || string(got) != string(c.Archive) {
					t.Fatalf("Blob: got %d bytes, error %v; want the archive", len(got), err)
				}
				return
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "only https is allowed") {
				t.Fatalf("Blob: got error %v, want one wrapping %v that says only https is allowed", err, ErrUnavailable)
			}
			if got != nil {
				t.Errorf("Blob: got %d bytes with the error, want none", len(got))
			}
			if n := plainHits.Load(); n != 0 {
				t.Errorf("requests that reached the plain-HTTP server: got %d, want 0", n)
			}
		})
	}
}

// TestRedirectDoesNotForwardCredentials (THREATS REG-11): a registry that
// requires credentials and redirects the chart layer to another host (as
// registries do to a storage bucket) gets them; the other host does not,
// and the layer it serves is still checked against its digest. The control
// twin redirects to the registry's own host, which gets them again.
func TestRedirectDoesNotForwardCredentials(t *testing.T) {
	c := buildChart(t, "1.0.0")
	const user, pass = "reader", "secret"
	for _, crossHost := range []bool{false, true} {
		t.Run(map[bool]string{false: "control: same host", true: "another host"}[crossHost], func(t *testing.T) {
			var (
				mu   sync.Mutex
				seen []string // Authorization headers the redirect target received
			)
			serveBlob := func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Header.Get("Authorization"))
				mu.Unlock()
				_, _ = w.Write(c.Archive)
			}
			storage := httptest.NewTLSServer(http.HandlerFunc(serveBlob))
			t.Cleanup(storage.Close)
			var reg *testRegistry
			target := func() string {
				if crossHost {
					return storage.URL + "/bucket/blob"
				}
				return reg.srv.URL + "/bucket/blob"
			}
			reg = newTLSRegistry(t, func(next http.Handler) http.Handler {
				redirect := redirectBlob(c.Layout.Chart.Digest.String(), target)(next)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/bucket/blob" {
						serveBlob(w, r)
						return
					}
					if u, p, ok := r.BasicAuth(); r.Method == http.MethodGet && (!ok || u != user || p != pass) {
						w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
						w.WriteHeader(http.StatusUnauthorized)
						return
					}
					redirect.ServeHTTP(w, r)
				})
			})
			reg.pushChart(t, c)
			client := NewClient(Options{
				Transport: reg.srv.Client().Transport, // trusts the certificate both servers share
				Keychain:  staticKeychain{authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})},
			})

			got, err := client.Blob(context.Background(), reg.repo, c.Layout.Chart, limits.MaxChartLayerBytes)
			if err != nil || string(got) != string(c.Archive) {
				t.Fatalf("Blob: got %d bytes, error %v; want the archive", len(got), err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 {
				t.Fatalf("requests at the redirect target: got %d, want 1", len(seen))
			}
			if crossHost && seen[0] != "" {
				t.Errorf("Authorization sent to another host: got %q, want none", seen[0])
			}
			if !crossHost && seen[0] == "" {
				t.Error("control: no Authorization on a redirect to the registry's own host; the test does not exercise credentials")
			}
		})
	}
}
