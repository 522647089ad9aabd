package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// SourceWatches watches Secrets and ConfigMaps, each by its name: a field
// selector the API server applies, metadata only. NewSourceWatches watches
// those trust policies read (keys, trusted roots, keyrings): a change to one
// is a trust change that the policies reading it, and their releases, see at
// once. NewValuesWatches watches those releases read values from. The
// manager caches no other Secret or ConfigMap of the cluster to do this.
//
// Sync starts the watches wanted and stops those no longer wanted; each
// watch's events go to every subscriber (a controller's source).
type SourceWatches struct {
	client metadata.Interface
	// wants lists the keys ("Kind/namespace/name") to watch.
	wants func(ctx context.Context, reader client.Reader) (map[string]bool, error)
	// syncing makes each Sync list and apply at once: a Sync that listed
	// before a policy arrived must not stop the watch a later Sync started
	// for it.
	syncing sync.Mutex

	mu       sync.Mutex
	ctx      context.Context // ends when the manager stops
	stop     context.CancelFunc
	watching map[string]context.CancelFunc // by trustSources key
	stores   map[string]toolscache.SharedIndexInformer
	subs     []chan event.GenericEvent
}

// NewSourceWatches returns watches of what trust policies read, through
// client. Add it to the manager, so its watches stop with it.
func NewSourceWatches(client metadata.Interface) *SourceWatches {
	return newWatches(client, policySources)
}

// NewValuesWatches returns watches of the ConfigMaps and Secrets that
// releases read values from (spec.valuesFrom), through client: a change is
// applied at once, not at the release's interval. Add it to the manager.
func NewValuesWatches(client metadata.Interface) *SourceWatches {
	return newWatches(client, valuesSources)
}

func newWatches(client metadata.Interface, wants func(context.Context, client.Reader) (map[string]bool, error)) *SourceWatches {
	ctx, stop := context.WithCancel(context.Background())
	return &SourceWatches{client: client, wants: wants, ctx: ctx, stop: stop, watching: map[string]context.CancelFunc{},
		stores: map[string]toolscache.SharedIndexInformer{}}
}

// Start waits for the manager to stop, then stops every watch.
func (w *SourceWatches) Start(ctx context.Context) error {
	<-ctx.Done()
	w.stop()
	return nil
}

// Source is a controller source of the watched objects' changes, mapped to
// requests by toRequests(kind) ("Secret" or "ConfigMap"). Call it before the
// manager starts.
func (w *SourceWatches) Source(toRequests func(kind string) handler.MapFunc) source.Source {
	ch := make(chan event.GenericEvent, 64)
	w.mu.Lock()
	w.subs = append(w.subs, ch)
	w.mu.Unlock()
	return source.Channel(ch, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []ctrl.Request {
		return toRequests(o.GetObjectKind().GroupVersionKind().Kind)(ctx, o)
	}))
}

// policySources lists every Secret and ConfigMap that the policies in
// reader read (trustSources).
func policySources(ctx context.Context, reader client.Reader) (map[string]bool, error) {
	var tps chartproofv1.TrustPolicyList
	if err := reader.List(ctx, &tps); err != nil {
		return nil, fmt.Errorf("listing TrustPolicies: %w", err)
	}
	var ctps chartproofv1.ClusterTrustPolicyList
	if err := reader.List(ctx, &ctps); err != nil {
		return nil, fmt.Errorf("listing ClusterTrustPolicies: %w", err)
	}
	want := map[string]bool{}
	for _, tp := range tps.Items {
		for _, k := range trustSources(tp.Namespace, tp.Spec) {
			want[k] = true
		}
	}
	for _, ctp := range ctps.Items {
		for _, k := range trustSources("", ctp.Spec) {
			want[k] = true
		}
	}
	return want, nil
}

// valuesSources lists every ConfigMap and Secret that the releases in
// reader read values from.
func valuesSources(ctx context.Context, reader client.Reader) (map[string]bool, error) {
	var vhrs chartproofv1.VerifiedHelmReleaseList
	if err := reader.List(ctx, &vhrs); err != nil {
		return nil, fmt.Errorf("listing VerifiedHelmReleases: %w", err)
	}
	want := map[string]bool{}
	for i := range vhrs.Items {
		for _, k := range valuesKeys(&vhrs.Items[i]) {
			want[k] = true
		}
	}
	return want, nil
}

// valuesKeys are the keys ("Kind/namespace/name") of what obj reads values
// from.
func valuesKeys(obj *chartproofv1.VerifiedHelmRelease) []string {
	var keys []string
	for _, ref := range obj.Spec.ValuesFrom {
		keys = append(keys, ref.Kind+"/"+obj.Namespace+"/"+ref.Name)
	}
	return keys
}

// Sync watches every Secret and ConfigMap the watches want (what the
// policies, or the releases' valuesFrom, in reader read), and no other.
func (w *SourceWatches) Sync(ctx context.Context, reader client.Reader) error {
	w.syncing.Lock()
	defer w.syncing.Unlock()
	want, err := w.wants(ctx, reader)
	if err != nil {
		return err
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	for k, stop := range w.watching {
		if !want[k] {
			stop()
			delete(w.watching, k)
			delete(w.stores, k)
		}
	}
	for k := range want {
		if w.watching[k] == nil {
			w.watching[k], w.stores[k] = w.watch(k)
		}
	}
	return nil
}

// Versions returns the resourceVersion of each Secret or ConfigMap named by
// keys (trustSources keys) as its watch last saw it, "" for one that does
// not exist, and false when one is not watched or its watch has not listed
// yet. A watch sees a change shortly after the API server made it, and the
// change's event follows: a caller that keys what it derived from these
// objects by their versions may use it until the event arrives, as a read
// made a moment earlier would have.
func (w *SourceWatches) Versions(keys []string) ([]string, bool) {
	if w == nil {
		return nil, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(keys))
	for i, k := range keys {
		inf := w.stores[k]
		if inf == nil || !inf.HasSynced() {
			return nil, false
		}
		_, rest, _ := strings.Cut(k, "/")
		namespace, name, _ := strings.Cut(rest, "/")
		o, exists, err := inf.GetStore().GetByKey(namespace + "/" + name)
		if err != nil {
			return nil, false
		}
		if exists {
			m, ok := o.(*metav1.PartialObjectMetadata)
			if !ok {
				return nil, false
			}
			out[i] = m.ResourceVersion
		}
	}
	return out, true
}

// Watched reports whether every key is watched.
func (w *SourceWatches) Watched(keys []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range keys {
		if w.watching[k] == nil {
			return false
		}
	}
	return true
}

// Watching lists the keys watched, sorted.
func (w *SourceWatches) Watching() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([]string, 0, len(w.watching))
	for k := range w.watching {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// watch starts a watch of one Secret or ConfigMap, key "Kind/namespace/name",
// and returns what stops it and its informer. Its first list reports the object when it
// exists: the releases of a policy that has just started to read it look
// again, so a change made between their last read and the watch is not missed.
func (w *SourceWatches) watch(key string) (context.CancelFunc, toolscache.SharedIndexInformer) {
	kind, rest, _ := strings.Cut(key, "/")
	namespace, name, _ := strings.Cut(rest, "/")
	gvk := corev1.SchemeGroupVersion.WithKind(kind)
	gvr := corev1.SchemeGroupVersion.WithResource(strings.ToLower(kind) + "s")
	inf := metadatainformer.NewFilteredMetadataInformer(w.client, gvr, namespace, 0, toolscache.Indexers{},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}).Informer()
	ctx, stop := context.WithCancel(w.ctx)
	send := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return
		}
		m = m.DeepCopy()
		m.SetGroupVersionKind(gvk)
		for _, ch := range w.subscribers() {
			select {
			case ch <- event.GenericEvent{Object: m}:
			case <-ctx.Done():
				return
			}
		}
	}
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: send,
		UpdateFunc: func(old, obj any) {
			o, n := old.(*metav1.PartialObjectMetadata), obj.(*metav1.PartialObjectMetadata)
			if o.ResourceVersion != n.ResourceVersion {
				send(obj)
			}
		},
		DeleteFunc: send,
	})
	go inf.RunWithContext(ctx)
	return stop, inf
}

func (w *SourceWatches) subscribers() []chan event.GenericEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.subs)
}
