package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/release"
)

// Remediation defaults: a failed install or upgrade is tried again
// defaultRetries times, retryBackoff after the first failure, twice as
// long after each next one (at most the interval).
const (
	defaultRetries = 3
	retryBackoff   = 5 * time.Second
)

// remediation is what spec.install.remediation (install) or
// spec.upgrade.remediation says, with the defaults: Hold for an install,
// Rollback for an upgrade.
func remediation(obj *chartproofv1.VerifiedHelmRelease, install bool) (retries int32, strategy chartproofv1.RemediationStrategy) {
	retries, strategy = defaultRetries, chartproofv1.RemediationRollback
	var r *chartproofv1.Remediation
	if install {
		strategy = chartproofv1.RemediationHold
		if obj.Spec.Install != nil {
			r = obj.Spec.Install.Remediation
		}
	} else if obj.Spec.Upgrade != nil {
		r = obj.Spec.Upgrade.Remediation
	}
	if r != nil && r.Retries != nil {
		retries = *r.Retries
	}
	if r != nil && r.Strategy != "" {
		strategy = r.Strategy
	}
	return retries, strategy
}

// attempt is status.lastAttempt when it is about digest and configDigest at
// obj's generation, nil otherwise: a new target starts with no failure.
func attempt(obj *chartproofv1.VerifiedHelmRelease, digest, configDigest string) *chartproofv1.Attempt {
	a := obj.Status.LastAttempt
	if a == nil || a.Digest != digest || a.ConfigDigest != configDigest || a.Generation != obj.Generation {
		return nil
	}
	return a
}

// exhausted reports whether a has failed more times than its action may be
// retried: nothing more is tried for its target.
func exhausted(obj *chartproofv1.VerifiedHelmRelease, a *chartproofv1.Attempt) bool {
	if a == nil {
		return false
	}
	retries, _ := remediation(obj, a.Install)
	return a.Failures > retries
}

// retryIn is how long until a's action may be tried again: 0 when it may
// now (no failure, or its backoff has passed).
func (r *VerifiedHelmReleaseReconciler) retryIn(obj *chartproofv1.VerifiedHelmRelease, a *chartproofv1.Attempt) time.Duration {
	if a == nil || a.Failures == 0 || a.FailedAt == nil {
		return 0
	}
	backoff := releaseInterval(obj)
	if a.Failures <= 16 {
		backoff = min(backoff, retryBackoff<<(a.Failures-1))
	}
	return max(a.FailedAt.Add(backoff).Sub(r.now()), 0)
}

// failed counts a failure of the install (install) or upgrade to digest
// with configDigest, and returns the attempt.
func (r *VerifiedHelmReleaseReconciler) failed(obj *chartproofv1.VerifiedHelmRelease, digest, configDigest string, install bool) *chartproofv1.Attempt {
	a := attempt(obj, digest, configDigest)
	if a == nil {
		a = &chartproofv1.Attempt{Digest: digest, ConfigDigest: configDigest, Generation: obj.Generation, Install: install}
	}
	a.Failures++
	a.FailedAt = ptr.To(metav1.NewTime(r.now()))
	obj.Status.LastAttempt = a
	return a
}

// succeeded says the release runs what it was asked to, healthy (or not
// waited for): failures are forgotten, and what runs is what an upgrade's
// remediation rolls back to.
func succeeded(obj *chartproofv1.VerifiedHelmRelease) {
	inst := obj.Status.Installed
	if inst == nil {
		return
	}
	if a := obj.Status.LastAttempt; a != nil && a.Digest == inst.Digest && a.ConfigDigest == inst.ConfigDigest {
		obj.Status.LastAttempt = nil
		apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionRemediated)
	}
	healthy := *inst
	obj.Status.LastHealthy = &healthy
}

// actionFailed follows a failure a of an action: its next try's wait while
// retries remain; after the last, the remediation, once, and the release a
// rollback wrote (nil otherwise).
func (r *VerifiedHelmReleaseReconciler) actionFailed(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, a *chartproofv1.Attempt, m remedy) (time.Duration, *helmrelease.Release) {
	switch {
	case !exhausted(obj, a):
		return r.retryIn(obj, a), nil
	case a.Remediated:
		return 0, nil
	default:
		return 0, r.remediate(ctx, obj, a, m)
	}
}

// remediation arguments: what the reconcile observed.
type remedy struct {
	acct   *identity.Account
	reg    gate.Registry
	judges gate.Request
	why    string // the last failure
}

// remediate does what the remediation strategy of a's action says, once,
// after its last retry failed, and returns the release a rollback wrote
// (nil otherwise).
func (r *VerifiedHelmReleaseReconciler) remediate(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, a *chartproofv1.Attempt, m remedy) *helmrelease.Release {
	retries, strategy := remediation(obj, a.Install)
	action, field := "upgrade", "spec.upgrade.remediation"
	if a.Install {
		action, field = "install", "spec.install.remediation"
	}
	a.Remediated = true
	why := fmt.Sprintf("%s of %s failed %s (%s.retries %d): %s", action, a.Digest, times(a.Failures), field, retries, m.why)
	switch {
	case strategy == chartproofv1.RemediationUninstall:
		// After a failed install (inst is nil), the record it wrote, as
		// status.lastAttempt names it, is the one followed; without one,
		// the records are dropped and nothing deleted.
		ns, name := r.targetNamespace(obj), r.releaseName(obj)
		err := m.acct.Releases.Uninstall(ctx, r.location(obj), name, string(obj.UID), uninstallTrust(obj))
		if err != nil && !errors.Is(err, release.ErrNotFound) {
			log.FromContext(ctx).Error(err, "remediation: uninstalling failed")
			msg := fmt.Sprintf("%s; helm uninstall as %s failed: %s", why, actingAs(m.acct), helmFailure(err, nil))
			r.setCondition(obj, chartproofv1.ConditionRemediated, metav1.ConditionFalse, chartproofv1.ReasonUninstallFailed, msg)
			r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonUninstallFailed, msg)
			return nil
		}
		obj.Status.Installed = nil
		apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionHealthy)
		msg := fmt.Sprintf("%s; uninstalled release %s/%s as %s (strategy Uninstall)", why, ns, name, actingAs(m.acct))
		r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonUninstallSucceeded, msg)
		r.setCondition(obj, chartproofv1.ConditionRemediated, metav1.ConditionTrue, chartproofv1.ReasonUninstallSucceeded, msg)
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonUninstallSucceeded, msg)
		return nil
	case strategy == chartproofv1.RemediationRollback && !a.Install:
		rel, msg := r.rollbackToHealthy(ctx, obj, m, why)
		if rel == nil {
			r.setCondition(obj, chartproofv1.ConditionRemediated, metav1.ConditionFalse, chartproofv1.ReasonRollbackFailed, msg)
			r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonRollbackFailed, msg)
			return nil
		}
		r.setCondition(obj, chartproofv1.ConditionRemediated, metav1.ConditionTrue, chartproofv1.ReasonRollbackSucceeded, msg)
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonRollbackSucceeded, msg)
		return rel
	default:
		msg := why + "; left as it is (strategy Hold)"
		r.setCondition(obj, chartproofv1.ConditionRemediated, metav1.ConditionFalse, chartproofv1.ReasonRetriesExhausted, msg)
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonRetriesExhausted, msg)
		return nil
	}
}

// rollbackToHealthy installs again the last revision that was healthy
// (status.lastHealthy): its chart verified again by digest under the
// policy as it is now and read by that digest, rendered with the values of
// its own Helm record, which must be the record chartproof wrote (its
// digest). It returns the release written, or nil and why not.
func (r *VerifiedHelmReleaseReconciler) rollbackToHealthy(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, m remedy, why string) (*helmrelease.Release, string) {
	to := obj.Status.LastHealthy
	if to == nil || to.RecordDigest == "" {
		return nil, why + "; no earlier revision was healthy: nothing to roll back to, the release is left as it is"
	}
	name := r.releaseName(obj)
	if locationOf(to) != r.location(obj) || to.Name != name {
		return nil, why + "; the last healthy revision belongs to another Helm release: the release is left as it is"
	}
	// Its values come from its record, checked first: the record is
	// evidence anyone who may write Secrets here could have rewritten.
	old, err := m.acct.Releases.GetRevision(ctx, r.storageNamespace(obj), name, to.Revision)
	if err != nil {
		return nil, fmt.Sprintf("%s; reading revision %d to roll back to as %s failed: %s; the release is left as it is", why, to.Revision, actingAs(m.acct), helmFailure(err, nil))
	}
	if d, err := release.RecordDigest(old); err != nil || d != to.RecordDigest {
		r.countTampered()
		return nil, fmt.Sprintf("%s; revision %d is not the record chartproof wrote: not rolled back to, the release is left as it is", why, to.Revision)
	}
	vctx, cancel := r.verifyContext(ctx)
	req := m.judges
	req.URL, req.Version, req.SignatureRepository = obj.Spec.Chart.URL, to.Digest, obj.Spec.Chart.SignatureRepository
	req.AllowDowngrade = true // going back is what a rollback is
	cand := gate.Check(vctx, m.reg, r.Metrics, req)
	cancel()
	if !cand.Verdict.Passed() {
		return nil, fmt.Sprintf("%s; %s, revision %d, does not verify now (%s): not rolled back to, the release is left as it is", why, to.Digest, to.Revision, cand.Verdict.Code())
	}
	values := old.Config
	configDigest, err := configDigestOf(values)
	if err != nil {
		return nil, fmt.Sprintf("%s; the values of revision %d: %v", why, to.Revision, err)
	}
	rel, err := r.install(ctx, obj, m.acct, m.reg, cand, values, configDigest, adoption{}, false)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("%s; rolling back to %s (revision %d) as %s failed: %s; the release is left as it is", why, to.Digest, to.Revision, actingAs(m.acct), helmFailure(err, nil))
	case rel == nil:
		return nil, fmt.Sprintf("%s; the chart of %s was refused as it was read: not rolled back to, the release is left as it is", why, to.Digest)
	}
	return rel, fmt.Sprintf("%s; rolled back to %s (chart %s, the values of revision %d), verified again and rendered from that digest, revision %d, as %s",
		why, to.Digest, to.ChartVersion, to.Revision, rel.Version, actingAs(m.acct))
}

// retriesExhausted makes Ready say so when the action the spec asks for
// failed more often than its remediation allows: whatever runs (a
// rollback's revision, what the failure left), it is not what was asked.
func (r *VerifiedHelmReleaseReconciler) retriesExhausted(obj *chartproofv1.VerifiedHelmRelease, res gate.Result, configDigest string) {
	a := attempt(obj, res.Digest, configDigest)
	if !res.Verdict.Allowed() || !exhausted(obj, a) {
		return
	}
	retries, _ := remediation(obj, a.Install)
	action := "upgrade"
	if a.Install {
		action = "install"
	}
	done := ""
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, chartproofv1.ConditionRemediated); c != nil {
		done = fmt.Sprintf(", then %s (the Remediated condition says more)", c.Reason)
	}
	msg := fmt.Sprintf("%s of %s failed %s (retries %d)%s: nothing more is tried until the spec changes", action, a.Digest, times(a.Failures), retries, done)
	r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonRetriesExhausted, msg)
}

// times says how often: "once", "2 times".
func times(n int32) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}
