package controllers

// Ownership: which Helm release a VerifiedHelmRelease may act on, and how it
// lets go of one (deletion, a moved target). docs/security.md, "Tenancy".

import (
	"context"
	"errors"
	"fmt"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/release"
)

// finalize uninstalls the release this object owns, as its ServiceAccount,
// and lets the object go. A release it never installed, or that another
// owner now holds, is left alone.
func (r *VerifiedHelmReleaseReconciler) finalize(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease) error {
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return nil
	}
	if !obj.Spec.Suspend {
		if err := r.uninstallOwned(ctx, obj); err != nil {
			return err
		}
	}
	patch := client.MergeFrom(obj.DeepCopy())
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := r.Patch(ctx, obj, patch); err != nil {
		return err
	}
	r.drift().forget(obj.UID)
	r.forgetTrust(obj.UID)
	r.ReleaseMetrics.Forget(obj.Namespace, obj.Name)
	r.unsigned.forget(obj.UID)
	return nil
}

// uninstallOwned uninstalls, on deletion, the Helm release this object
// owns. When status says nothing was installed, a failure only warns: an
// object that never installed anything is not held back by an account
// that cannot read the namespace. Otherwise a failure keeps the finalizer.
func (r *VerifiedHelmReleaseReconciler) uninstallOwned(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease) error {
	inst := obj.Status.Installed
	loc, name := r.location(obj), r.releaseName(obj)
	if inst != nil && inst.Name != "" {
		loc, name = locationOf(inst), inst.Name
	}
	namespace := loc.Namespace
	trusted := uninstallTrust(obj)
	acct, err := r.Identities.For(obj.Namespace, obj.Spec.ServiceAccountName)
	if err == nil {
		err = acct.Releases.Uninstall(ctx, loc, name, string(obj.UID), trusted)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, release.ErrRecordTampered):
		// Helm would delete what the rewritten record lists: nothing is
		// uninstalled, and the object goes.
		r.countTampered()
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonReleaseRecordTampered,
			fmt.Sprintf("release %s/%s not uninstalled: the record of revision %d is not the one chartproof wrote; its objects are left as they are", namespace, name, trusted.Revision))
		return nil
	case errors.Is(err, release.ErrNotOwned):
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonReleaseNotOwned,
			fmt.Sprintf("release %s/%s is not owned by this object: left installed", namespace, name))
		return nil
	case inst == nil:
		log.FromContext(ctx).Error(err, "uninstall on deletion failed; nothing was installed", "helmRelease", namespace+"/"+name)
		return nil
	}
	log.FromContext(ctx).Error(err, "uninstall on deletion failed", "helmRelease", namespace+"/"+name)
	msg := fmt.Sprintf("helm uninstall of %s/%s as %s failed: %s", namespace, name, actingAs(acct), helmFailure(err, nil))
	// A namespace being deleted takes the account's rights with it, and
	// would wait for this object for ever: let go, and say so.
	for _, ns := range []string{namespace, loc.Storage, obj.Namespace} {
		if r.namespaceGoing(ctx, ns) {
			msg += fmt.Sprintf("; namespace %s is being deleted: the release is left to it, not uninstalled", ns)
			log.FromContext(ctx).Info(msg)
			r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonUninstallFailed, msg)
			return nil
		}
	}
	r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonUninstallFailed, msg)
	return err
}

// The manager reads a namespace to know whether it is being deleted.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// namespaceGoing reports whether namespace ns is being deleted, or is gone.
// A namespace that cannot be read is not taken to be going.
func (r *VerifiedHelmReleaseReconciler) namespaceGoing(ctx context.Context, ns string) bool {
	var n corev1.Namespace
	err := r.APIReader.Get(ctx, client.ObjectKey{Name: ns}, &n)
	return apierrors.IsNotFound(err) || (err == nil && !n.DeletionTimestamp.IsZero())
}

// uninstallMoved uninstalls the release this object installed before its
// targetNamespace or releaseName changed. One that is no longer its own is
// forgotten, not uninstalled. The new release is installed at the next
// reconcile, soon after.
func (r *VerifiedHelmReleaseReconciler) uninstallMoved(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease,
	acct *identity.Account, interval time.Duration) (ctrl.Result, error) {
	if err := r.checkCurrent(ctx, obj); err != nil {
		return ctrl.Result{}, err
	}
	inst := obj.Status.Installed
	old := inst.Namespace + "/" + inst.Name
	err := acct.Releases.Uninstall(ctx, locationOf(inst), inst.Name, string(obj.UID), trustOf(inst))
	switch {
	case errors.Is(err, release.ErrRecordTampered):
		r.countTampered()
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonReleaseRecordTampered,
			fmt.Sprintf("the target moved; release %s not uninstalled: the record of revision %d is not the one chartproof wrote; its objects are left as they are", old, inst.Revision))
	case errors.Is(err, release.ErrNotOwned):
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonReleaseNotOwned,
			fmt.Sprintf("the target moved; release %s is no longer owned by this object: left installed", old))
	case err != nil:
		log.FromContext(ctx).Error(err, "uninstalling the release of the old target failed", "helmRelease", old)
		msg := fmt.Sprintf("the target moved; helm uninstall of %s as %s failed: %s", old, actingAs(acct), helmFailure(err, nil))
		r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonUninstallFailed, msg)
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonUninstallFailed, msg)
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonUninstallFailed, msg)
		r.setProgress(obj, true)
		return ctrl.Result{RequeueAfter: min(interval, retryInconclusive)}, nil
	default:
		r.event(obj, corev1.EventTypeNormal, chartproofv1.ReasonUninstallSucceeded,
			fmt.Sprintf("the target moved to %s/%s: uninstalled %s", r.targetNamespace(obj), r.releaseName(obj), old))
	}
	obj.Status.Installed = nil
	msg := fmt.Sprintf("the target moved from %s; installing %s/%s next", old, r.targetNamespace(obj), r.releaseName(obj))
	r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonUninstallSucceeded, msg)
	r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonUninstallSucceeded, msg)
	r.setProgress(obj, true)
	return ctrl.Result{RequeueAfter: afterRecovery}, nil
}

// adoption says whether an action must take over the Helm release, and from
// which owner ("" for none): Apply takes it only from that owner, so a
// release another object claimed meanwhile is not taken.
type adoption struct {
	ok   bool
	from string
}

// ownership decides whether this object may act on the Helm release rel,
// the latest record of its target: its own (the record carries its UID), or
// one it may adopt. A release installed by this object before chartproof
// labelled records is its own too: no owner label, status.installed names
// no release (it predates the field) and records rel's revision. It returns
// whether the action must adopt the release, or why it must not touch it.
func (r *VerifiedHelmReleaseReconciler) ownership(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, rel *helmrelease.Release) (adoption, string) {
	owner := release.Owner(rel)
	target := rel.Namespace + "/" + rel.Name
	inst := obj.Status.Installed
	switch {
	case owner == string(obj.UID):
		return adoption{}, ""
	case owner == "" && inst != nil && inst.Name == "" && inst.Revision == rel.Version:
		return adoption{ok: true}, ""
	case !obj.Spec.Adopt:
		if owner == "" {
			return adoption{}, fmt.Sprintf("Helm release %s exists and was not installed by chartproof for this object: left untouched; set spec.adopt to take it over", target)
		}
		return adoption{}, fmt.Sprintf("Helm release %s is owned by another VerifiedHelmRelease (UID %s): left untouched", target, owner)
	case owner == "":
		return adoption{ok: true}, ""
	}
	other, err := r.ownerObject(ctx, owner)
	if err != nil {
		return adoption{}, fmt.Sprintf("Helm release %s has owner UID %s, which could not be looked up: left untouched", target, owner)
	}
	if other != "" {
		return adoption{}, fmt.Sprintf("Helm release %s is owned by VerifiedHelmRelease %s: left untouched; it is never adopted", target, other)
	}
	return adoption{ok: true, from: owner}, ""
}

// ownerObject returns namespace/name of the VerifiedHelmRelease with uid,
// "" when none exists.
func (r *VerifiedHelmReleaseReconciler) ownerObject(ctx context.Context, uid string) (string, error) {
	var list chartproofv1.VerifiedHelmReleaseList
	if err := r.List(ctx, &list); err != nil {
		return "", err
	}
	for _, v := range list.Items {
		if string(v.UID) == uid {
			return v.Namespace + "/" + v.Name, nil
		}
	}
	return "", nil
}
