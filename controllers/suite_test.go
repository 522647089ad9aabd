package controllers_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/controllers"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/revocation"
	"github.com/chartproof/chartproof/internal/testworkload"
	"github.com/chartproof/chartproof/internal/tufroot"
)

// The suite runs the reconciler in a manager against a real kube-apiserver
// and etcd (envtest), with charts in go-containerregistry's in-process
// registry on loopback, behind a handler tests can make hostile.
var (
	k8s        client.Client
	restConfig *rest.Config
	scheme     = runtime.NewScheme()
	promReg    = prometheus.NewRegistry()
	regHost    string // host:port of the loopback registry
	kubeconfig string // path of a kubeconfig file for the test API server, as helm reads it
	tamper     = &tamperer{}
	// rollouts stands in for the deployment controller and the kubelets
	// envtest lacks: Deployments become available (testworkload).
	rollouts *testworkload.Rollouts
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run these tests with `make test`, which builds kube-apiserver and etcd")
		return 1
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true), zap.Level(zapLevel())))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		return 1
	}
	defer env.Stop()
	restConfig = cfg
	dir, err := os.MkdirTemp("", "chartproof-controllers-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		panic(err)
	}

	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, chartproofv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}

	srv := httptest.NewServer(tamper.wrap(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))))
	defer srv.Close()
	regHost = strings.TrimPrefix(srv.URL, "http://")

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		panic(err)
	}
	verifications, err := metrics.NewVerifications(promReg)
	if err != nil {
		panic(err)
	}
	tampered, err := metrics.NewRecordsTampered(promReg)
	if err != nil {
		panic(err)
	}
	driftMetrics, err := metrics.NewDrift(promReg)
	if err != nil {
		panic(err)
	}
	revocationMetrics, err := metrics.NewRevocation(promReg)
	if err != nil {
		panic(err)
	}
	releaseMetrics, err := metrics.NewReleases(promReg)
	if err != nil {
		panic(err)
	}
	registryMetrics, err := metrics.NewRegistry(promReg)
	if err != nil {
		panic(err)
	}
	cacheMetrics, err := metrics.NewCache(promReg)
	if err != nil {
		panic(err)
	}
	verifyCache := gate.NewCache(controllers.DefaultCacheTTL)
	verifyCache.Lookups = cacheMetrics
	tufDir, err := os.MkdirTemp("", "chartproof-tuf-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tufDir)
	tuf, err := tufroot.NewStore(tufDir, nil)
	if err != nil {
		panic(err)
	}
	r := &controllers.VerifiedHelmReleaseReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("chartproof"),
		// As the manager runs by default: no default ServiceAccount, so a
		// release that names none is refused. fixture.release names
		// testServiceAccount, which newNamespace grants every right in
		// its namespace and none elsewhere.
		Identities:        identity.NewFactory(cfg, identity.Options{Scheme: scheme, Writes: identity.NewWrites(identity.DefaultWritesTTL)}),
		Metrics:           verifications,
		RecordsTampered:   tampered,
		DriftMetrics:      driftMetrics,
		RevocationMetrics: revocationMetrics,
		ReleaseMetrics:    releaseMetrics,
		Registries:        &controllers.RegistryFactory{Metrics: registryMetrics},
		// Short, so the stalling-registry test ends quickly; loopback
		// verifications take milliseconds.
		VerifyTimeout: 10 * time.Second,
		// As the manager runs by default: every test passes through the
		// cache, so none can pass only because nothing was cached.
		Cache:      verifyCache,
		Revocation: revocation.New(nil),
		TUF:        tuf,
		// As the manager runs by default.
		WatchDeployed: true,
	}
	if err := controllers.Setup(mgr, r, controller.Options{MaxConcurrentReconciles: 4}); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if rollouts, err = testworkload.Start(ctx, cfg); err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		}
	}()
	code := m.Run()
	cancel()
	<-done
	return code
}

// zapLevel keeps test output to errors unless CHARTPROOF_TEST_LOG is set.
func zapLevel() zapcore.Level {
	if os.Getenv("CHARTPROOF_TEST_LOG") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// tamperer lets a test serve other bytes for one blob of one repository:
// the registry's storage changed under the same digest.
type tamperer struct {
	mu    sync.Mutex
	blobs map[string][]byte // "/v2/<repo>/blobs/<digest>" -> bytes to serve instead
	gets  map[string]int    // GET requests by URL path, for tests that count reads
}

// getCount is how many GET requests path has had.
func (t *tamperer) getCount(path string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gets[path]
}

func (t *tamperer) set(repo, digest string, body []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.blobs == nil {
		t.blobs = map[string][]byte{}
	}
	t.blobs["/v2/"+repo+"/blobs/"+digest] = body
}

func (t *tamperer) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			t.mu.Lock()
			if t.gets == nil {
				t.gets = map[string]int{}
			}
			t.gets[r.URL.Path]++
			body, ok := t.blobs[r.URL.Path]
			t.mu.Unlock()
			if ok {
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.Write(body)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// testServiceAccount is the ServiceAccount the fixture's releases act as.
const testServiceAccount = "release"

// newNamespace creates a namespace of its own for one test, in which its
// testServiceAccount may do anything (as a platform team would grant a
// tenant's releases their own namespace), and nothing elsewhere.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := newBareNamespace(t)
	grantNamespace(t, ns, ns, testServiceAccount)
	return ns
}

// newBareNamespace creates a namespace in which no ServiceAccount has any
// right.
func newBareNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// grantNamespace gives ServiceAccount saNamespace/sa every right in
// namespace ns: a Role and a RoleBinding. (envtest runs no controller
// manager, so the aggregated ClusterRoles admin and edit have no rules.)
func grantNamespace(t *testing.T, ns, saNamespace, sa string) {
	t.Helper()
	ctx := context.Background()
	name := "releases-" + saNamespace + "-" + sa
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNamespace, Name: sa}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The API server authorizes from its own watch of RBAC objects: wait
	// until it says the grant holds, so that a test acting as the account
	// at once is not refused.
	user := "system:serviceaccount:" + saNamespace + ":" + sa
	waitFor(t, waitTimeout, user+" may list secrets in "+ns, func() (bool, string) {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "secrets"},
		}}
		if err := k8s.Create(ctx, review); err != nil {
			return false, err.Error()
		}
		return review.Status.Allowed, review.Status.Reason
	})
}

// waitFor polls cond until it reports true, or fails the test after timeout
// with cond's last description of what it saw.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a condition wait
	}
}
