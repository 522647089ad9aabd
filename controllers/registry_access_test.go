package controllers_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/controllers"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestRegistryTLSAndCredentials: a registry behind TLS with its own CA
// (chart.certSecretRef) and one behind basic auth (chart.secretRef, a
// dockerconfigjson Secret). Each installs with the reference set; its twin
// without the reference is refused with the code that says why.
func TestRegistryTLSAndCredentials(t *testing.T) {
	quiet := registry.Logger(log.New(io.Discard, "", 0))
	tests := []struct {
		name     string
		start    func(t *testing.T) (host string, push []remote.Option, secret *corev1.Secret, set func(*chartproofv1.ChartSource))
		wantCode string
		inconc   bool
	}{
		{
			name: "TLS with a private CA",
			start: func(t *testing.T) (string, []remote.Option, *corev1.Secret, func(*chartproofv1.ChartSource)) {
				srv := httptest.NewTLSServer(registry.New(quiet))
				t.Cleanup(srv.Close)
				ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
				secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "registry-ca"}, Data: map[string][]byte{"ca.crt": ca}}
				return strings.TrimPrefix(srv.URL, "https://"), []remote.Option{remote.WithTransport(srv.Client().Transport)}, secret,
					func(c *chartproofv1.ChartSource) {
						c.CertSecretRef = &chartproofv1.LocalObjectReference{Name: "registry-ca"}
					}
			},
			wantCode: chartproofv1.ReasonRegistryUnavailable, inconc: true, // the certificate cannot be checked
		},
		{
			name: "basic auth",
			start: func(t *testing.T) (string, []remote.Option, *corev1.Secret, func(*chartproofv1.ChartSource)) {
				srv := httptest.NewServer(basicAuth("ci", "s3cret", registry.New(quiet)))
				t.Cleanup(srv.Close)
				host := strings.TrimPrefix(srv.URL, "http://")
				auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
				cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
				secret := &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: "registry-creds"},
					Type:       corev1.SecretTypeDockerConfigJson,
					Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(cfg)},
				}
				push := []remote.Option{remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"})}
				return host, push, secret, func(c *chartproofv1.ChartSource) {
					c.Insecure = true
					c.SecretRef = &chartproofv1.LocalObjectReference{Name: "registry-creds"}
				}
			},
			wantCode: chartproofv1.ReasonRegistryUnauthorized,
		},
	}
	for _, tc := range tests {
		for _, withRef := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/reference=%v", tc.name, withRef), func(t *testing.T) {
				f := newFixture(t)
				host, push, secret, set := tc.start(t)
				f.useRegistry(testsign.Registry{Host: host, Options: push})
				digest := f.push("1.0.0")
				f.signLegacy(digest, f.key)
				secret.Namespace = f.ns
				if err := k8s.Create(context.Background(), secret); err != nil {
					t.Fatal(err)
				}
				f.policy("trusted", f.key, "", host+"/**")
				f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
					v.Spec.Chart = chartproofv1.ChartSource{URL: f.url(), Version: "1.0.0"}
					set(&v.Spec.Chart)
					if !withRef {
						v.Spec.Chart.CertSecretRef, v.Spec.Chart.SecretRef = nil, nil
					}
				})
				if withRef {
					vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
					if vhr.Status.Installed.Digest != digest {
						t.Fatalf("installed %s, want %s", vhr.Status.Installed.Digest, digest)
					}
					return
				}
				status := metav1.ConditionFalse
				if tc.inconc {
					status = metav1.ConditionUnknown
				}
				f.waitCondition("app", chartproofv1.ConditionVerified, status, tc.wantCode)
				if cm := f.configMap("app"); cm != nil {
					t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
				}
			})
		}
	}
}

// basicAuth demands user:password on every request, as a registry with
// basic auth does.
func basicAuth(user, password string, h http.Handler) http.Handler {
	want := sha256.Sum256([]byte(user + ":" + password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if got := sha256.Sum256([]byte(u + ":" + p)); !ok || got != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// TestRegistryConnectionsReused: registry clients built for successive
// reconciles share one HTTP transport per CA bundle, so they reuse one
// connection instead of opening (and leaving idle) one each. Five clients
// resolving a tag one after the other open one TLS connection.
func TestRegistryConnectionsReused(t *testing.T) {
	ns := newNamespace(t)
	var mu sync.Mutex
	opened := 0
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			opened++
			mu.Unlock()
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	reg := testsign.Registry{Host: host, Options: []remote.Option{remote.WithTransport(srv.Client().Transport)}}
	archive, err := testchart.Archive("hello", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.PushChart("charts/hello", "1.0.0", archive, "hello", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "registry-ca"}, Data: map[string][]byte{"ca.crt": ca}}); err != nil {
		t.Fatal(err)
	}
	obj := &chartproofv1.VerifiedHelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: chartproofv1.VerifiedHelmReleaseSpec{
		Chart: chartproofv1.ChartSource{URL: "oci://" + host + "/charts/hello", Version: "1.0.0",
			CertSecretRef: &chartproofv1.LocalObjectReference{Name: "registry-ca"}},
	}}
	repo, err := oci.ParseRepository(obj.Spec.Chart.URL)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	opened = 0 // the push's connections
	mu.Unlock()
	f := &controllers.RegistryFactory{}
	for i := range 5 {
		c, err := f.Client(context.Background(), k8s, obj)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Resolve(context.Background(), repo, "1.0.0"); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if opened != 1 {
		t.Errorf("five clients opened %d connections, want 1 (shared transport, kept alive)", opened)
	}
}
