package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/releaseutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/identity"
)

// uidIndex indexes VerifiedHelmReleases by UID: the value of the owner label
// on what they deployed.
const uidIndex = ".metadata.uid"

// ObjectWatches watches the objects releases deployed, so that a change
// wakes the release that deployed it at once (issue 11, item 1). Each kind
// is watched from the first time a release deploys one, in a cache of its
// own that the API server scopes by label (objects carrying
// chartproofv1.LabelOwner) and that holds metadata only, managed fields
// stripped: the manager never caches every Secret, ConfigMap or Pod of the
// cluster to do this.
//
// The label only routes events: whoever may label an object can wake a
// release, nothing more; what is compared is the release's own rendering.
type ObjectWatches struct {
	cache   cache.Cache
	ctrl    controller.Controller
	handler handler.TypedEventHandler[*metav1.PartialObjectMetadata, ctrl.Request]

	mu    sync.Mutex
	kinds map[schema.GroupVersionKind]bool
}

// +kubebuilder:rbac:groups=*,resources=*,verbs=list;watch

// newObjectWatches builds the label-scoped metadata cache, adds it to the
// manager, and routes its events to c through r.
func newObjectWatches(mgr ctrl.Manager, c controller.Controller, r *VerifiedHelmReleaseReconciler) (*ObjectWatches, error) {
	owned, err := labels.NewRequirement(chartproofv1.LabelOwner, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	objCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: labels.NewSelector().Add(*owned),
		DefaultTransform:     cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(objCache); err != nil {
		return nil, err
	}
	return &ObjectWatches{
		cache:   objCache,
		ctrl:    c,
		handler: settleOwnWrites{writes: r.Identities.Writes(), next: handler.TypedEnqueueRequestsFromMapFunc(r.releaseOfObject)},
		kinds:   map[schema.GroupVersionKind]bool{},
	}, nil
}

// ensure watches every kind of gvks not watched yet.
func (w *ObjectWatches) ensure(gvks []schema.GroupVersionKind) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, gvk := range gvks {
		if w.kinds[gvk] {
			continue
		}
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		if err := w.ctrl.Watch(source.Kind(w.cache, obj, w.handler, objectChanged{since: time.Now()})); err != nil {
			return fmt.Errorf("watching %s: %w", gvk, err)
		}
		w.kinds[gvk] = true
	}
	return nil
}

// objectChanged lets through what may be drift: deletions, and updates that
// changed more than status (a new generation, or, for kinds without one
// such as ConfigMaps, a new resourceVersion; labels, annotations,
// finalizers, owners). A Deployment's status churn is dropped, and so are
// creations after the watch started: a release's objects are created by its
// own installs and corrections, which check what they wrote. What the
// watch's first list finds (objects created before it started) does wake
// their release: an object edited between the release's last check and the
// start of the watch of its kind is seen only there.
type objectChanged struct {
	predicate.TypedFuncs[*metav1.PartialObjectMetadata]
	since time.Time // when the watch started
}

func (objectChanged) Update(e event.TypedUpdateEvent[*metav1.PartialObjectMetadata]) bool {
	o, n := e.ObjectOld, e.ObjectNew
	if o == nil || n == nil {
		return true
	}
	if n.GetGeneration() == 0 {
		return o.GetResourceVersion() != n.GetResourceVersion()
	}
	return o.GetGeneration() != n.GetGeneration() ||
		!equalStrings(o.GetLabels(), n.GetLabels()) || !equalStrings(o.GetAnnotations(), n.GetAnnotations()) ||
		!sameList(o.GetFinalizers(), n.GetFinalizers()) || len(o.GetOwnerReferences()) != len(n.GetOwnerReferences()) ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
}

func (p objectChanged) Create(e event.TypedCreateEvent[*metav1.PartialObjectMetadata]) bool {
	// creationTimestamp has a precision of one second.
	return e.Object != nil && e.Object.GetCreationTimestamp().Time.Before(p.since.Add(time.Second))
}

func (objectChanged) Delete(event.TypedDeleteEvent[*metav1.PartialObjectMetadata]) bool { return true }

func (objectChanged) Generic(event.TypedGenericEvent[*metav1.PartialObjectMetadata]) bool {
	return false
}

// ownWriteSettle is how long an event that may be the echo of a write
// still under way waits for that write's answer (identity.Writes.Settling).
const ownWriteSettle = 250 * time.Millisecond

// settleOwnWrites passes events on to next, which drops the echoes of
// chartproof's own writes (identity.Writes.Ours, checked when it maps an
// object to its release). A creation or update that arrives while a write
// to its namespace is still under way is passed on ownWriteSettle later:
// the API server may send it before the answer that says which version
// chartproof wrote. Deletions always pass at once.
type settleOwnWrites struct {
	writes *identity.Writes
	next   handler.TypedEventHandler[*metav1.PartialObjectMetadata, ctrl.Request]
}

func (h settleOwnWrites) Create(ctx context.Context, e event.TypedCreateEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[ctrl.Request]) {
	h.settle(e.Object, func() { h.next.Create(ctx, e, q) })
}

func (h settleOwnWrites) Update(ctx context.Context, e event.TypedUpdateEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[ctrl.Request]) {
	h.settle(e.ObjectNew, func() { h.next.Update(ctx, e, q) })
}

func (h settleOwnWrites) Delete(ctx context.Context, e event.TypedDeleteEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[ctrl.Request]) {
	h.next.Delete(ctx, e, q)
}

func (h settleOwnWrites) Generic(ctx context.Context, e event.TypedGenericEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[ctrl.Request]) {
	h.next.Generic(ctx, e, q)
}

func (h settleOwnWrites) settle(o *metav1.PartialObjectMetadata, pass func()) {
	if o != nil && !ownWrite(h.writes, o) && h.writes.Settling(o.GetNamespace()) {
		time.AfterFunc(ownWriteSettle, pass)
		return
	}
	pass()
}

// ownWrite reports whether o is at a version chartproof's own request
// wrote; deleted objects never are (a deletion a watch missed is reported
// with the object's last state, which may be one chartproof wrote).
func ownWrite(w *identity.Writes, o *metav1.PartialObjectMetadata) bool {
	return o.GetDeletionTimestamp() == nil && w.Ours(o.GetUID(), o.GetResourceVersion())
}

func equalStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameList(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// releaseOfObject maps an object to the release whose UID its owner label
// holds, and notes when the event woke it (time to detect).
func (r *VerifiedHelmReleaseReconciler) releaseOfObject(ctx context.Context, o *metav1.PartialObjectMetadata) []ctrl.Request {
	uid := o.GetLabels()[chartproofv1.LabelOwner]
	if uid == "" {
		return nil
	}
	// The echo of the release's own write (the owner label names the
	// release whose rendering wrote it: the post-renderer sets it).
	if ownWrite(r.Identities.Writes(), o) {
		return nil
	}
	var list chartproofv1.VerifiedHelmReleaseList
	if err := r.List(ctx, &list, client.MatchingFields{uidIndex: uid}); err != nil {
		log.FromContext(ctx).Error(err, "listing the release of a deployed object", "uid", uid)
		return nil
	}
	if len(list.Items) > 0 {
		r.drift().wake(types.UID(uid), time.Now())
	}
	return requestsFor(list)
}

// ownerUnlabelled reports whether a release's manifest has objects and none
// carries the owner label: chartproof rendered it before it labelled what it
// renders, so the watches cannot see them. (Once chartproof renders a
// manifest, every object in it carries the label.)
func ownerUnlabelled(manifest string) bool {
	if strings.Contains(manifest, chartproofv1.LabelOwner) {
		return false
	}
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind  string `json:"kind"`
			Items *[]any `json:"items"`
		}
		if yaml.Unmarshal([]byte(doc), &head) != nil || head.Kind == "" {
			continue
		}
		// The post-renderer labels a list's items, not the list: an
		// empty list has nothing to label.
		if head.Items == nil || len(*head.Items) > 0 {
			return true
		}
	}
	return false
}
