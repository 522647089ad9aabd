package release

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"
	"helm.sh/helm/v3/pkg/action"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// cluster is the kube-apiserver and etcd the integration tests share. It is
// started by the first test that needs it and stopped by TestMain, so the
// post-renderer's unit tests run without it.
var cluster struct {
	once   sync.Once
	env    *envtest.Environment
	config *rest.Config
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster.env != nil && cluster.config != nil {
		if err := cluster.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping kube-apiserver and etcd: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// testCluster returns the rest.Config of the shared kube-apiserver, starting
// it on first use.
func testCluster(t *testing.T) *rest.Config {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: this test needs a kube-apiserver and etcd; " +
			"run it with `make test`, or set KUBEBUILDER_ASSETS=$(hack/tools.sh envtest-assets)")
	}
	cluster.once.Do(func() {
		cluster.env = &envtest.Environment{}
		cluster.config, cluster.err = cluster.env.Start()
	})
	if cluster.err != nil {
		t.Fatalf("starting kube-apiserver and etcd: %v", cluster.err)
	}
	return cluster.config
}

// testClient returns a controller-runtime client of the shared cluster.
func testClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(testCluster(t), client.Options{})
	if err != nil {
		t.Fatalf("client.New() error = %v", err)
	}
	return c
}

// testNamespace creates a namespace of its own for one test.
func testNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "release-test-"}}
	if err := testClient(t).Create(t.Context(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// testContext returns the test's context carrying a logger that writes
// through t, Helm's debug output included.
func testContext(t *testing.T) context.Context {
	return logf.IntoContext(t.Context(), testr.NewWithOptions(t, testr.Options{Verbosity: 1}))
}

// helmCLI returns an action.Configuration built the way the helm CLI builds
// one, from a kubeconfig file and --namespace, with none of this package's
// code: what it sees is what `helm list` would see.
func helmCLI(t *testing.T, namespace string) *action.Configuration {
	t.Helper()
	testCluster(t)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, cluster.env.KubeConfig, 0o600); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}
	cacheDir := filepath.Join(dir, "cache")
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	flags.Namespace = &namespace
	flags.CacheDir = &cacheDir
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", t.Logf); err != nil {
		t.Fatalf("action.Configuration.Init() error = %v", err)
	}
	return cfg
}
