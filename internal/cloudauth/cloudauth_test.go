package cloudauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/cache"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/chartproof/chartproof/internal/cloudauth"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

const (
	gcpHost  = "europe-docker.pkg.dev"
	gcpRepo  = gcpHost + "/project/charts/hello"
	gcpToken = "ya29.chartproof-test-token"
)

// fakeGCE serves the token endpoint of the GCE metadata server, as the
// workload identity of a GKE pod answers it, and points the Google client
// libraries at it (GCE_METADATA_HOST) with no other credentials around.
func fakeGCE(t *testing.T) *int {
	t.Helper()
	var served int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "no Metadata-Flavor", http.StatusForbidden)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/instance/service-accounts/default/token") {
			http.NotFound(w, r)
			return
		}
		served++
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": gcpToken, "expires_in": 3600, "token_type": "Bearer"})
	}))
	t.Cleanup(srv.Close)
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv("HOME", t.TempDir()) // no gcloud application default credentials
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	if err := os.Unsetenv("GOOGLE_APPLICATION_CREDENTIALS"); err != nil {
		t.Fatal(err)
	}
	return &served
}

// artifactRegistry serves a registry that only Artifact Registry's login
// opens (user oauth2accesstoken, the access token as password), reached as
// gcpHost through the returned transport. It holds chart hello 1.0.0 at
// gcpRepo.
func artifactRegistry(t *testing.T) http.RoundTripper {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "oauth2accesstoken" || pass != gcpToken {
			w.Header().Set("WWW-Authenticate", `Basic realm="artifact registry"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	dialer := &net.Dialer{}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		if strings.HasPrefix(a, gcpHost+":") {
			a = addr
		}
		return dialer.DialContext(ctx, network, a)
	}
	archive, err := testchart.Archive("hello", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	push := testsign.Registry{Host: addr, Options: []remote.Option{remote.WithAuth(&authn.Basic{Username: "oauth2accesstoken", Password: gcpToken})}}
	if _, err := push.PushChart("project/charts/hello", "1.0.0", archive, "hello", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	return transport
}

// TestGCPWorkloadIdentity: with provider gcp, chartproof logs in to an
// Artifact Registry host as the pod's workload identity does: the token
// the (local) metadata server issues, as user oauth2accesstoken. The chart
// resolves; its twin without the provider's keychain is unauthorized.
func TestGCPWorkloadIdentity(t *testing.T) {
	served := fakeGCE(t)
	transport := artifactRegistry(t)
	repo, err := oci.ParseRepository("oci://" + gcpRepo)
	if err != nil {
		t.Fatal(err)
	}
	// The control twin: no cloud login.
	anon := oci.NewClient(oci.Options{PlainHTTP: true, Transport: transport})
	if _, err := anon.Resolve(context.Background(), repo, "1.0.0"); !errors.Is(err, oci.ErrUnauthorized) {
		t.Fatalf("Resolve without the provider: %v, want ErrUnauthorized", err)
	}
	c, err := cloudauth.NewCache(8)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		kc, err := cloudauth.Keychain(context.Background(), "gcp", gcpRepo, c, cache.InvolvedObject{Kind: "VerifiedHelmRelease", Name: "app", Namespace: "team", Operation: "pull"})
		if err != nil {
			t.Fatal(err)
		}
		client := oci.NewClient(oci.Options{PlainHTTP: true, Transport: transport, Keychain: kc})
		if _, err := client.Resolve(context.Background(), repo, "1.0.0"); err != nil {
			t.Fatalf("Resolve with provider gcp: %v", err)
		}
	}
	if *served != 1 {
		t.Errorf("the metadata server issued %d tokens for two logins, want 1 (the cache keeps it)", *served)
	}
}

// TestKeychainScope: a provider's credentials are for its own registry
// hosts: another host is refused when the keychain is made, and the
// keychain answers anonymously for any host but the repository's.
func TestKeychainScope(t *testing.T) {
	fakeGCE(t)
	for _, tc := range []struct{ provider, repo string }{
		{"aws", "registry.example.com/charts/hello"},
		{"azure", "registry.example.com/charts/hello"},
		{"gcp", "registry.example.com/charts/hello"},
		{"gcp", "123456789012.dkr.ecr.us-east-1.amazonaws.com/charts/hello"},
		{"other", gcpRepo},
	} {
		if _, err := cloudauth.Keychain(context.Background(), tc.provider, tc.repo, nil, cache.InvolvedObject{}); err == nil {
			t.Errorf("Keychain(%s, %s) accepted a host that is not the provider's", tc.provider, tc.repo)
		}
	}
	for _, ok := range []struct{ provider, repo string }{
		{"aws", "123456789012.dkr.ecr.us-east-1.amazonaws.com/charts/hello"},
		{"azure", "team.azurecr.io/charts/hello"},
		{"gcp", gcpRepo},
	} {
		kc, err := cloudauth.Keychain(context.Background(), ok.provider, ok.repo, nil, cache.InvolvedObject{})
		if err != nil {
			t.Fatalf("Keychain(%s, %s): %v", ok.provider, ok.repo, err)
		}
		other, err := name.NewRegistry("attacker.example")
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(other)
		if err != nil || a != authn.Anonymous {
			t.Errorf("%s keychain for another host: %v, %v; want anonymous", ok.provider, a, err)
		}
	}
}
