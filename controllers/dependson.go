package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// dependsOnIndex indexes releases by the releases they depend on
// (namespace/name).
const dependsOnIndex = ".spec.dependsOn"

// dependencyRetry is how soon a release waiting for a dependency looks
// again, should no change of the dependency's Ready wake it.
const dependencyRetry = 5 * time.Second

// dependsOnKeys are the index keys of obj's dependencies.
func dependsOnKeys(obj *chartproofv1.VerifiedHelmRelease) []string {
	keys := make([]string, 0, len(obj.Spec.DependsOn))
	for _, d := range obj.Spec.DependsOn {
		keys = append(keys, obj.Namespace+"/"+d.Name)
	}
	return keys
}

// dependenciesNotReady says which releases obj depends on are missing or
// not Ready for their current generation; "" when every one is.
func (r *VerifiedHelmReleaseReconciler) dependenciesNotReady(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease) string {
	var waiting []string
	for _, d := range obj.Spec.DependsOn {
		var dep chartproofv1.VerifiedHelmRelease
		err := r.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: d.Name}, &dep)
		switch {
		case apierrors.IsNotFound(err):
			waiting = append(waiting, d.Name+" (not found)")
		case err != nil:
			log.FromContext(ctx).Error(err, "reading a dependency", "dependency", d.Name)
			waiting = append(waiting, d.Name+" (could not be read)")
		default:
			c := apimeta.FindStatusCondition(dep.Status.Conditions, chartproofv1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionTrue || dep.Status.ObservedGeneration != dep.Generation || c.ObservedGeneration != dep.Generation {
				waiting = append(waiting, d.Name)
			}
		}
	}
	if len(waiting) == 0 {
		return ""
	}
	return fmt.Sprintf("waiting for %s to be Ready (spec.dependsOn) before the install or upgrade", strings.Join(waiting, ", "))
}

// dependentsOf maps a release to the releases of its namespace that depend
// on it.
func (r *VerifiedHelmReleaseReconciler) dependentsOf(ctx context.Context, o client.Object) []reconcile.Request {
	var list chartproofv1.VerifiedHelmReleaseList
	if err := r.List(ctx, &list, client.MatchingFields{dependsOnIndex: o.GetNamespace() + "/" + o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing the releases that depend on a release", "namespace", o.GetNamespace(), "name", o.GetName())
		return nil
	}
	return requestsFor(list)
}

// readyChanged passes an update whose Ready condition changed status, and
// a release created or deleted: what its dependents wait for.
func readyChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, okOld := e.ObjectOld.(*chartproofv1.VerifiedHelmRelease)
			cur, okNew := e.ObjectNew.(*chartproofv1.VerifiedHelmRelease)
			if !okOld || !okNew {
				return false
			}
			return apimeta.IsStatusConditionTrue(old.Status.Conditions, chartproofv1.ConditionReady) !=
				apimeta.IsStatusConditionTrue(cur.Status.Conditions, chartproofv1.ConditionReady)
		},
	}
}
