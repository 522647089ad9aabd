package controllers

import (
	"context"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/tufroot"
	"github.com/chartproof/chartproof/internal/verify"
)

// TrustPolicyReconciler reports on each TrustPolicy and ClusterTrustPolicy
// whether it can be used: its keys parse, are strong enough, and the Secrets
// it names exist. It decides nothing about charts.
type TrustPolicyReconciler struct {
	client.Client
	// APIReader reads the referenced Secrets uncached.
	APIReader client.Reader
	// Cluster selects ClusterTrustPolicy instead of TrustPolicy.
	Cluster bool
	// Sources watches what policies read; each reconcile brings it up to
	// date with the policies (nil watches nothing).
	Sources *SourceWatches
	// TUF reads the TUF repositories of trustedRoot.tuf references.
	TUF *tufroot.Store
}

// +kubebuilder:rbac:groups=delivery.chartproof.dev,resources=trustpolicies/status;clustertrustpolicies/status,verbs=get;update;patch

// SetupWithManager registers the reconciler.
func (r *TrustPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	var obj client.Object = &chartproofv1.TrustPolicy{}
	name := "trustpolicy"
	if r.Cluster {
		obj, name = &chartproofv1.ClusterTrustPolicy{}, "clustertrustpolicy"
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	// A Secret or ConfigMap the policy reads may appear, change or go.
	if r.Sources != nil {
		b.WatchesRawSource(r.Sources.Source(r.policiesOfSource))
	}
	return b.Complete(r)
}

// policiesOfSource maps a Secret or ConfigMap to the policies of this
// reconciler's kind that read it.
func (r *TrustPolicyReconciler) policiesOfSource(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []ctrl.Request {
		var list client.ObjectList = &chartproofv1.TrustPolicyList{}
		if r.Cluster {
			list = &chartproofv1.ClusterTrustPolicyList{}
		}
		if err := r.List(ctx, list, sourceKey(kind, o)); err != nil {
			log.FromContext(ctx).Error(err, "listing policies of a trust source", "kind", kind, "name", o.GetName())
			return nil
		}
		var reqs []ctrl.Request
		_ = apimeta.EachListItem(list, func(item runtime.Object) error {
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(item.(client.Object))})
			return nil
		})
		return reqs
	}
}

// Reconcile compiles the policy and writes its Ready condition.
func (r *TrustPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var (
		obj    client.Object
		spec   *chartproofv1.TrustPolicySpec
		status *chartproofv1.TrustPolicyStatus
		ref    policy.Ref
	)
	if r.Cluster {
		ctp := &chartproofv1.ClusterTrustPolicy{}
		obj, spec, status, ref = ctp, &ctp.Spec, &ctp.Status, policy.Ref{Kind: "ClusterTrustPolicy", Name: req.Name}
	} else {
		tp := &chartproofv1.TrustPolicy{}
		obj, spec, status, ref = tp, &tp.Spec, &tp.Status, policy.Ref{Kind: "TrustPolicy", Namespace: req.Namespace, Name: req.Name}
	}
	if r.Sources != nil {
		// A policy created, changed or deleted may read other objects.
		if err := r.Sources.Sync(ctx, r.Client); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := obj.DeepCopyObject().(client.Object)
	ref.UID = string(obj.GetUID())
	cond := metav1.Condition{Type: chartproofv1.ConditionReady, ObservedGeneration: obj.GetGeneration()}
	p, err := policy.Compile(ref, *spec, fetchTrustSources(ctx, r.APIReader, r.TUF, ref.Namespace, *spec))
	if err == nil {
		_, err = verify.ForPolicy(p)
	}
	var res ctrl.Result
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, compileFailure(err), err.Error()
		if cond.Reason == chartproofv1.ReasonTrustedRootUnavailable {
			res.RequeueAfter = retryInconclusive // an outage: looked at again soon
		}
	} else {
		cond.Status, cond.Reason = metav1.ConditionTrue, chartproofv1.ReasonPolicyReady
		cond.Message = fmt.Sprintf("%d authorities, threshold %d, mode %s", len(p.Authorities), p.Threshold, p.Mode)
		if r := p.Revoked; r != nil {
			cond.Message += fmt.Sprintf("; revokes %d keys, %d identities and %d certificates, denies %d digests", len(r.KeyIDs), len(r.Identities), len(r.Certificates), len(r.Digests))
		}
	}
	apimeta.SetStatusCondition(&status.Conditions, cond)
	status.ObservedGeneration = obj.GetGeneration()
	// A policy deleted since it was read has no status to write.
	return res, client.IgnoreNotFound(r.Status().Patch(ctx, obj, client.MergeFrom(base)))
}
