package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	helmrelease "helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/release"
)

// recordHistory adds a chart the release installed to status.history: last,
// once, at most chartproofv1.MaxHistory kept.
func recordHistory(obj *chartproofv1.VerifiedHelmRelease, rec chartproofv1.ChartRecord) {
	h := slices.DeleteFunc(obj.Status.History, func(c chartproofv1.ChartRecord) bool { return c.Digest == rec.Digest })
	h = append(h, rec)
	if n := len(h) - chartproofv1.MaxHistory; n > 0 {
		h = h[n:]
	}
	obj.Status.History = h
}

// onFailure is what spec.onVerificationFailure asks for.
func onFailure(obj *chartproofv1.VerifiedHelmRelease) chartproofv1.VerificationFailureAction {
	if a := obj.Spec.OnVerificationFailure; a != "" {
		return a
	}
	return chartproofv1.VerificationFailureHold
}

// unverifiedAction carries what the reconcile observed, for
// actOnUnverified.
type unverifiedAction struct {
	acct         *identity.Account
	reg          gate.Registry
	judges       gate.Request // the policies, for a candidate's verification
	res          gate.Result  // the verdict on what the spec names
	values       map[string]any
	configDigest string
}

// actOnUnverified applies spec.onVerificationFailure to an installed
// release whose chart no longer verifies: Rollback to the newest earlier
// chart of status.history that verifies now, or Uninstall. It returns the
// release now deployed (nil when none, or when nothing changed) and
// whether a Helm action failed (the reconcile then retries soon). Hold
// does nothing here.
func (r *VerifiedHelmReleaseReconciler) actOnUnverified(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, a unverifiedAction) (*helmrelease.Release, bool) {
	inst := obj.Status.Installed
	why := fmt.Sprintf("installed %s no longer verifies (%s)", inst.Digest, a.res.Verdict.Code())
	switch onFailure(obj) {
	case chartproofv1.VerificationFailureUninstall:
		err := a.acct.Releases.Uninstall(ctx, locationOf(inst), inst.Name, string(obj.UID), trustOf(inst))
		switch {
		case errors.Is(err, release.ErrRecordTampered):
			r.countTampered()
			r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonReleaseRecordTampered,
				fmt.Sprintf("%s; not uninstalled: the record of revision %d is not the one chartproof wrote", why, inst.Revision))
			return nil, true
		case err != nil:
			log.FromContext(ctx).Error(err, "uninstalling a release that no longer verifies failed")
			msg := fmt.Sprintf("%s; helm uninstall as %s failed: %s", why, actingAs(a.acct), helmFailure(err, nil))
			r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonUninstallFailed, msg)
			r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonUninstallFailed, msg)
			return nil, true
		}
		msg := fmt.Sprintf("%s; uninstalled release %s/%s as %s (onVerificationFailure: Uninstall)", why, inst.Namespace, inst.Name, actingAs(a.acct))
		obj.Status.Installed = nil
		r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonUninstalledUnverified, msg)
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonUninstalledUnverified, msg)
		return nil, false

	case chartproofv1.VerificationFailureRollback:
		from := *inst
		inconclusive := false // a candidate could not be judged: try again soon
		for _, c := range slices.Backward(obj.Status.History) {
			if c.Digest == from.Digest {
				continue
			}
			vctx, cancel := r.verifyContext(ctx)
			req := a.judges
			req.URL, req.Version, req.SignatureRepository = obj.Spec.Chart.URL, c.Digest, obj.Spec.Chart.SignatureRepository
			req.AllowDowngrade = true // what onVerificationFailure: Rollback asks for
			cand := gate.Check(vctx, a.reg, r.Metrics, req)
			cancel()
			if !cand.Verdict.Passed() {
				inconclusive = inconclusive || cand.Verdict.Inconclusive
				continue
			}
			rel, err := r.install(ctx, obj, a.acct, a.reg, cand, a.values, a.configDigest, adoption{}, false)
			if err != nil {
				// As every Helm failure: what the API server answered, never
				// its message, which can echo what was sent or read.
				msg := fmt.Sprintf("%s; rollback to %s (%s) as %s failed: %s; the release is held", why, c.Digest, c.ChartVersion, actingAs(a.acct), helmFailure(err, nil))
				r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonRollbackFailed, msg)
				r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonRollbackFailed, msg)
				return nil, true
			}
			if rel == nil {
				continue // its content failed when read: the next one
			}
			msg := fmt.Sprintf("%s; rolled back from %s to %s (chart %s), verified again and rendered from that digest, revision %d, as %s",
				why, from.ChartVersion, c.Digest, c.ChartVersion, rel.Version, actingAs(a.acct))
			r.setCondition(obj, chartproofv1.ConditionReleased, metav1.ConditionTrue, chartproofv1.ReasonRolledBack, msg)
			r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonRolledBack, msg)
			return rel, false
		}
		msg := fmt.Sprintf("%s; no earlier chart this release installed verifies now: the release is held", why)
		if inconclusive {
			msg = fmt.Sprintf("%s; an earlier chart could not be verified now (an outage?): the release is held and the rollback tried again soon", why)
		}
		r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonRollbackFailed, msg)
		return nil, inconclusive
	}
	return nil, false
}
