package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/controllers"
)

// namespaceReader lists only one namespace's TrustPolicies and no
// ClusterTrustPolicy: the policies of other tests sharing the API server
// stay out of this one's watches.
type namespaceReader struct {
	client.Client
	ns string
}

func (r namespaceReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*chartproofv1.ClusterTrustPolicyList); ok {
		return nil
	}
	return r.Client.List(ctx, list, append(opts, client.InNamespace(r.ns))...)
}

// TestTrustSourcesWatchedByName (issue 11, item 1: the manager does not
// cache every Secret of the cluster): the Secret a policy names is watched,
// by name, and its changes are delivered; a Secret beside it that no policy
// reads is not watched. Once the policy is gone, nothing is.
func TestTrustSourcesWatchedByName(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := newNamespace(t)
	for _, name := range []string{"ci-key", "unrelated"} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"k": []byte("v")}}
		if err := k8s.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := metadata.NewForConfig(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	w := controllers.NewSourceWatches(meta)
	go func() { _ = w.Start(ctx) }()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer queue.ShutDown()
	src := w.Source(func(kind string) handler.MapFunc {
		return func(_ context.Context, o client.Object) []ctrl.Request {
			return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: kind + "/" + o.GetName()}}}
		}
	})
	if err := src.Start(ctx, queue); err != nil {
		t.Fatal(err)
	}
	// next returns the name of the next request delivered.
	next := func() string {
		t.Helper()
		got := make(chan reconcile.Request, 1)
		go func() {
			if item, shutdown := queue.Get(); !shutdown {
				got <- item
			}
		}()
		var item reconcile.Request
		select {
		case item = <-got:
		case <-time.After(waitTimeout):
			t.Fatal("no request delivered")
		}
		queue.Done(item)
		queue.Forget(item)
		if item.Namespace != ns {
			t.Fatalf("request for namespace %s; want %s", item.Namespace, ns)
		}
		return item.Name
	}

	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "trusted"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{"example.com/*"},
			Authorities: []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{
				SecretRef: &chartproofv1.SecretKeyReference{Name: "ci-key"},
			}}},
		},
	}
	if err := k8s.Create(ctx, tp); err != nil {
		t.Fatal(err)
	}
	reader := namespaceReader{Client: k8s, ns: ns}
	if err := w.Sync(ctx, reader); err != nil {
		t.Fatal(err)
	}
	if got, want := w.Watching(), []string{"Secret/" + ns + "/ci-key"}; !slices.Equal(got, want) {
		t.Fatalf("watching %v; want %v", got, want)
	}
	// The watch's first list reports the Secret as it is.
	if got := next(); got != "Secret/ci-key" {
		t.Fatalf("first request %s; want Secret/ci-key", got)
	}
	// Versions says what the watch saw, which keys what the manager
	// compiles from the Secret (compiledPolicies); "" for one that does not
	// exist, and nothing for a key no watch has listed.
	key := "Secret/" + ns + "/ci-key"
	version := func(name string) string {
		var s corev1.Secret
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		return s.ResourceVersion
	}
	// The handler may hear of the first list a moment before the informer
	// says it has synced.
	waitFor(t, 10*time.Second, "the watch synced", func() (bool, string) {
		got, ok := w.Versions([]string{key})
		return ok, fmt.Sprintf("Versions = %v, %v", got, ok)
	})
	if got, ok := w.Versions([]string{key}); !ok || !slices.Equal(got, []string{version("ci-key")}) {
		t.Fatalf("Versions = %v, %v; want [%s], true", got, ok, version("ci-key"))
	}
	if got, ok := w.Versions([]string{key, "Secret/" + ns + "/unrelated"}); ok {
		t.Fatalf("Versions of an unwatched Secret = %v, true; want false", got)
	}

	// A change to the unrelated Secret, then one to the key's: only the
	// key's is delivered.
	for _, name := range []string{"unrelated", "ci-key"} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		patch := []byte(`{"data":{"k":"Y2hhbmdlZA=="}}`)
		if err := k8s.Patch(ctx, s, client.RawPatch("application/merge-patch+json", patch)); err != nil {
			t.Fatal(err)
		}
	}
	if got := next(); got != "Secret/ci-key" {
		t.Fatalf("request %s after both Secrets changed; want Secret/ci-key only", got)
	}
	// The event follows the watch's own copy: it has the new version.
	if got, ok := w.Versions([]string{key}); !ok || !slices.Equal(got, []string{version("ci-key")}) {
		t.Fatalf("Versions after the change = %v, %v; want [%s], true", got, ok, version("ci-key"))
	}
	if err := k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ci-key"}}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "Secret/ci-key" {
		t.Fatalf("request %s after the Secret was deleted; want Secret/ci-key", got)
	}
	if got, ok := w.Versions([]string{key}); !ok || !slices.Equal(got, []string{""}) {
		t.Fatalf("Versions of a deleted Secret = %v, %v; want [\"\"], true", got, ok)
	}

	if err := k8s.Delete(ctx, tp); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx, reader); err != nil {
		t.Fatal(err)
	}
	if got := w.Watching(); len(got) != 0 {
		t.Fatalf("watching %v after the policy was deleted; want nothing", got)
	}
	if got, ok := w.Versions([]string{key}); ok {
		t.Fatalf("Versions after the watch stopped = %v, true; want false", got)
	}
}
