// Package controllers holds chartproof's reconcilers. Each observes, picks
// one action, calls internal/ to do it and writes status; decisions about
// trust are made by internal/policy alone.
package controllers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/prometheus/client_golang/prometheus"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/release"
	"github.com/chartproof/chartproof/internal/revocation"
	"github.com/chartproof/chartproof/internal/tufroot"
	"github.com/chartproof/chartproof/internal/verify"
)

// Finalizer makes deletion of a VerifiedHelmRelease uninstall its release.
const Finalizer = "delivery.chartproof.dev/finalizer"

// policyRefIndex indexes VerifiedHelmReleases by "Kind/name" of their policy.
const policyRefIndex = ".spec.trustPolicyRef"

// releaseIndex indexes releases by the Helm release they act on:
// "targetNamespace/releaseName".
const releaseIndex = ".spec.release"

// recordReleaseIndex indexes Helm release records (the watch of them, owner=helm)
// by "<namespace>/<Helm release name>".
const recordReleaseIndex = "helmRelease"

// DefaultVerifyTimeout is the VerifyTimeout of a zero reconciler.
const DefaultVerifyTimeout = 2 * time.Minute

// verifyContext bounds one verification or chart read.
func (r *VerifiedHelmReleaseReconciler) verifyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cmp.Or(r.VerifyTimeout, DefaultVerifyTimeout))
}

// retryInconclusive is how soon an inconclusive verification is retried
// when the interval is longer.
const retryInconclusive = 30 * time.Second

// VerifiedHelmReleaseReconciler installs charts that verify and keeps
// verifying them.
type VerifiedHelmReleaseReconciler struct {
	client.Client
	// APIReader reads Secrets and ConfigMaps uncached: the manager watches
	// their metadata only, never caching their data.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Identities gives each release the clients that act for it, as its
	// ServiceAccount: every Helm action and every read of its values.
	Identities *identity.Factory
	Metrics    gate.Observer
	// RecordsTampered counts Helm records found rewritten
	// (chartproof_release_records_tampered_total); nil counts nothing.
	RecordsTampered prometheus.Counter
	// Registries builds the registry client for a release.
	Registries *RegistryFactory
	// Now is the clock; zero means time.Now.
	Now func() time.Time
	// VerifyTimeout bounds one verification (or one chart read), registry
	// round trips included, so a slow registry cannot hold a worker; it
	// then ends inconclusive. Zero means DefaultVerifyTimeout.
	VerifyTimeout time.Duration
	// Cache keeps signatures that passed and chart layers for a bounded
	// time, so releases sharing a chart and a policy share one
	// verification (gate.Cache). Nil caches nothing.
	Cache *gate.Cache
	// Revocation checks x509 authorities' certificate paths with OCSP and
	// CRLs, keeping answers within each authority's refresh interval; nil
	// checks them keeping nothing.
	Revocation *revocation.Checker
	// TUF reads the TUF repositories of trustedRoot.tuf references and
	// keeps their trusted roots fresh (Setup runs its refresh); nil reads
	// none, and such a policy is TrustedRootUnavailable.
	TUF *tufroot.Store
	// RequireClusterPolicy denies every release that no ClusterTrustPolicy
	// judges (--require-cluster-policy): deny by default for a cluster.
	RequireClusterPolicy bool
	// DriftMetrics counts drift and times its detection and correction;
	// nil records nothing.
	DriftMetrics *metrics.Drift
	// WatchDeployed watches what releases deployed, so a change wakes its
	// release at once (SetupWithManager builds ObjectWatches); false leaves
	// drift to each release's interval.
	WatchDeployed bool
	// ObjectWatches watches what releases deployed; nil watches nothing.
	ObjectWatches *ObjectWatches
	// Sources watches the Secrets and ConfigMaps policies read (Setup
	// builds it); nil watches none.
	Sources *SourceWatches
	// Values watches the ConfigMaps and Secrets releases read values from
	// (Setup builds it); nil watches none: a change waits for the
	// interval.
	Values *SourceWatches

	// RevocationMetrics counts installed releases that do not verify and
	// times revocations; nil records nothing.
	RevocationMetrics *metrics.Revocation
	// ReleaseMetrics reports each release's conditions and whether what
	// it installed verifies now, by namespace and name; nil records
	// nothing.
	ReleaseMetrics *metrics.Releases

	driftOnce  sync.Once
	driftState *driftState
	trustOnce  sync.Once
	trustState *trustState
	compiled   compiledPolicies
	unsigned   unsignedCharts
	// records reads the metadata of Helm's release records, as the
	// manager's watch of them last saw it (nil before SetupWithManager).
	records client.Reader
}

// DefaultCacheTTL is how long the manager keeps what a verification
// established, unless --verification-cache-ttl says otherwise.
const DefaultCacheTTL = 5 * time.Minute

// +kubebuilder:rbac:groups=delivery.chartproof.dev,resources=verifiedhelmreleases,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=delivery.chartproof.dev,resources=verifiedhelmreleases/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=delivery.chartproof.dev,resources=verifiedhelmreleases/finalizers,verbs=update
// +kubebuilder:rbac:groups=delivery.chartproof.dev,resources=trustpolicies;clustertrustpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
//
// A release acts as its ServiceAccount, never with these rights: the
// manager only impersonates it (docs/security.md, "Tenancy").
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=impersonate

// SetupWithManager registers the reconciler and its watches.
func (r *VerifiedHelmReleaseReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.VerifiedHelmRelease{}, policyRefIndex,
		func(o client.Object) []string {
			return []string{policyKey(o.(*chartproofv1.VerifiedHelmRelease).Spec.TrustPolicyRef)}
		}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.VerifiedHelmRelease{}, releaseIndex,
		func(o client.Object) []string {
			vhr := o.(*chartproofv1.VerifiedHelmRelease)
			return []string{r.storageNamespace(vhr) + "/" + r.releaseName(vhr)}
		}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.VerifiedHelmRelease{}, uidIndex,
		func(o client.Object) []string { return []string{string(o.GetUID())} }); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.VerifiedHelmRelease{}, dependsOnIndex, func(o client.Object) []string {
		return dependsOnKeys(o.(*chartproofv1.VerifiedHelmRelease))
	}); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&chartproofv1.VerifiedHelmRelease{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, reconcileRequested()))).
		// A release whose Ready changed wakes those that depend on it.
		Watches(&chartproofv1.VerifiedHelmRelease{}, handler.EnqueueRequestsFromMapFunc(r.dependentsOf), builder.WithPredicates(readyChanged())).
		Watches(&chartproofv1.TrustPolicy{}, handler.EnqueueRequestsFromMapFunc(r.releasesOfPolicy("TrustPolicy")),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&chartproofv1.ClusterTrustPolicy{}, clusterPolicyHandler(r.releasesOfPolicy("ClusterTrustPolicy")),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.releasesInNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{}))
	// A change to a Secret or ConfigMap a policy reads is a trust change.
	if r.Sources != nil {
		b.WatchesRawSource(r.Sources.Source(r.releasesOfSource))
	}
	// A change to one a release reads values from is applied at once.
	if r.Values != nil {
		if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.VerifiedHelmRelease{}, valuesIndex, func(o client.Object) []string {
			return valuesKeys(o.(*chartproofv1.VerifiedHelmRelease))
		}); err != nil {
			return err
		}
		b.WatchesRawSource(r.Values.Source(r.releasesOfValues))
	}
	// So is a trusted root that a TUF repository changed: the Store reads
	// each repository again within its refresh interval.
	if r.TUF != nil {
		changes := make(chan event.GenericEvent, 64)
		r.TUF.OnChange(func(location string) {
			select {
			case changes <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: location}}}:
			default: // the compiled policies miss all the same (Generation); the interval re-verifies
			}
		})
		b.WatchesRawSource(source.Channel(changes, handler.EnqueueRequestsFromMapFunc(r.releasesOfTUF)))
		if err := mgr.Add(r.TUF); err != nil {
			return err
		}
	}
	// So is a revocation status that changed: the Checker checks again,
	// within each authority's refresh interval, the paths verifications
	// asked about, and says when one's status changed.
	if r.Revocation != nil {
		changes := make(chan event.GenericEvent, 1)
		r.Revocation.OnChange(func() {
			select {
			case changes <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "revocation"}}}:
			default: // one pending re-queues them all
			}
		})
		b.WatchesRawSource(source.Channel(changes, handler.EnqueueRequestsFromMapFunc(r.releasesOfX509)))
		if err := mgr.Add(r.Revocation); err != nil {
			return err
		}
	}
	// A change to a Helm release record (a Secret labelled owner=helm) wakes
	// the releases acting on that Helm release at once: a record edited, or
	// written by a manual `helm upgrade` or `helm rollback`, is found in
	// about a second, not at the next interval (issue 11, item 5). The
	// records are watched in a cache of their own that the API server
	// scopes by Helm's label, metadata only: no other Secret is cached.
	recordCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{"owner": "helm"}),
		DefaultTransform:     cache.TransformStripManagedFields(),
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(recordCache); err != nil {
		return err
	}
	records := &metav1.PartialObjectMetadata{}
	records.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	// A release's records are found by its name, not by a scan of its
	// namespace's records (latestRecorded, at every trust change).
	if err := recordCache.IndexField(context.Background(), records, recordReleaseIndex, func(o client.Object) []string {
		return []string{o.GetNamespace() + "/" + o.GetLabels()["name"]}
	}); err != nil {
		return err
	}
	r.records = recordCache
	b.WatchesRawSource(source.Kind(recordCache, records,
		settleOwnWrites{writes: r.Identities.Writes(), next: handler.TypedEnqueueRequestsFromMapFunc(r.releasesOfRecord)},
		predicate.NewTypedPredicateFuncs(isReleaseRecord)))
	c, err := b.WithOptions(opts).Build(r)
	if err != nil || !r.WatchDeployed {
		return err
	}
	r.ObjectWatches, err = newObjectWatches(mgr, c, r)
	return err
}

// reconcileRequested passes an update that changed the annotation
// reconcile.fluxcd.io/requestedAt: a reconcile asked for now.
func reconcileRequested() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return false
			}
			key := chartproofv1.AnnotationReconcileRequest
			return e.ObjectNew.GetAnnotations()[key] != e.ObjectOld.GetAnnotations()[key]
		},
	}
}

// isReleaseRecord reports whether o is a Helm release record: a Secret Helm's
// storage driver labels owner=helm, with the release's name.
func isReleaseRecord(o *metav1.PartialObjectMetadata) bool {
	l := o.GetLabels()
	return l["owner"] == "helm" && l["name"] != ""
}

// releasesOfRecord maps a Helm release record to the releases acting on its
// Helm release.
func (r *VerifiedHelmReleaseReconciler) releasesOfRecord(ctx context.Context, o *metav1.PartialObjectMetadata) []ctrl.Request {
	var list chartproofv1.VerifiedHelmReleaseList
	if err := r.List(ctx, &list, client.MatchingFields{releaseIndex: o.GetNamespace() + "/" + o.GetLabels()["name"]}); err != nil {
		log.FromContext(ctx).Error(err, "listing the releases of a helm release record", "namespace", o.GetNamespace(), "name", o.GetName())
		return nil
	}
	// The echo of a release's own record write wakes the others acting on
	// the Helm release, not it: a record another release's chart rendered
	// carries that release's owner label.
	if ownWrite(r.Identities.Writes(), o) {
		list.Items = slices.DeleteFunc(list.Items, func(v chartproofv1.VerifiedHelmRelease) bool {
			return o.GetLabels()[chartproofv1.LabelOwner] == string(v.UID)
		})
	}
	return requestsFor(list)
}

func policyKey(ref chartproofv1.TrustPolicyReference) string {
	kind := ref.Kind
	if kind == "" {
		kind = "TrustPolicy"
	}
	return kind + "/" + ref.Name
}

// releasesOfPolicy maps a policy to the releases that name it, so a trust
// change is re-verified at once rather than at the next interval.
// A mandatory ClusterTrustPolicy (one with a namespaceSelector) may bind
// any release: all of them are re-verified.
func (r *VerifiedHelmReleaseReconciler) releasesOfPolicy(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []ctrl.Request {
		var list chartproofv1.VerifiedHelmReleaseList
		opts := []client.ListOption{client.MatchingFields{policyRefIndex: kind + "/" + o.GetName()}}
		if kind == "TrustPolicy" {
			opts = append(opts, client.InNamespace(o.GetNamespace()))
		}
		if ctp, ok := o.(*chartproofv1.ClusterTrustPolicy); ok && ctp.Spec.NamespaceSelector != nil {
			opts = nil
		}
		if err := r.List(ctx, &list, opts...); err != nil {
			log.FromContext(ctx).Error(err, "listing releases of policy", "policy", o.GetName())
			return nil
		}
		return r.trustChanged(list)
	}
}

// requestsFor are the reconcile requests of the releases listed.
func requestsFor(list chartproofv1.VerifiedHelmReleaseList) []ctrl.Request {
	reqs := make([]ctrl.Request, 0, len(list.Items))
	for _, v := range list.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: v.Namespace, Name: v.Name}})
	}
	return reqs
}

// clusterPolicyHandler enqueues the releases of a ClusterTrustPolicy, as
// toRequests maps it, before and after an update: a namespaceSelector
// removed unbinds releases the new object no longer names.
func clusterPolicyHandler(toRequests handler.MapFunc) handler.EventHandler {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[ctrl.Request], objs ...client.Object) {
		for _, o := range objs {
			for _, req := range toRequests(ctx, o) {
				q.Add(req)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[ctrl.Request]) {
			enqueue(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[ctrl.Request]) {
			enqueue(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[ctrl.Request]) {
			enqueue(ctx, q, e.Object)
		},
	}
}

// releasesInNamespace maps a namespace to its releases: its labels decide
// which mandatory ClusterTrustPolicies bind them.
func (r *VerifiedHelmReleaseReconciler) releasesInNamespace(ctx context.Context, o client.Object) []ctrl.Request {
	var list chartproofv1.VerifiedHelmReleaseList
	if err := r.List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
		log.FromContext(ctx).Error(err, "listing releases of a namespace", "namespace", o.GetName())
		return nil
	}
	return r.trustChanged(list)
}

func (r *VerifiedHelmReleaseReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile observes one VerifiedHelmRelease and does one thing: uninstall
// (deleted), nothing (suspended), repair a release an interrupted Helm
// action left pending, refuse (not verified), install or upgrade (verified
// and different from what is installed), or only record that the installed
// release still verifies.
func (r *VerifiedHelmReleaseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	started := time.Now()
	var obj chartproofv1.VerifiedHelmRelease
	if err := r.Get(ctx, req.NamespacedName, &obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.ReleaseMetrics.Forget(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, &obj)
	}
	if !controllerutil.ContainsFinalizer(&obj, Finalizer) {
		patch := client.MergeFrom(obj.DeepCopy())
		controllerutil.AddFinalizer(&obj, Finalizer)
		if err := r.Patch(ctx, &obj, patch); err != nil {
			return ctrl.Result{}, err
		}
	}

	// A new generation of the spec: Reconciling=True and Ready=Unknown are
	// written before the work, so that kstatus and `kubectl wait` read
	// InProgress, not the last generation's verdict, until it ends.
	if obj.Status.ObservedGeneration != obj.Generation && !obj.Spec.Suspend {
		if err := r.progressing(ctx, &obj, fmt.Sprintf("reconciling generation %d", obj.Generation), true); errors.Is(err, errStale) {
			return ctrl.Result{RequeueAfter: staleRetry}, nil
		} else if err != nil {
			return ctrl.Result{}, err
		}
	}

	before := obj.DeepCopy()
	res, err := r.reconcile(ctx, &obj)
	if errors.Is(err, errStale) {
		// The cache was behind the API server: nothing was done; look again.
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	obj.Status.ObservedGeneration = obj.Generation
	if obj.ResourceVersion != before.ResourceVersion {
		// A progress write during the reconcile changed the conditions
		// on the server since before: they are written whole.
		before.Status.Conditions = nil
	}
	if v, ok := obj.Annotations[chartproofv1.AnnotationReconcileRequest]; ok {
		obj.Status.LastHandledReconcileAt = v
	}
	if perr := r.Status().Patch(ctx, &obj, client.MergeFrom(before)); perr != nil {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	r.trackVerified(&obj, started)
	r.recordRelease(&obj)
	if res.RequeueAfter > 0 {
		// A trust change's reconcile may have skipped the comparison of
		// the objects: the interval's own comes when it is due all the
		// same (an immediate reconcile replaces the one pending).
		res.RequeueAfter = min(res.RequeueAfter, r.drift().compareDue(obj.UID, r.now(), releaseInterval(&obj)))
	}
	return res, err
}

func (r *VerifiedHelmReleaseReconciler) reconcile(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	interval := releaseInterval(obj)
	if obj.Spec.Suspend {
		r.setCondition(obj, chartproofv1.ConditionReconciling, metav1.ConditionFalse, chartproofv1.ReasonSuspended, "reconciliation is suspended")
		return ctrl.Result{}, nil
	}

	// Who acts: the release's ServiceAccount, never the manager.
	acct, err := r.Identities.For(obj.Namespace, obj.Spec.ServiceAccountName)
	if err != nil {
		code := chartproofv1.ReasonInvalidSpec
		if errors.Is(err, identity.ErrNoServiceAccount) {
			code = chartproofv1.ReasonServiceAccountRequired
		}
		r.stalled(obj, code, err.Error())
		return ctrl.Result{RequeueAfter: interval}, nil
	}

	// A release this object installed under another name or namespace is
	// uninstalled first; that is this reconcile's one action.
	if inst := obj.Status.Installed; inst != nil && inst.Name != "" &&
		(locationOf(inst) != r.location(obj) || inst.Name != r.releaseName(obj)) {
		return r.uninstallMoved(ctx, obj, acct, interval)
	}

	// Observe the Helm release first: one that another owner made is left
	// alone; one that an interrupted action left pending is repaired
	// before anything else, and that is this reconcile's one action. A
	// release that cannot be read is left to Apply, which reports the
	// error. What is read here is also what decides below whether the
	// installed release is up to date: nothing in between changes it.
	rel, relErr := r.readRelease(ctx, obj, acct)
	var adopt adoption
	if relErr == nil {
		var refusal string
		adopt, refusal = r.ownership(ctx, obj, rel)
		if refusal != "" {
			r.stalled(obj, chartproofv1.ReasonReleaseNotOwned, refusal)
			return ctrl.Result{RequeueAfter: interval}, nil
		}
	}
	if relErr == nil && release.Pending(rel) {
		return r.recoverPending(ctx, obj, acct, rel, interval)
	}

	// Observe: the policy, the values, the registry, the installed release.
	judges, code, err := r.loadPolicy(ctx, obj)
	if err != nil {
		r.stalled(obj, code, err.Error())
		if code == chartproofv1.ReasonTrustedRootUnavailable {
			// An outage: retried soon, Reconciling rather than Stalled.
			r.setProgress(obj, true)
			interval = min(interval, retryInconclusive)
		}
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	// What a CRL or an OCSP responder says is looked at again within the
	// x509 authorities' refresh interval: by the Checker, which re-queues
	// the releases when a status changed, else by this release itself.
	if r.Revocation == nil {
		interval = min(interval, revocationRefresh(judges))
	}
	// What values are read from is watched first, so a change made from
	// now on wakes the release.
	if keys := valuesKeys(obj); r.Values != nil && len(keys) > 0 && !r.Values.Watched(keys) {
		if err := r.Values.Sync(ctx, r.Client); err != nil {
			log.FromContext(ctx).Error(err, "watching the sources of values; the interval reads them")
		}
	}
	if _, err := compileHealthExprs(obj.Spec.HealthCheckExprs); err != nil {
		r.stalled(obj, chartproofv1.ReasonInvalidSpec, err.Error())
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	values, configDigest, err := r.values(ctx, acct.Reader, obj)
	if err != nil {
		r.stalled(obj, chartproofv1.ReasonInvalidSpec, err.Error())
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	reg, err := r.Registries.Client(ctx, acct.Reader, obj)
	if err != nil {
		r.stalled(obj, chartproofv1.ReasonInvalidSpec, err.Error())
		return ctrl.Result{RequeueAfter: interval}, nil
	}

	// Verify: the version is resolved exactly once, here.
	vctx, cancel := r.verifyContext(ctx)
	defer cancel()
	req := judges
	req.URL, req.Version, req.SignatureRepository = obj.Spec.Chart.URL, obj.Spec.Chart.Version, obj.Spec.Chart.SignatureRepository
	req.Floor, req.AllowDowngrade = obj.Status.Newest, obj.Spec.AllowDowngrade
	res := gate.Check(vctx, reg, r.Metrics, req)
	r.recordVerification(obj, res)
	installed := obj.Status.Installed
	// A release to adopt is upgraded even when it is the one installed (a
	// release chartproof installed before it labelled records), so that its
	// records carry this object's UID from then on.
	sameSpec := !adopt.ok && installed != nil && installed.Digest == res.Digest && installed.ConfigDigest == configDigest
	upToDate := sameSpec && relErr == nil && deployedAs(rel, installed) && recordIntact(rel, installed)
	// A release installed before chartproof labelled what it renders is
	// upgraded once, the same chart and values, so that the watches of
	// what it deployed see its objects (issue 11). Only in drift mode
	// Correct: Helm's upgrade also puts back what the chart sets, which
	// Warn and Disabled leave alone (their releases' objects are watched
	// from their next upgrade; the interval checks them until then).
	relabel := upToDate && r.WatchDeployed && driftMode(obj) == chartproofv1.DriftCorrect && ownerUnlabelled(rel.Manifest)
	upToDate = upToDate && !relabel
	// In drift mode Warn, records someone else rewrote (a manual `helm
	// upgrade` or `rollback`, a record edited or deleted) under an
	// unchanged spec are reported and left, like any other drift; a spec
	// change still installs afresh over them.
	var tampered error
	if sameSpec && !upToDate && res.Verdict.Allowed() && driftMode(obj) == chartproofv1.DriftWarn {
		if err := acct.Releases.CheckTrusted(ctx, r.storageNamespace(obj), r.releaseName(obj), *trustOf(installed)); errors.Is(err, release.ErrRecordTampered) {
			tampered = err
		}
	}

	// A failed install or upgrade of this chart and values is tried again
	// while its remediation allows, after its backoff (remediation.go): a
	// health failure of what runs by an upgrade to the same.
	att := attempt(obj, res.Digest, configDigest)
	var retryWait time.Duration // > 0: a failed action's next try is that far off
	var dependencyWait string   // != "": the Helm action waits for the releases it depends on
	if upToDate && res.Verdict.Allowed() && att != nil && !exhausted(obj, att) && failedAfterApply(obj) {
		if retryWait = r.retryIn(obj, att); retryWait == 0 {
			upToDate = false
		}
	}

	// Decide and act.
	var signatureWait time.Duration // > 0: a chart nothing signed yet, verified again soon
	var health healthResult         // what the health check of what runs found
	// After a Helm action (an install, an upgrade, a remediation's
	// rollback): the first drift check at once, which starts the watches
	// of what was deployed (the watch events of chartproof's own writes
	// wake nobody: identity.Writes); then whether it becomes healthy,
	// looked at again within seconds while it is becoming so.
	afterAction := func(rel *helmrelease.Release) {
		if r.checkDrift(ctx, obj, acct, rel, true) {
			interval = min(interval, retryInconclusive)
		}
		health = r.checkHealth(ctx, obj, acct, rel)
	}
	switch {
	case !res.Verdict.Allowed():
		if installed != nil && relErr == nil && !deployedAs(rel, installed) {
			// Helm holds another revision than status names: a record
			// rewritten, or a cache that has not seen the status of the
			// action that wrote it (a rollback just done). Nothing is
			// written from a stale status.
			if err := r.checkCurrent(ctx, obj); err != nil {
				return ctrl.Result{}, err
			}
		}
		if installed == nil {
			// "Nothing installed" is only said of what the API server
			// holds: the cache may not have the status of the install
			// that just ran.
			if err := r.checkCurrent(ctx, obj); err != nil {
				return ctrl.Result{}, err
			}
		} else {
			installed.Verified = r.installedVerifies(ctx, reg, obj, judges, res)
			forgetUnverifiedNewest(obj)
		}
		r.refused(obj, res)
		if awaitingSignature(obj, res) {
			signatureWait = r.unsigned.wait(obj.UID, res.Digest, r.now(), releaseInterval(obj))
		}
		// An installed chart that no longer verifies is rolled back or
		// uninstalled when the spec says so: never on an outage, and never
		// under a policy in Audit mode (which installed what did not verify
		// to begin with; a denied digest or a too old version there must
		// not remove what runs).
		if installed != nil && !installed.Verified && !res.Verdict.Inconclusive && onFailure(obj) != chartproofv1.VerificationFailureHold &&
			!auditing(judges) &&
			relErr == nil && deployedAs(rel, installed) && recordIntact(rel, installed) {
			if err := r.checkCurrent(ctx, obj); err != nil {
				return ctrl.Result{}, err
			}
			rolledBack, failed := r.actOnUnverified(ctx, obj, unverifiedAction{acct: acct, reg: reg, judges: judges, res: res, values: values, configDigest: configDigest})
			switch {
			case failed:
				interval = min(interval, retryInconclusive)
			case rolledBack != nil:
				// As after any Helm action: the first drift check at once.
				if r.checkDrift(ctx, obj, acct, rolledBack, true) {
					interval = min(interval, retryInconclusive)
				}
			}
			installed = nil // acted on: what runs now is checked above, or gone
			if rolledBack == nil {
				installed = obj.Status.Installed
			}
		}
		// What runs is still guarded while no new chart may be installed;
		// it is corrected only while the installed chart still verifies.
		if installed != nil && relErr == nil && deployedAs(rel, installed) && recordIntact(rel, installed) &&
			r.checkDrift(ctx, obj, acct, rel, installed.Verified) {
			interval = min(interval, retryInconclusive)
		}
	case upToDate:
		installed.Verified = res.Verdict.Passed()
		installed.ShortDigest = shortDigest(installed.Digest) // status written before the column had it
		forgetUnverifiedNewest(obj)
		// Released keeps saying how the release got there (the last Helm
		// action) while it stays true; it is only restated when it was not,
		// or said the release was held (a revocation lifted, the spec back
		// at what runs).
		if c := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionReleased); c == nil || c.Status != metav1.ConditionTrue ||
			c.Reason == chartproofv1.ReasonReleaseHeld || c.Reason == chartproofv1.ReasonUpgradeBlocked {
			r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionTrue, chartproofv1.ReasonReleaseUpToDate,
				fmt.Sprintf("release %s revision %d is %s", r.releaseName(obj), installed.Revision, installed.Digest))
		}
		// What the release deployed is compared with the rendering of the
		// record just found intact, and restored (issue 11).
		if r.checkDrift(ctx, obj, acct, rel, true) {
			interval = min(interval, retryInconclusive)
		}
		health = r.checkHealth(ctx, obj, acct, rel)
	case tampered != nil:
		// As in the install path: status may be behind what was installed.
		if err := r.checkCurrent(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
		r.tamperingLeft(obj, tampered)
	case exhausted(obj, att):
		// The action failed more often than its remediation allows:
		// nothing more is tried until the spec changes. What runs (the
		// rollback's, or what the failure left) is still guarded.
		if inst := obj.Status.Installed; inst != nil && relErr == nil && deployedAs(rel, inst) && recordIntact(rel, inst) {
			if r.checkDrift(ctx, obj, acct, rel, inst.Verified) {
				interval = min(interval, retryInconclusive)
			}
			health = r.checkHealth(ctx, obj, acct, rel)
		}
	case r.retryIn(obj, att) > 0:
		// Its next try waits for the backoff.
		retryWait = r.retryIn(obj, att)
	default:
		// Status says what is installed, and the cache may not have the
		// last reconcile's status yet: check with the API server before
		// acting, or a release could be upgraded twice.
		if err := r.checkCurrent(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
		// The releases it depends on first.
		if waiting := r.dependenciesNotReady(ctx, obj); waiting != "" {
			dependencyWait = waiting
			retryWait = dependencyRetry
			break
		}
		firstInstall := obj.Status.Installed == nil
		if att == nil {
			// Another chart, values or generation: a fresh start.
			obj.Status.LastAttempt = nil
			apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionRemediated)
		}
		// A Helm action takes a while (hooks, many objects): kstatus
		// reads InProgress until it ends. Ready still says what runs.
		if err := r.progressing(ctx, obj, fmt.Sprintf("installing %s", res.Digest), false); err != nil {
			return ctrl.Result{}, err // errStale included: Reconcile looks again
		}
		installedRel, err := r.install(ctx, obj, acct, reg, res, values, configDigest, adopt, relabel)
		if errors.Is(err, release.ErrPermissionsMissing) {
			// The preflight refused before anything was written: not a
			// failure of the action, nothing to remediate. Stalled until
			// someone grants what Released lists; RBAC is not watched,
			// so it is looked at again soon.
			interval = min(interval, permissionsRetry)
			break
		}
		if err != nil {
			logger.Error(err, "helm release failed")
			why := "the Helm action failed"
			if c := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionReleased); c != nil {
				why = c.Message
			}
			a := r.failed(obj, res.Digest, configDigest, firstInstall)
			vouchForFailedInstall(a, obj.Status.Installed, installedRel)
			var rolledBack *helmrelease.Release
			if retryWait, rolledBack = r.actionFailed(ctx, obj, a, remedy{acct: acct, reg: reg, judges: judges, why: why}); rolledBack != nil {
				afterAction(rolledBack)
			}
			break
		}
		if installedRel != nil {
			afterAction(installedRel)
		}
	}
	// What the release deployed is healthy: its Helm tests run once
	// (spec.test.enable); with them done, the action succeeded.
	if health.ok && obj.Status.Installed != nil && testsEnabled(obj) && obj.Status.Installed.Tests == "" {
		if failed, why := r.runTests(ctx, obj, acct); failed {
			health.failedNow, health.why = true, why
		}
	}
	if health.ok && !health.failedNow && testsDone(obj) {
		succeeded(obj)
	}
	// What the release deployed failed its health check or its tests just
	// now: one failure of the action that deployed it (remediation.go).
	// Only what the spec asks for counts: a rollback's revision that is
	// not healthy either is reported, and nothing more is tried.
	if inst := obj.Status.Installed; health.failedNow && inst != nil && inst.Digest == res.Digest && inst.ConfigDigest == configDigest {
		a := r.failed(obj, inst.Digest, inst.ConfigDigest, inst.Revision <= 1)
		var rolledBack *helmrelease.Release
		if retryWait, rolledBack = r.actionFailed(ctx, obj, a, remedy{acct: acct, reg: reg, judges: judges, why: health.why}); rolledBack != nil {
			afterAction(rolledBack)
		}
	}
	r.setReady(obj, res)
	r.retriesExhausted(obj, res, configDigest)
	if dependencyWait != "" {
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonDependencyNotReady, dependencyWait)
	}
	r.setProgress(obj, res.Verdict.Inconclusive || health.poll > 0 || retryWait > 0)
	if health.poll > 0 {
		interval = min(interval, health.poll)
	}
	if retryWait > 0 {
		interval = min(interval, retryWait)
	}
	if signatureWait > 0 {
		inst := obj.Status.Installed
		runs := inst != nil && inst.Verified && relErr == nil && deployedAs(rel, inst) && recordIntact(rel, inst)
		r.awaitSignature(obj, res, signatureWait, runs)
		return ctrl.Result{RequeueAfter: min(signatureWait, interval)}, nil
	}
	if !awaitingSignature(obj, res) {
		r.unsigned.forget(obj.UID)
	}
	if res.Verdict.Inconclusive {
		return ctrl.Result{RequeueAfter: min(interval, retryInconclusive)}, nil
	}
	return ctrl.Result{RequeueAfter: interval}, nil
}

// revocationRefresh is the shortest refresh interval of the x509
// authorities of the policies that judge a release; a long time when there
// is none.
func revocationRefresh(judges gate.Request) time.Duration {
	refresh := time.Duration(math.MaxInt64)
	policies := []*policy.Policy{judges.Policy}
	for _, m := range judges.Mandatory {
		policies = append(policies, m.Policy)
	}
	for _, p := range policies {
		if p == nil {
			continue
		}
		for _, a := range p.Authorities {
			if a.X509 != nil {
				refresh = min(refresh, a.X509.Revocation.Refresh)
			}
		}
	}
	return refresh
}

// readRelease reads the latest revision of obj's Helm release, as its
// ServiceAccount. A reconcile that a change of trust queued, for a release
// whose records the manager's watch shows ending at the revision status
// names, reads that record alone by its name (one GET); any other lists the
// release's records (Helm's own way). Either way the record is then checked
// against status as evidence, never trusted; a revision written since and
// not yet seen by the watch wakes the release again when it is.
func (r *VerifiedHelmReleaseReconciler) readRelease(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, acct *identity.Account) (*helmrelease.Release, error) {
	ns, name := r.storageNamespace(obj), r.releaseName(obj)
	if inst := obj.Status.Installed; inst != nil && r.records != nil && r.queuedByTrustChange(obj.UID) &&
		locationOf(inst) == r.location(obj) && inst.Name == name && r.latestRecorded(ctx, ns, name) == inst.Revision {
		if rel, err := acct.Releases.GetRevision(ctx, ns, name, inst.Revision); err == nil {
			return rel, nil
		}
	}
	return acct.Releases.Get(ctx, ns, name)
}

// latestRecorded is the highest revision among the records of Helm release
// name that the manager's watch of them holds; 0 when it holds none.
func (r *VerifiedHelmReleaseReconciler) latestRecorded(ctx context.Context, namespace, name string) int {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.records.List(ctx, &list, client.MatchingFields{recordReleaseIndex: namespace + "/" + name}); err != nil {
		return 0
	}
	latest := 0
	for _, m := range list.Items {
		if v, err := strconv.Atoi(m.Labels["version"]); err == nil && v > latest {
			latest = v
		}
	}
	return latest
}

// releaseInterval is how often obj is verified again, its drift checked
// and its Helm release looked at, when nothing else wakes it.
func releaseInterval(obj *chartproofv1.VerifiedHelmRelease) time.Duration {
	if d := obj.Spec.Interval.Duration; d > 0 {
		return d
	}
	return 10 * time.Minute
}

// setProgress writes the kstatus conditions from Ready: nothing when Ready;
// Reconciling when chartproof retries by itself soon (an outage, a failed
// Helm action); Stalled when only a change will help (a refused chart, a
// blocked upgrade) — so kstatus-based tools report InProgress or Failed.
func (r *VerifiedHelmReleaseReconciler) setProgress(obj *chartproofv1.VerifiedHelmRelease, retrying bool) {
	ready := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionReady)
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionReconciling)
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionStalled)
	switch {
	case ready.Status == metav1.ConditionTrue:
	case retrying:
		r.setCondition(obj, chartproofv1.ConditionReconciling, metav1.ConditionTrue, ready.Reason, "retrying: "+ready.Message)
	default:
		r.setCondition(obj, chartproofv1.ConditionStalled, metav1.ConditionTrue, ready.Reason, ready.Message)
	}
}

// progressing writes Reconciling=True (ReasonProgressing) at once, before
// work that takes a while; with ready, Ready=Unknown too (a new generation:
// the last verdict no longer answers for the spec). Reconcile's own status
// patch at the end replaces them.
func (r *VerifiedHelmReleaseReconciler) progressing(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, msg string, ready bool) error {
	set := func(o *chartproofv1.VerifiedHelmRelease) {
		apimeta.RemoveStatusCondition(&o.Status.Conditions, chartproofv1.ConditionStalled)
		r.setCondition(o, chartproofv1.ConditionReconciling, metav1.ConditionTrue, chartproofv1.ReasonProgressing, msg)
		if ready {
			r.setCondition(o, chartproofv1.ConditionReady, metav1.ConditionUnknown, chartproofv1.ReasonProgressing, msg)
		}
	}
	// The conditions alone are written: what this reconcile found so far
	// (evidence, the resolved digest) is written with its outcome. The
	// write is conditional on obj's resourceVersion: from a cache behind
	// the API server it fails (errStale), and obj never takes the version
	// of a status it has not read.
	patched := obj.DeepCopy()
	base := patched.DeepCopy()
	set(patched)
	if err := r.Status().Patch(ctx, patched, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return errStale
		}
		return err
	}
	set(obj)
	obj.ResourceVersion = patched.ResourceVersion
	return nil
}

// installedVerifies reports whether the installed digest still passes the
// policy, when the digest just resolved was refused: the same verdict when
// they are the same digest, otherwise a verification of the installed
// digest itself (the tag moved; what runs in the cluster is still checked).
// An inconclusive verification (an outage) says nothing about the installed
// digest: what was known of it stays.
func (r *VerifiedHelmReleaseReconciler) installedVerifies(ctx context.Context, reg gate.Registry, obj *chartproofv1.VerifiedHelmRelease,
	judges gate.Request, res gate.Result) bool {
	inst := obj.Status.Installed
	if res.Verdict.Inconclusive {
		// An outage says nothing about the installed digest, and a second
		// verification would only wait for the same outage.
		return inst.Verified
	}
	if inst.Digest == res.Digest {
		return res.Verdict.Passed()
	}
	vctx, cancel := r.verifyContext(ctx)
	defer cancel()
	req := judges
	req.URL, req.Version, req.SignatureRepository = obj.Spec.Chart.URL, inst.Digest, obj.Spec.Chart.SignatureRepository
	again := gate.Check(vctx, reg, r.Metrics, req)
	if again.Verdict.Inconclusive {
		return inst.Verified
	}
	if !again.Verdict.Passed() {
		r.event(obj, corev1.EventTypeWarning, again.Verdict.Code(), fmt.Sprintf("installed %s no longer verifies: %s", inst.Digest, again.Verdict.Message()))
	}
	return again.Verdict.Passed()
}

// permissionsRetry is how soon a release the preflight refused
// (PermissionsMissing) is tried again.
const permissionsRetry = 30 * time.Second

// errStale says the cached object is older than the API server's.
var errStale = errors.New("cached object is stale")

// staleRetry is how soon a reconcile that met a stale cache runs again.
const staleRetry = 100 * time.Millisecond

// checkCurrent returns errStale when the API server holds a newer version
// of obj than the cache it was read from. When the API server cannot be
// asked, it returns that error, not errStale: an outage is retried with
// the controller's backoff, not every staleRetry.
func (r *VerifiedHelmReleaseReconciler) checkCurrent(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease) error {
	var live chartproofv1.VerifiedHelmRelease
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), &live); err != nil {
		return fmt.Errorf("reading %s/%s from the API server: %w", obj.Namespace, obj.Name, err)
	}
	if live.ResourceVersion != obj.ResourceVersion {
		return errStale
	}
	return nil
}

// afterRecovery is how soon the reconcile that follows a recovery runs: it
// verifies and applies the chart.
const afterRecovery = 100 * time.Millisecond

// recoverPending unlocks a release an interrupted Helm action left pending
// (a crash, a lost API server): the unfinished record is marked failed and
// nothing in it is applied or used to decide what to delete. The next
// reconcile, soon after, verifies the chart and applies it: an upgrade from
// the record status.installed vouches for (checked first: a rewritten one
// is ReleaseRecordTampered), or a fresh install when nothing vouched for is
// deployed.
func (r *VerifiedHelmReleaseReconciler) recoverPending(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease,
	acct *identity.Account, pending *helmrelease.Release, interval time.Duration) (ctrl.Result, error) {
	if err := r.checkCurrent(ctx, obj); err != nil {
		return ctrl.Result{}, err
	}
	name := r.releaseName(obj)
	found := fmt.Sprintf("release %s revision %d was left %s by an interrupted action", name, pending.Version, pending.Info.Status)
	if _, err := acct.Releases.Recover(ctx, r.storageNamespace(obj), name, string(obj.UID)); err != nil {
		log.FromContext(ctx).Error(err, "recovering a pending helm release failed")
		msg := fmt.Sprintf("%s; recovering it failed: %s", found, helmFailure(err, nil))
		r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonPendingRecoveryFailed, msg)
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonPendingRecoveryFailed, msg)
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonPendingRecoveryFailed, msg)
		r.setProgress(obj, true)
		return ctrl.Result{RequeueAfter: min(interval, retryInconclusive)}, nil
	}
	msg := found + ": marked failed, nothing in it applied"
	r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonPendingReleaseRecovered, msg)
	r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonPendingReleaseRecovered, msg+"; verifying and applying the chart next")
	r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonPendingReleaseRecovered, msg)
	r.setProgress(obj, true)
	return ctrl.Result{RequeueAfter: afterRecovery}, nil
}

// install reads the verified bytes and hands them to Helm, and returns the
// release Helm wrote; nil when the chart was refused as it was read.
func (r *VerifiedHelmReleaseReconciler) install(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, acct *identity.Account,
	reg gate.Registry, res gate.Result, values map[string]any, configDigest string, adopt adoption, relabel bool) (*helmrelease.Release, error) {
	vctx, cancel := r.verifyContext(ctx)
	defer cancel()
	loaded := gate.Load(vctx, reg, r.Metrics, res)
	if loaded.Chart == nil {
		r.recordVerification(obj, loaded)
		r.refused(obj, loaded)
		return nil, nil
	}
	action, reason, failReason := "install", chartproofv1.ReasonInstallSucceeded, chartproofv1.ReasonInstallFailed
	if obj.Status.Installed != nil || adopt.ok {
		action, reason, failReason = "upgrade", chartproofv1.ReasonUpgradeSucceeded, chartproofv1.ReasonUpgradeFailed
	}
	templates := templatePaths(loaded.Chart) // before Helm changes the chart
	req := release.Request{
		Namespace:        r.targetNamespace(obj),
		StorageNamespace: r.storageNamespace(obj),
		Name:             r.releaseName(obj),
		Chart:            loaded.Chart,
		Values:           values,
		Stamp:            release.Stamp{Release: obj.Namespace + "/" + obj.Name, Digest: loaded.Digest, Owner: string(obj.UID)},
		Adopt:            adopt.ok,
		AdoptFrom:        adopt.from,
		Trusted:          trustOf(obj.Status.Installed),
		// A record of this object's that status does not name (written
		// by an install whose outcome was never recorded, or by anyone
		// who may write Secrets here) vouches for nothing: it is
		// dropped, not upgraded from.
		Replace:       obj.Status.Installed == nil && !adopt.ok,
		Timeout:       releaseTimeout(obj),
		PostRenderers: obj.Spec.PostRenderers,
	}
	if in := obj.Spec.Install; in != nil {
		req.CreateNamespace, req.DisableInstallHooks, req.InstallCRDs = in.CreateNamespace, in.DisableHooks, in.CRDs
	}
	if up := obj.Spec.Upgrade; up != nil {
		req.DisableUpgradeHooks, req.UpgradeCRDs, req.Force = up.DisableHooks, up.CRDs, up.Force
	}
	if h := obj.Spec.MaxHistory; h != nil {
		req.MaxHistory = int(*h)
	}
	rel, err := acct.Releases.Apply(ctx, req)
	replaced := false
	if errors.Is(err, release.ErrRecordTampered) {
		// The record chartproof installed was rewritten: nothing in it is
		// applied or used to delete. The repair is this reconcile's
		// action: its records are dropped and the verified chart is
		// installed afresh. (Apply refused before Helm rendered anything,
		// so the chart is still as loaded.)
		r.countTampered()
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonReleaseRecordTampered, fmt.Sprintf(
			"%v; its records are dropped and %s is installed afresh, as %s", err, loaded.Digest, actingAs(acct)))
		req.Replace, replaced = true, true
		action, reason, failReason = "install", chartproofv1.ReasonInstallSucceeded, chartproofv1.ReasonReleaseRecordTampered
		rel, err = acct.Releases.Apply(ctx, req)
	}
	if errors.Is(err, release.ErrNotOwned) {
		// Another owner installed it since this reconcile looked.
		failReason = chartproofv1.ReasonReleaseNotOwned
	}
	if errors.Is(err, release.ErrPermissionsMissing) {
		failReason = chartproofv1.ReasonPermissionsMissing
	}
	if err != nil && replaced {
		// The records status named were dropped: it vouches for nothing
		// now, and the next reconcile installs afresh without reporting
		// the same tampering again.
		obj.Status.Installed = nil
	}
	if err != nil {
		msg := fmt.Sprintf("helm %s of %s as %s failed: %s", action, loaded.Digest, actingAs(acct), helmFailure(err, templates))
		r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, failReason, msg)
		r.event(obj, corev1.EventTypeWarning, failReason, msg)
		// The record of the failed action, when Helm wrote one (Apply
		// checked it is stored as returned).
		return rel, err
	}
	// The digest of the record Helm wrote, not of one read back, which
	// someone writing Secrets there could have replaced in between.
	recordDigest, derr := release.StoredDigest(rel)
	if derr != nil {
		// The next upgrade then checks the revision alone.
		log.FromContext(ctx).Error(derr, "the digest of the release record written", "revision", rel.Version)
	}
	obj.Status.Installed = &chartproofv1.InstalledRelease{
		RecordDigest: recordDigest,
		Namespace:    rel.Namespace,
		Name:         rel.Name,
		// Set only when the records are elsewhere (storageOf).
		StorageNamespace: storageField(rel.Namespace, r.storageNamespace(obj)),
		Digest:           loaded.Digest,
		ShortDigest:      shortDigest(loaded.Digest),
		ChartVersion:     loaded.Chart.Metadata.Version,
		Revision:         rel.Version,
		ConfigDigest:     configDigest,
		Verified:         loaded.Verdict.Passed(),
		DeployedAt:       ptr.To(metav1.NewTime(r.now())),
	}
	if loaded.Verdict.Passed() {
		obj.Status.Newest = policy.RaiseFloor(obj.Status.Newest,
			chartproofv1.ChartRecord{ChartVersion: loaded.Chart.Metadata.Version, Digest: loaded.Digest}, obj.Spec.AllowDowngrade)
	}
	installedAt, passed := metav1.NewTime(r.now()), loaded.Verdict.Passed()
	rec := chartproofv1.ChartRecord{ChartVersion: loaded.Chart.Metadata.Version, Digest: loaded.Digest, Revision: rel.Version,
		InstalledAt: &installedAt, Verified: &passed}
	for _, a := range loaded.Verdict.Accepted {
		name := a.Authority
		if a.Policy != "" {
			name = a.Policy + "/" + a.Authority
		}
		if !slices.Contains(rec.Authorities, name) && len(rec.Authorities) < 16 {
			rec.Authorities = append(rec.Authorities, name)
		}
	}
	recordHistory(obj, rec)
	msg := fmt.Sprintf("helm %s of %s revision %d succeeded", action, loaded.Digest, rel.Version)
	if replaced {
		msg += " (its tampered records replaced)"
	}
	if adopt.ok {
		msg += fmt.Sprintf(" (adopted release %s/%s)", rel.Namespace, rel.Name)
	}
	if relabel {
		msg += " (its objects labelled " + chartproofv1.LabelOwner + ", so that drift is watched)"
	}
	if loaded.Verdict.Audited() {
		msg += fmt.Sprintf(" (Audit mode: installed although %s: %s)", loaded.Verdict.Code(), loaded.Verdict.Message())
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonAuditOnly, msg)
	} else {
		msg += ": " + loaded.Verdict.Message()
		r.event(obj, corev1.EventTypeNormal, reason, msg)
	}
	r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionTrue, reason, msg)
	// What this revision deployed is judged afresh: its health check's
	// first finding is its own.
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionHealthy)
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionTestSuccess)
	return rel, nil
}

// forgetUnverifiedNewest moves the floor down when the newest chart is the
// one installed and no longer verifies (policy.FallbackFloor).
func forgetUnverifiedNewest(obj *chartproofv1.VerifiedHelmRelease) {
	inst, n := obj.Status.Installed, obj.Status.Newest
	if inst != nil && n != nil && !inst.Verified && inst.Digest == n.Digest {
		obj.Status.Newest = policy.FallbackFloor(obj.Status.History, n.Digest)
	}
}

// auditing reports whether a policy that judges the release is in Audit
// mode.
func auditing(judges gate.Request) bool {
	if judges.Policy != nil && judges.Policy.Mode == chartproofv1.ModeAudit {
		return true
	}
	for _, m := range judges.Mandatory {
		if m.Policy != nil && m.Policy.Mode == chartproofv1.ModeAudit {
			return true
		}
	}
	return false
}

// tamperingLeft reports release records found rewritten and left in place
// (drift mode Warn): Released and Ready turn False, Drifted True; the
// tampering is counted and announced once while it stays the same.
func (r *VerifiedHelmReleaseReconciler) tamperingLeft(obj *chartproofv1.VerifiedHelmRelease, err error) {
	msg := fmt.Sprintf("%v; left in place (driftDetection.mode Warn): nothing in the records is applied, and %s is installed afresh once the mode is Correct",
		err, obj.Status.Installed.Digest)
	if r.drift().reported(obj.UID, msg) {
		r.countTampered()
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonReleaseRecordTampered, msg)
	}
	r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonReleaseRecordTampered, msg)
	r.setCondition(obj, chartproofv1.ConditionDrifted, metav1.ConditionTrue, chartproofv1.ReasonDriftDetected, msg)
}

// refused records a verdict that does not allow an install. Whatever is
// installed stays.
func (r *VerifiedHelmReleaseReconciler) refused(obj *chartproofv1.VerifiedHelmRelease, res gate.Result) {
	msg := fmt.Sprintf("%s refused: %s", displayDigest(res), res.Verdict.Message())
	if inst := obj.Status.Installed; inst != nil {
		switch {
		case res.Verdict.Inconclusive:
			// Nothing is known of the chart now (an outage): Released
			// keeps saying what the last Helm action left.
		case inst.Digest != res.Digest:
			msg = fmt.Sprintf("upgrade to %s blocked: %s; release stays at %s", displayDigest(res), res.Verdict.Message(), inst.Digest)
			r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionTrue, chartproofv1.ReasonUpgradeBlocked,
				fmt.Sprintf("release %s revision %d stays at %s: the upgrade to %s is blocked (%s)", r.releaseName(obj), inst.Revision, inst.Digest, displayDigest(res), res.Verdict.Code()))
		default:
			r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionTrue, chartproofv1.ReasonReleaseHeld,
				fmt.Sprintf("release %s revision %d stays at %s, which no longer verifies (%s; onVerificationFailure %s)", r.releaseName(obj), inst.Revision, inst.Digest, res.Verdict.Code(), onFailure(obj)))
		}
	} else {
		r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, res.Verdict.Code(), "nothing installed: "+msg)
	}
	r.event(obj, corev1.EventTypeWarning, res.Verdict.Code(), msg)
}

// signatureEvidence is what the status records of an accepted signature.
func signatureEvidence(a policy.Acceptance, now metav1.Time) chartproofv1.SignatureEvidence {
	e := chartproofv1.SignatureEvidence{
		Policy: a.Policy, Authority: a.Authority, KeyID: a.KeyID, Layout: string(a.Layout), Signature: a.Signature, VerifiedAt: now,
		Revocation: bounded(a.Revocation, 1024),
	}
	if a.Identity != nil {
		e.Issuer, e.Subject = a.Identity.Issuer, a.Identity.Subject
	}
	if a.Log != nil {
		index := a.Log.Index
		e.LogIndex, e.LogID = &index, a.Log.LogID
	}
	if a.SignedAt != nil {
		t := metav1.NewTime(*a.SignedAt)
		e.SignedAt = &t
	}
	return e
}

// recordVerification writes the Verified condition and the evidence.
func (r *VerifiedHelmReleaseReconciler) recordVerification(obj *chartproofv1.VerifiedHelmRelease, res gate.Result) {
	v := res.Verdict
	now := metav1.NewTime(r.now())
	obj.Status.LastVerifiedTime = &now
	obj.Status.ResolvedDigest, obj.Status.ResolvedVersion = res.Digest, res.Tag
	obj.Status.ShortDigest = shortDigest(res.Digest)
	obj.Status.Evidence, obj.Status.Attestations = nil, nil
	for _, a := range v.Accepted {
		obj.Status.Evidence = append(obj.Status.Evidence, signatureEvidence(a, now))
	}
	for _, a := range v.Attestations {
		obj.Status.Attestations = append(obj.Status.Attestations, chartproofv1.AttestationEvidence{
			Name: a.Name, PredicateType: bounded(a.PredicateType, 1024), SignatureEvidence: signatureEvidence(a.Acceptance, now),
		})
	}
	switch {
	case v.Passed():
		r.setCondition(obj, chartproofv1.ConditionVerified, metav1.ConditionTrue, v.Code(), v.Message())
	case v.Inconclusive:
		r.setCondition(obj, chartproofv1.ConditionVerified, metav1.ConditionUnknown, v.Code(), "verification could not be completed: "+v.Message())
	case v.Audited():
		r.setCondition(obj, chartproofv1.ConditionVerified, metav1.ConditionFalse, v.Code(), "Audit mode, not enforced: "+v.Message())
	default:
		r.setCondition(obj, chartproofv1.ConditionVerified, metav1.ConditionFalse, v.Code(), v.Message())
	}
}

// setReady derives Ready: True only when the installed release is the digest
// that was just verified, and it passed.
func (r *VerifiedHelmReleaseReconciler) setReady(obj *chartproofv1.VerifiedHelmRelease, res gate.Result) {
	inst := obj.Status.Installed
	released := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionReleased)
	switch {
	case released != nil && released.Status == metav1.ConditionFalse:
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, released.Reason, released.Message)
	case inst != nil && inst.Digest == res.Digest && (res.Verdict.Passed() || res.Verdict.Audited()) && testsFailedCount(obj):
		msg := fmt.Sprintf("a test of release %s revision %d failed", r.releaseName(obj), inst.Revision)
		if t := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionTestSuccess); t != nil {
			msg = t.Message
		}
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonTestFailed, msg)
	case inst != nil && inst.Digest == res.Digest && (res.Verdict.Passed() || res.Verdict.Audited()) && !healthy(obj):
		// What runs is the chart Ready would vouch for, but it does not
		// run well (yet): Healthy says which object and why.
		h := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionHealthy)
		r.setCondition(obj, chartproofv1.ConditionReady, h.Status, h.Reason, h.Message)
	case inst != nil && inst.Digest == res.Digest && res.Verdict.Passed():
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionTrue, released.Reason,
			fmt.Sprintf("release %s revision %d is the verified %s", r.releaseName(obj), inst.Revision, inst.Digest))
	case inst != nil && inst.Digest == res.Digest && res.Verdict.Audited():
		// Audit mode must not fail a GitOps health check: Ready, and
		// Verified=False, a Warning event and the metrics say what failed.
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionTrue, chartproofv1.ReasonAuditOnly,
			fmt.Sprintf("release %s revision %d is %s, installed in Audit mode without passing verification: %s", r.releaseName(obj), inst.Revision, inst.Digest, res.Verdict.Message()))
	case inst != nil && inst.Digest != res.Digest && res.Digest != "" && !res.Verdict.Allowed():
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonUpgradeBlocked,
			fmt.Sprintf("upgrade to %s blocked by %s; release stays at %s", res.Digest, res.Verdict.Code(), inst.Digest))
	case res.Verdict.Audited():
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonAuditOnly,
			"installed in Audit mode without passing verification: "+res.Verdict.Message())
	default:
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, res.Verdict.Code(), res.Verdict.Message())
	}
}

func (r *VerifiedHelmReleaseReconciler) stalled(obj *chartproofv1.VerifiedHelmRelease, code, msg string) {
	r.setCondition(obj, chartproofv1.ConditionVerified, metav1.ConditionFalse, code, msg)
	r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, code, msg)
	r.setCondition(obj, chartproofv1.ConditionStalled, metav1.ConditionTrue, code, msg)
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionReconciling)
	r.event(obj, corev1.EventTypeWarning, code, msg)
}

func (r *VerifiedHelmReleaseReconciler) setCondition(obj *chartproofv1.VerifiedHelmRelease, t string, s metav1.ConditionStatus, reason, msg string) {
	if len(msg) > 32000 {
		msg = msg[:32000]
	}
	apimeta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: obj.Generation,
	})
}

func (r *VerifiedHelmReleaseReconciler) event(obj *chartproofv1.VerifiedHelmRelease, eventType, reason, msg string) {
	if r.Recorder == nil {
		return
	}
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	r.Recorder.Eventf(obj, nil, eventType, reason, "Reconcile", "%s", msg)
}

// trustOf is the release record a caller vouches for: the one status says
// chartproof installed; nil when it installed none.
func trustOf(inst *chartproofv1.InstalledRelease) *release.Trust {
	if inst == nil {
		return nil
	}
	return &release.Trust{Revision: inst.Revision, Digest: inst.RecordDigest}
}

// uninstallTrust is the record an uninstall of obj may follow: the one it
// installed, else the one its failed install wrote (status.lastAttempt);
// nil when there is neither, and then no record decides a deletion.
func uninstallTrust(obj *chartproofv1.VerifiedHelmRelease) *release.Trust {
	if inst := obj.Status.Installed; inst != nil {
		return trustOf(inst)
	}
	if a := obj.Status.LastAttempt; a != nil && a.Install && a.RecordDigest != "" {
		return &release.Trust{Revision: int(a.RecordRevision), Digest: a.RecordDigest}
	}
	return nil
}

// vouchForFailedInstall records in a the record a failed install wrote
// (failed, as Apply returned it), so that an uninstall can follow that
// record and no other. With something installed, or no record, it records
// none.
func vouchForFailedInstall(a *chartproofv1.Attempt, inst *chartproofv1.InstalledRelease, failed *helmrelease.Release) {
	a.RecordRevision, a.RecordDigest = 0, ""
	if inst != nil || failed == nil {
		return
	}
	d, err := release.StoredDigest(failed)
	if err != nil {
		return
	}
	a.RecordRevision, a.RecordDigest = int32(failed.Version), d
}

// countTampered counts a release record found rewritten.
func (r *VerifiedHelmReleaseReconciler) countTampered() {
	if r.RecordsTampered != nil {
		r.RecordsTampered.Inc()
	}
}

// deployedAs reports whether the Helm release rel is still the one
// recorded in status, in a deployed state.
func deployedAs(rel *helmrelease.Release, inst *chartproofv1.InstalledRelease) bool {
	return rel.Version == inst.Revision && rel.Info != nil && rel.Info.Status == "deployed"
}

// recordIntact reports whether the deployed record is the one chartproof
// wrote: its digest is the one status recorded. A record edited since is not
// up to date: the install path then finds it tampered (release.Apply) and
// repairs it. A status from before record digests were kept has none to
// compare.
func recordIntact(rel *helmrelease.Release, inst *chartproofv1.InstalledRelease) bool {
	if inst.RecordDigest == "" {
		return true
	}
	d, err := release.RecordDigest(rel)
	return err == nil && d == inst.RecordDigest
}

func (r *VerifiedHelmReleaseReconciler) targetNamespace(obj *chartproofv1.VerifiedHelmRelease) string {
	if obj.Spec.TargetNamespace != "" {
		return obj.Spec.TargetNamespace
	}
	return obj.Namespace
}

// storageNamespace is where the release's Helm records are.
func (r *VerifiedHelmReleaseReconciler) storageNamespace(obj *chartproofv1.VerifiedHelmRelease) string {
	if s := obj.Spec.StorageNamespace; s != "" {
		return s
	}
	return r.targetNamespace(obj)
}

// location is where the spec puts the release: its objects and its records.
func (r *VerifiedHelmReleaseReconciler) location(obj *chartproofv1.VerifiedHelmRelease) release.Location {
	return release.Location{Namespace: r.targetNamespace(obj), Storage: r.storageNamespace(obj)}
}

// locationOf is where an installed release is, by its status.
func locationOf(inst *chartproofv1.InstalledRelease) release.Location {
	return release.Location{Namespace: inst.Namespace, Storage: storageOf(inst)}
}

// storageOf is the namespace of an installed release's records.
func storageOf(inst *chartproofv1.InstalledRelease) string {
	if inst.StorageNamespace != "" {
		return inst.StorageNamespace
	}
	return inst.Namespace
}

// storageField is status.installed.storageNamespace of a release whose
// objects are in namespace and records in storage: empty when they are the
// same.
func storageField(namespace, storage string) string {
	if storage == namespace {
		return ""
	}
	return storage
}

func (r *VerifiedHelmReleaseReconciler) releaseName(obj *chartproofv1.VerifiedHelmRelease) string {
	if obj.Spec.ReleaseName != "" {
		return obj.Spec.ReleaseName
	}
	return obj.Name
}

// loadPolicy fetches and compiles the policies that judge the release: the
// one it names, and the mandatory ClusterTrustPolicies that bind its
// namespace (loadMandatory). It returns them as a gate.Request without the
// chart. The returned code is the reason when it fails.
func (r *VerifiedHelmReleaseReconciler) loadPolicy(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease) (gate.Request, string, error) {
	ref := obj.Spec.TrustPolicyRef
	var (
		spec chartproofv1.TrustPolicySpec
		pref policy.Ref
		rv   string
	)
	switch ref.Kind {
	case "", "TrustPolicy":
		if err := policy.CrossNamespace(ref, obj.Namespace); err != nil {
			// Never read: a release is judged by its own namespace's trust.
			return gate.Request{}, chartproofv1.ReasonCrossNamespaceReference, err
		}
		var tp chartproofv1.TrustPolicy
		if err := r.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, &tp); err != nil {
			return gate.Request{}, notFoundCode(err), fmt.Errorf("TrustPolicy %s/%s: %w", obj.Namespace, ref.Name, err)
		}
		spec, pref, rv = tp.Spec, policy.Ref{Kind: "TrustPolicy", Namespace: tp.Namespace, Name: tp.Name, UID: string(tp.UID)}, tp.ResourceVersion
	case "ClusterTrustPolicy":
		var ctp chartproofv1.ClusterTrustPolicy
		if err := r.Get(ctx, types.NamespacedName{Name: ref.Name}, &ctp); err != nil {
			return gate.Request{}, notFoundCode(err), fmt.Errorf("ClusterTrustPolicy %s: %w", ref.Name, err)
		}
		spec, pref, rv = ctp.Spec, policy.Ref{Kind: "ClusterTrustPolicy", Name: ctp.Name, UID: string(ctp.UID)}, ctp.ResourceVersion
	default:
		return gate.Request{}, chartproofv1.ReasonInvalidSpec, fmt.Errorf("trustPolicyRef kind %q is neither TrustPolicy nor ClusterTrustPolicy", ref.Kind)
	}
	named, err := r.compile(ctx, pref, rv, spec)
	if err != nil {
		return gate.Request{}, compileFailure(err), err
	}
	mandatory, code, err := r.loadMandatory(ctx, obj.Namespace, pref, named)
	if err != nil {
		return gate.Request{}, code, err
	}
	return gate.Request{Policy: named.Policy, Verifier: named.Verifier, Mandatory: mandatory,
		RequireClusterPolicy: r.RequireClusterPolicy, Cache: r.Cache, Revocation: r.Revocation}, "", nil
}

// The manager reads namespaces' labels, which mandatory ClusterTrustPolicies
// select on, and watches them: a label change re-verifies the namespace's
// releases.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// loadMandatory compiles the ClusterTrustPolicies whose namespaceSelector
// binds namespace; the named policy, when it is one of them, is not
// compiled twice. Only a binding policy is compiled, and its trust material
// read. One that cannot be compiled, a selector that does not parse, or a
// namespace that cannot be read, denies the release: deny by default.
func (r *VerifiedHelmReleaseReconciler) loadMandatory(ctx context.Context, namespace string, namedRef policy.Ref, named gate.Judge) ([]gate.Judge, string, error) {
	binding, err := r.bindingPolicies(ctx, namespace)
	if err != nil {
		return nil, chartproofv1.ReasonInvalidPolicy, err
	}
	var judges []gate.Judge
	for _, ctp := range binding {
		ref := policy.Ref{Kind: "ClusterTrustPolicy", Name: ctp.Name, UID: string(ctp.UID)}
		if ref == namedRef {
			judges = append(judges, named)
			continue
		}
		j, err := r.compile(ctx, ref, ctp.ResourceVersion, ctp.Spec)
		if err != nil {
			return nil, compileFailure(err), fmt.Errorf("mandatory %w", err)
		}
		judges = append(judges, j)
	}
	return judges, "", nil
}

// compile compiles a policy, reading its trust material, and builds its
// verifier; resourceVersion is the policy object's. A policy compiled
// from the same object and the same versions of its Secrets and ConfigMaps
// is reused (compiledPolicies).
func (r *VerifiedHelmReleaseReconciler) compile(ctx context.Context, ref policy.Ref, resourceVersion string, spec chartproofv1.TrustPolicySpec) (gate.Judge, error) {
	now := time.Now()
	var key string
	if versions, ok := r.Sources.Versions(trustSources(ref.Namespace, spec)); ok && resourceVersion != "" {
		// A trusted root a TUF repository changed misses too.
		key = compiledKey(ref.UID+"@"+resourceVersion+"#"+strconv.FormatUint(r.TUF.Generation(), 10), versions)
		if j, ok := r.compiled.get(ref.String(), key, now); ok {
			return j, nil
		}
	}
	p, err := policy.Compile(ref, spec, fetchTrustSources(ctx, r.APIReader, r.TUF, ref.Namespace, spec))
	if err != nil {
		return gate.Judge{}, err
	}
	v, err := verify.ForPolicy(p)
	if err != nil {
		return gate.Judge{}, err
	}
	j := gate.Judge{Policy: p, Verifier: v}
	if key != "" {
		r.compiled.put(ref.String(), key, j, now)
	}
	return j, nil
}

// compileFailure is the reason code of a policy that did not compile: its
// trusted root's TUF repository could not be read or did not verify, or
// the policy itself cannot be used.
func compileFailure(err error) string {
	switch {
	case errors.Is(err, policy.ErrTrustedRootRefused):
		return chartproofv1.ReasonTrustedRootRefused
	case errors.Is(err, policy.ErrTrustedRootUnavailable):
		return chartproofv1.ReasonTrustedRootUnavailable
	}
	return chartproofv1.ReasonInvalidPolicy
}

func notFoundCode(err error) string {
	if apierrors.IsNotFound(err) {
		return chartproofv1.ReasonPolicyNotFound
	}
	return chartproofv1.ReasonInvalidPolicy
}

// shortDigest is the first 12 hex characters of a sha256 digest.
func shortDigest(d string) string {
	const prefix = len("sha256:")
	if len(d) < prefix+12 {
		return ""
	}
	return d[prefix : prefix+12]
}

func displayDigest(res gate.Result) string {
	if res.Digest != "" {
		return res.Repository + "@" + res.Digest
	}
	return res.Repository
}

// configDigestOf is the sha256 of the values as canonical JSON.
func configDigestOf(values map[string]any) (string, error) {
	b, err := json.Marshal(values)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
