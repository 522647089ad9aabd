package admission_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	cpadmission "github.com/chartproof/chartproof/internal/admission"
	"github.com/chartproof/chartproof/internal/testwebhook"
)

// TestRotationUnderTraffic (issue 16, item 2): the real kube-apiserver
// calls the webhook over TLS, trusting only the CA bundle Certificates
// writes into config/webhook's configuration, while two replicas of it
// rotate the CA every few seconds (validities shortened from a year to
// seconds), one of them lagging, and four clients keep sending requests the
// webhook decides. Every request gets the webhook's decision: none fails on
// TLS across at least two CA rotations, because the old CA stays in the
// bundle while a replica may still serve what it signed.
func TestRotationUnderTraffic(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run these tests with `make test`, which builds kube-apiserver and etcd")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	k8s, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// Two replicas share the Secret; one checks it every 100 ms, the
	// other every 1.5 s, so it serves a stale certificate for a while
	// after each rotation. The server answers each connection with one or
	// the other in turn, as a Service spreads connections over pods.
	replica := func(interval time.Duration) *cpadmission.Certificates {
		return &cpadmission.Certificates{Client: k8s, Secret: types.NamespacedName{Namespace: "default", Name: "chartproof-webhook-tls"},
			Configuration: "chartproof", Hosts: []string{"127.0.0.1"},
			CAValidity: 12 * time.Second, CARenewBefore: 8 * time.Second, CertValidity: 6 * time.Second, CertRenewBefore: 3 * time.Second,
			Propagation: 2 * time.Second, Interval: interval}
	}
	replicas := []*cpadmission.Certificates{replica(100 * time.Millisecond), replica(1500 * time.Millisecond)}
	var turn atomic.Int64
	port := freeTCPPort(t)
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				return replicas[turn.Add(1)%2].GetCertificate(hello)
			}
		}}})
	guard := &cpadmission.OwnedObjects{Releases: func(context.Context, string) (cpadmission.Actor, bool, error) {
		return cpadmission.Actor{}, false, nil
	}}
	srv.Register(cpadmission.OwnedObjectsPath, guard.Webhook())
	go func() { _ = srv.Start(ctx) }()
	registerConfiguration(t, k8s, port)
	for _, r := range replicas {
		go func() { _ = r.Start(ctx) }()
	}

	// What the clients send: a dry-run create of an object carrying the
	// owner label, which the webhook refuses (no release has that UID).
	probe := func() error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "probe-",
			Labels: map[string]string{chartproofv1.LabelOwner: "0f0e0d0c-0000-0000-0000-000000000000"}}}
		err := k8s.Create(ctx, cm, client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), chartproofv1.ReasonOwnedObjectProtected) {
			return nil
		}
		return fmt.Errorf("not the webhook's decision: %v", err)
	}
	// Live: the first decision arrives once the bundle is written.
	deadline := time.Now().Add(30 * time.Second)
	for probe() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the webhook never decided: %v", probe())
		}
		time.Sleep(50 * time.Millisecond)
	}

	var (
		decided, failed atomic.Int64
		firstErr        atomic.Value
		wg              sync.WaitGroup
		cas             = map[string]bool{} // the CAs that signed what was served
		stop            = time.Now().Add(14 * time.Second)
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := probe(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					decided.Add(1)
				}
			}
		}()
	}
	for time.Now().Before(stop) {
		for _, r := range replicas {
			if served, err := r.GetCertificate(nil); err == nil {
				if leaf, err := x509.ParseCertificate(served.Certificate[0]); err == nil {
					cas[string(leaf.AuthorityKeyId)] = true
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed across the rotations; first: %v", failed.Load(), failed.Load()+decided.Load(), firstErr.Load())
	}
	if len(cas) < 3 {
		t.Errorf("serving certificates from %d CAs; want at least 3 (two rotations)", len(cas))
	}
	t.Logf("%d requests decided, serving certificates from %d CAs", decided.Load(), len(cas))
}

// registerConfiguration creates config/webhook's configuration, calling
// the webhook on 127.0.0.1:port, without a CA bundle.
func registerConfiguration(t *testing.T, k8s client.Client, port int) {
	t.Helper()
	cfg, err := testwebhook.Loopback(filepath.Join("..", ".."), port)
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
