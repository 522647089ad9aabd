package controllers_test

import (
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestPushBeforeSign (issue 13, item 6): a CI pipeline pushes a chart and
// signs it moments later. A release that resolves the new chart in between
// (its interval an hour away) stays Ready on the verified chart it runs,
// reads Reconciling=True AwaitingSignature (kstatus InProgress: the spec is
// not done), installs nothing unsigned, and upgrades within seconds of the
// signature. Nothing installed yet: the same, Ready False. The control twin
// is the attack the window must not soften: a chart signed by a key the
// policy does not trust is refused at once (UpgradeBlocked, Stalled), never
// awaited.
func TestPushBeforeSign(t *testing.T) {
	hourly := func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Interval = metav1.Duration{Duration: time.Hour} }

	// installed is a release of a signed 1.0.0, installed, verified again
	// hourly.
	installed := func(t *testing.T) (*fixture, string) {
		f := newFixture(t)
		d1 := f.push("1.0.0")
		f.signLegacy(d1, f.key)
		f.policy("trusted", f.key, "")
		f.release("app", "1.0.0", "trusted", hourly)
		f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
		return f, d1
	}

	t.Run("upgrade", func(t *testing.T) {
		f, d1 := installed(t)

		d2 := f.push("1.1.0") // signed below
		f.edit("app", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Chart.Version = "1.1.0" })
		vhr := f.waitCondition("app", chartproofv1.ConditionReconciling, metav1.ConditionTrue, chartproofv1.ReasonAwaitingSignature)
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue || c.Reason != chartproofv1.ReasonAwaitingSignature {
			t.Errorf("Ready = %+v; want True %s: what runs is verified", c, chartproofv1.ReasonAwaitingSignature)
		}
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified); c == nil || c.Status != metav1.ConditionFalse || c.Reason != chartproofv1.ReasonNoSignature {
			t.Errorf("Verified = %+v; want False %s", c, chartproofv1.ReasonNoSignature)
		}
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionStalled); c != nil {
			t.Errorf("Stalled = %+v; want none while the signature is awaited", c)
		}
		f.assertInstalled("app", d1)

		f.signLegacy(d2, f.key)
		f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
		f.assertInstalled("app", d2)
	})

	t.Run("first install", func(t *testing.T) {
		f := newFixture(t)
		d := f.push("1.0.0") // signed below
		f.policy("trusted", f.key, "")
		f.release("app", "1.0.0", "trusted", hourly)
		vhr := f.waitCondition("app", chartproofv1.ConditionReconciling, metav1.ConditionTrue, chartproofv1.ReasonAwaitingSignature)
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != chartproofv1.ReasonNoSignature {
			t.Errorf("Ready = %+v; want False %s: nothing runs", c, chartproofv1.ReasonNoSignature)
		}
		if vhr.Status.Installed != nil || f.configMap("app") != nil {
			t.Fatalf("installed %+v before any signature", vhr.Status.Installed)
		}
		f.signLegacy(d, f.key)
		f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	})

	t.Run("signed by an untrusted key (control)", func(t *testing.T) {
		f, d1 := installed(t)

		other, err := testsign.NewKey("p256")
		if err != nil {
			t.Fatal(err)
		}
		f.signLegacy(f.push("1.1.0"), other)
		f.edit("app", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Chart.Version = "1.1.0" })
		f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
		vhr := f.waitCondition("app", chartproofv1.ConditionStalled, metav1.ConditionTrue, chartproofv1.ReasonUpgradeBlocked)
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != chartproofv1.ReasonUpgradeBlocked {
			t.Errorf("Ready = %+v; want False %s", c, chartproofv1.ReasonUpgradeBlocked)
		}
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReconciling); c != nil {
			t.Errorf("Reconciling = %+v; want none: an untrusted signer is not awaited", c)
		}
		f.assertInstalled("app", d1)
	})
}
