package controllers_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestOnVerificationFailure (issue 12, item 6): three releases installed
// 1.0.0 (signed by the release key) and were upgraded to 2.0.0 (signed by
// a build key); the build key is revoked. Each turns Verified=False with
// SignerRevoked at once, and does what its spec.onVerificationFailure
// says: Hold keeps 2.0.0 running, Rollback goes back to 1.0.0 (verified
// again, rendered from its digest), Uninstall removes the release. Run
// again, none installs anything that does not verify.
func TestOnVerificationFailure(t *testing.T) {
	f := newFixture(t)
	d1 := f.pushChart("1.0.0", nil) // signed by f.key
	d2 := f.buildSigned("2.0.0")
	actions := map[string]chartproofv1.VerificationFailureAction{
		"hold": chartproofv1.VerificationFailureHold, "rollback": chartproofv1.VerificationFailureRollback, "uninstall": chartproofv1.VerificationFailureUninstall,
	}
	for name, action := range actions {
		f.release(name, "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.OnVerificationFailure = action })
	}
	for name := range actions {
		f.waitReady(name, 1, chartproofv1.ReasonInstallSucceeded)
		f.edit(name, func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Chart.Version = "2.0.0" })
	}
	var buildKeyID string
	for name := range actions {
		vhr := f.waitReady(name, 2, chartproofv1.ReasonUpgradeSucceeded)
		if h := vhr.Status.History; len(h) != 2 || h[0].Digest != d1 || h[1].Digest != d2 {
			t.Fatalf("%s: status.history = %+v; want 1.0.0 then 2.0.0", name, h)
		}
		// Each record says when, as which revision, and on whose
		// signatures (issue 13, item 6).
		for i, want := range []struct {
			version   string
			authority string
		}{{"1.0.0", "release"}, {"2.0.0", "build"}} {
			c := vhr.Status.History[i]
			if c.ChartVersion != want.version || c.Revision != i+1 || c.InstalledAt == nil || c.Verified == nil || !*c.Verified ||
				!slices.Equal(c.Authorities, []string{want.authority}) {
				t.Errorf("%s: status.history[%d] = %+v (installed at %v, verified %v); want %s, revision %d, a time, verified, by %s",
					name, i, c, c.InstalledAt, c.Verified, want.version, i+1, want.authority)
			}
		}
		if n := vhr.Status.Newest; n == nil || n.Digest != d2 || n.Revision != 0 || n.InstalledAt != nil {
			t.Errorf("%s: status.newest = %+v; want 2.0.0 %s, a version and a digest only", name, n, d2)
		}
		buildKeyID = vhr.Status.Evidence[0].KeyID
	}

	f.revokeKey("trusted", buildKeyID)

	// check checks the three releases.
	check := func() {
		t.Helper()
		hold := f.waitCondition("hold", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonSignerRevoked)
		if inst := hold.Status.Installed; inst == nil || inst.Digest != d2 || inst.Verified {
			t.Errorf("hold: installed = %+v; want %s kept, marked unverified", inst, d2)
		}
		f.assertInstalled("hold", d2)
		if c := apimeta.FindStatusCondition(hold.Status.Conditions, chartproofv1.ConditionReleased); c == nil || c.Status != metav1.ConditionTrue || c.Reason != chartproofv1.ReasonReleaseHeld {
			t.Errorf("hold: Released = %+v; want True %s (kept, though it no longer verifies)", c, chartproofv1.ReasonReleaseHeld)
		}

		// Released says RolledBack after the rollback, and UpgradeBlocked
		// (the spec's 2.0.0 refused, 1.0.0 stays) from the next reconcile
		// on, which may come before this looks: the RolledBack event is
		// checked below.
		var rb *chartproofv1.VerifiedHelmRelease
		waitFor(t, waitTimeout, "rollback: Released=True at 1.0.0", func() (bool, string) {
			rb = f.get("rollback")
			c := apimeta.FindStatusCondition(rb.Status.Conditions, chartproofv1.ConditionReleased)
			ok := c != nil && c.Status == metav1.ConditionTrue && (c.Reason == chartproofv1.ReasonRolledBack || c.Reason == chartproofv1.ReasonUpgradeBlocked) &&
				rb.Status.Installed != nil && rb.Status.Installed.Digest == d1
			return ok, fmt.Sprintf("Released %+v, installed %+v", c, rb.Status.Installed)
		})
		if inst := rb.Status.Installed; inst == nil || inst.Digest != d1 || !inst.Verified || inst.ChartVersion != "1.0.0" {
			t.Errorf("rollback: installed = %+v; want 1.0.0 %s, verified", inst, d1)
		}
		if c := apimeta.FindStatusCondition(rb.Status.Conditions, chartproofv1.ConditionVerified); c == nil || c.Reason != chartproofv1.ReasonSignerRevoked {
			t.Errorf("rollback: Verified = %+v; want False SignerRevoked (the spec still names 2.0.0)", c)
		}
		f.assertInstalled("rollback", d1)

		// Released says UninstalledUnverified, then, at the next
		// reconcile, why nothing is installed (the revoked signer); the
		// event stays.
		waitFor(t, waitTimeout, "uninstall: nothing installed", func() (bool, string) {
			un := f.get("uninstall")
			c := apimeta.FindStatusCondition(un.Status.Conditions, chartproofv1.ConditionReleased)
			return un.Status.Installed == nil && c != nil && c.Status == metav1.ConditionFalse, fmt.Sprintf("installed %+v, Released %+v", un.Status.Installed, c)
		})
		waitFor(t, waitTimeout, "the uninstalled release's objects gone", func() (bool, string) {
			return f.configMap("uninstall") == nil, "ConfigMap uninstall-hello still there"
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rollback: %q", f.messages("rollback"))
		}
	})
	check()
	f.waitEvent("rollback", chartproofv1.ReasonRolledBack)
	f.waitEvent("uninstall", chartproofv1.ReasonUninstalledUnverified)

	// Run again: each stays as it is; nothing unverified comes back.
	for name := range actions {
		before := f.get(name).Status.LastVerifiedTime
		waitFor(t, 2*time.Second, "the clock past the last verification", func() (bool, string) {
			return time.Now().Truncate(time.Second).After(before.Time), ""
		})
		f.touch(name)
		waitFor(t, waitTimeout, name+" verified again", func() (bool, string) {
			v := f.get(name)
			return v.Status.LastVerifiedTime.After(before.Time), fmt.Sprintf("last verified %v", v.Status.LastVerifiedTime)
		})
	}
	check()
	if rev := f.get("rollback").Status.Installed.Revision; rev != 3 {
		t.Errorf("rollback: revision %d after running again; want 3 (no further Helm action)", rev)
	}
}

// TestRollbackHoldsWithoutVerifiedHistory: a release whose only chart
// stops verifying has nothing to roll back to: it is held as it is
// (RollbackFailed event, 2.0.0 still installed, marked unverified). The
// twin is TestOnVerificationFailure's rollback, which had 1.0.0 to go to.
func TestRollbackHoldsWithoutVerifiedHistory(t *testing.T) {
	f := newFixture(t)
	d2 := f.pushChart("2.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "2.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.OnVerificationFailure = chartproofv1.VerificationFailureRollback
	})
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	f.revokeKey("trusted", vhr.Status.Evidence[0].KeyID)
	vhr = f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonSignerRevoked)
	f.waitEvent("app", chartproofv1.ReasonRollbackFailed)
	vhr = f.get("app")
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != d2 || inst.Verified || inst.Revision != 1 {
		t.Errorf("installed = %+v; want %s revision 1 held, marked unverified", inst, d2)
	}
	f.assertInstalled("app", d2)
}
