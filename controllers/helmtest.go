package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/release"
)

// Outcomes of a revision's Helm tests (status.installed.tests).
const (
	testsSucceeded = "Succeeded"
	testsFailed    = "Failed"
)

// testsEnabled reports whether spec.test.enable is set.
func testsEnabled(obj *chartproofv1.VerifiedHelmRelease) bool {
	return obj.Spec.Test != nil && obj.Spec.Test.Enable
}

// testsFailedCount reports whether the installed revision's tests failed
// and that counts (not spec.test.ignoreFailures).
func testsFailedCount(obj *chartproofv1.VerifiedHelmRelease) bool {
	inst := obj.Status.Installed
	return testsEnabled(obj) && !obj.Spec.Test.IgnoreFailures && inst != nil && inst.Tests == testsFailed
}

// testsDone reports whether the installed revision needs no more testing:
// tests off, or run (passed, or failed with ignoreFailures).
func testsDone(obj *chartproofv1.VerifiedHelmRelease) bool {
	inst := obj.Status.Installed
	return !testsEnabled(obj) || inst != nil && (inst.Tests == testsSucceeded || inst.Tests != "" && obj.Spec.Test.IgnoreFailures)
}

// runTests runs the Helm tests of the installed revision, once, as the
// release's ServiceAccount, and writes TestSuccess. The hooks run are
// those of the record chartproof wrote (release.Manager.Test checks its
// digest). It returns whether they failed in a way that counts as a
// failure of the install or upgrade, and why.
func (r *VerifiedHelmReleaseReconciler) runTests(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, acct *identity.Account) (failed bool, why string) {
	inst := obj.Status.Installed
	name := r.releaseName(obj)
	res, err := acct.Releases.Test(ctx, r.location(obj), name, *trustOf(inst), releaseTimeout(obj))
	if err == nil {
		inst.Tests = testsSucceeded
		msg := fmt.Sprintf("the %d tests of release %s revision %d passed, run as %s", len(res.Hooks), name, inst.Revision, actingAs(acct))
		r.setCondition(obj, chartproofv1.ConditionTestSuccess, metav1.ConditionTrue, chartproofv1.ReasonTestSucceeded, msg)
		r.event(obj, corev1.EventTypeNormal, chartproofv1.ReasonTestSucceeded, msg)
		return false, ""
	}
	log.FromContext(ctx).Error(err, "helm test failed")
	if errors.Is(err, release.ErrRecordTampered) {
		r.countTampered()
	}
	what := helmFailure(err, nil)
	if f := res.Failed(); f != "" {
		what = "test " + f
	}
	inst.Tests = testsFailed
	msg := fmt.Sprintf("a test of release %s revision %d failed, run as %s: %s", name, inst.Revision, actingAs(acct), what)
	if obj.Spec.Test.IgnoreFailures {
		msg += " (spec.test.ignoreFailures: reported only)"
	}
	r.setCondition(obj, chartproofv1.ConditionTestSuccess, metav1.ConditionFalse, chartproofv1.ReasonTestFailed, msg)
	r.event(obj, corev1.EventTypeWarning, chartproofv1.ReasonTestFailed, msg)
	return !obj.Spec.Test.IgnoreFailures, msg
}

// failedAfterApply reports whether the installed revision, applied, then
// failed: not healthy, or its tests failed (and that counts).
func failedAfterApply(obj *chartproofv1.VerifiedHelmRelease) bool {
	return apimeta.IsStatusConditionFalse(obj.Status.Conditions, chartproofv1.ConditionHealthy) || testsFailedCount(obj)
}
