package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	helmrelease "helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/drift"
	"github.com/chartproof/chartproof/internal/identity"
)

// defaultTimeout bounds the wait for a release's objects to become healthy
// when spec.timeout says nothing (Flux's default).
const defaultTimeout = 5 * time.Minute

// Health polling: soon after a Helm action, less often as the wait goes
// on (a fifth of the time waited so far, within these bounds). A
// Deployment's status is not watched: the watches of what a release
// deployed skip status-only updates.
const (
	minHealthPoll = time.Second
	maxHealthPoll = 30 * time.Second
)

// releaseTimeout is spec.timeout, or defaultTimeout.
func releaseTimeout(obj *chartproofv1.VerifiedHelmRelease) time.Duration {
	if t := obj.Spec.Timeout; t != nil && t.Duration > 0 {
		return t.Duration
	}
	return defaultTimeout
}

// waits reports whether the last Helm action of obj is to be waited for:
// not when spec.install.disableWait (an install: revision 1) or
// spec.upgrade.disableWait (an upgrade) says so.
func waits(obj *chartproofv1.VerifiedHelmRelease) bool {
	inst := obj.Status.Installed
	if inst == nil {
		return false
	}
	if inst.Revision <= 1 {
		return obj.Spec.Install == nil || !obj.Spec.Install.DisableWait
	}
	return obj.Spec.Upgrade == nil || !obj.Spec.Upgrade.DisableWait
}

// checkHealth reads, as the release's ServiceAccount, every object the
// release rel deployed and computes its kstatus (the library kubectl and
// Flux use), and writes the Healthy condition: True when every one is
// Current; Unknown while one is not yet and spec.timeout has not passed
// since the Helm action (then it returns how soon to look again); False,
// naming the object and why, when one Failed or the time is up. A release
// whose last action is not waited for has no Healthy condition.
func (r *VerifiedHelmReleaseReconciler) checkHealth(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, acct *identity.Account, rel *helmrelease.Release) healthResult {
	inst := obj.Status.Installed
	if !waits(obj) {
		apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionHealthy)
		return healthResult{ok: true}
	}
	// A change of trust re-judges the signatures, not the workloads: what
	// the last check found stands until the release's own reconcile.
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionHealthy); c != nil &&
		c.Status != metav1.ConditionUnknown && c.ObservedGeneration == obj.Generation && r.queuedByTrustChange(obj.UID) {
		return healthResult{}
	}
	desired, err := drift.Desired(rel.Manifest, rel.Name, rel.Namespace, func(u *unstructured.Unstructured) (bool, error) {
		return acct.Client.IsObjectNamespaced(u)
	})
	if err != nil {
		log.FromContext(ctx).Error(err, "reading the release's rendering for its health check")
		return r.unhealthy(obj, "the release's rendering in its Helm record could not be read; the manager's log has the whole error")
	}
	// The reconcile refused the release (InvalidSpec) before any action
	// if they did not compile.
	exprs, err := compileHealthExprs(obj.Spec.HealthCheckExprs)
	if err != nil {
		return r.unhealthy(obj, err.Error())
	}
	var waiting, failed string
	for _, want := range desired {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(want.GroupVersionKind())
		err := acct.Client.Get(ctx, client.ObjectKeyFromObject(want), got)
		what := drift.ID(want)
		switch {
		case apierrors.IsNotFound(err):
			waiting = what + " does not exist"
		case err != nil:
			// As the release's ServiceAccount: its RBAC must let it read
			// what it deployed (Helm reads them too, to upgrade).
			failed = fmt.Sprintf("%s could not be read as %s: %v", what, actingAs(acct), err)
		default:
			st, msg, err := exprs.statusOf(got)
			switch {
			case err != nil:
				failed = fmt.Sprintf("%s: %v", what, err)
			case st == status.FailedStatus:
				failed = fmt.Sprintf("%s is %s: %s", what, st, msg)
			case st != status.CurrentStatus:
				waiting = fmt.Sprintf("%s is %s: %s", what, st, msg)
			}
		}
		if failed != "" {
			break
		}
	}
	var waited time.Duration
	if inst.DeployedAt != nil {
		waited = r.now().Sub(inst.DeployedAt.Time)
	} else {
		waited = releaseTimeout(obj) // deployed before chartproof recorded when: no wait left
	}
	switch {
	case failed == "" && waiting == "":
		r.setHealthy(obj, metav1.ConditionTrue, chartproofv1.ReasonHealthCheckSucceeded,
			fmt.Sprintf("the %d objects of release %s revision %d are healthy", len(desired), rel.Name, inst.Revision))
		return healthResult{ok: true}
	case failed == "" && waited < releaseTimeout(obj):
		r.setHealthy(obj, metav1.ConditionUnknown, chartproofv1.ReasonHealthCheckPending,
			fmt.Sprintf("waiting up to %s for release %s revision %d: %s", releaseTimeout(obj), rel.Name, inst.Revision, waiting))
		return healthResult{poll: min(max(waited/5, minHealthPoll), maxHealthPoll, releaseTimeout(obj)-waited)}
	case failed == "":
		failed = fmt.Sprintf("%s (not healthy within spec.timeout %s)", waiting, releaseTimeout(obj))
	}
	return r.unhealthy(obj, fmt.Sprintf("release %s revision %d is not healthy: %s", rel.Name, inst.Revision, failed))
}

// healthResult is what a health check found.
type healthResult struct {
	// ok: healthy, or not waited for.
	ok bool
	// poll > 0: not healthy yet; looked at again that soon.
	poll time.Duration
	// failedNow: Healthy just turned False after the action, a failure of
	// it (a Helm action clears Healthy, so each revision fails once); why
	// says what failed.
	failedNow bool
	why       string
}

// unhealthy writes Healthy=False with why. It is a failure of the last
// action only as the first finding after it (Healthy absent, as a Helm
// action leaves it, or pending): a release that was healthy and is not any
// more (a node lost, a dependency down) is reported, not upgraded, rolled
// back or uninstalled.
func (r *VerifiedHelmReleaseReconciler) unhealthy(obj *chartproofv1.VerifiedHelmRelease, why string) healthResult {
	was := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionHealthy)
	failedNow := was == nil || was.Status == metav1.ConditionUnknown
	r.setHealthy(obj, metav1.ConditionFalse, chartproofv1.ReasonHealthCheckFailed, why)
	return healthResult{failedNow: failedNow, why: why}
}

// setHealthy writes the Healthy condition, with an event when it changes
// between True and False.
func (r *VerifiedHelmReleaseReconciler) setHealthy(obj *chartproofv1.VerifiedHelmRelease, s metav1.ConditionStatus, reason, msg string) {
	var was metav1.ConditionStatus // "" when there was none
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionHealthy); c != nil {
		was = c.Status
	}
	r.setCondition(obj, chartproofv1.ConditionHealthy, s, reason, msg)
	switch {
	case was == s:
	case s == metav1.ConditionFalse:
		r.event(obj, corev1.EventTypeWarning, reason, msg)
	case s == metav1.ConditionTrue && was == metav1.ConditionFalse:
		r.event(obj, corev1.EventTypeNormal, reason, msg)
	}
}

// healthy reports whether the Healthy condition, when there is one, is True.
func healthy(obj *chartproofv1.VerifiedHelmRelease) bool {
	c := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionHealthy)
	return c == nil || c.Status == metav1.ConditionTrue
}
