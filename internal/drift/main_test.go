package drift

import (
	"fmt"
	"os"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cluster is the kube-apiserver and etcd the tests share, started by the
// first test that needs it and stopped by TestMain.
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

// testClient returns a client of the shared cluster, starting it on first
// use.
func testClient(t *testing.T) client.Client {
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
	c, err := client.New(cluster.config, client.Options{})
	if err != nil {
		t.Fatalf("client.New() error = %v", err)
	}
	return c
}

// testNamespace creates a namespace of its own for one test.
func testNamespace(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "drift-test-"}}
	if err := c.Create(t.Context(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}
