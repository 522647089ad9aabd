package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// tamperedCount is chartproof_release_records_tampered_total.
func tamperedCount(t *testing.T) float64 {
	t.Helper()
	mfs, err := promReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "chartproof_release_records_tampered_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestTamperedRecordReported: whoever may write Secrets in the namespace
// rewrites the Helm record of the revision chartproof installed so that it
// also lists ConfigMap victim, which an upgrade would then delete (THREATS
// TEN-05). The upgrade to the next verified version does not use that
// record: the tampering is counted and reported (ReleaseRecordTampered), the
// records are dropped and the verified chart installed afresh, at revision
// 1, and the victim stays. The twin, without the rewrite, upgrades to
// revision 2. Both uninstall on deletion, the victim left alone.
func TestTamperedRecordReported(t *testing.T) {
	for _, forged := range []bool{true, false} {
		t.Run(fmt.Sprintf("record rewritten %v", forged), func(t *testing.T) {
			f := newFixture(t)
			f.pushChart("1.0.0", nil)
			d2 := f.pushChart("2.0.0", nil)
			f.policy("trusted", f.key, chartproofv1.ModeEnforce)
			f.release("app", "1.0.0", "trusted")
			vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			if vhr.Status.Installed.RecordDigest == "" {
				t.Fatal("status.installed.recordDigest is empty")
			}
			ctx := context.Background()
			if err := k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "victim"}}); err != nil {
				t.Fatal(err)
			}
			f.suspend("app") // resumed with the version change below
			vhr = f.get("app")
			if forged {
				cfg := helmConfig(t, f.ns)
				rel, err := cfg.Releases.Get("app", 1)
				if err != nil {
					t.Fatal(err)
				}
				rel.Manifest += "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\n  namespace: " + f.ns + "\n"
				if err := cfg.Releases.Update(rel); err != nil {
					t.Fatal(err)
				}
			}
			before := tamperedCount(t)

			patch := client.MergeFrom(vhr.DeepCopy())
			vhr.Spec.Suspend = false
			vhr.Spec.Chart.Version = "2.0.0"
			if err := k8s.Patch(ctx, vhr, patch); err != nil {
				t.Fatal(err)
			}
			if forged {
				f.waitEvent("app", chartproofv1.ReasonReleaseRecordTampered)
				vhr = f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
				if got := helmHistory(t, f.ns, "app"); len(got) != 1 || got[0] != "1:deployed" {
					t.Errorf("history after the repair = %v; want [1:deployed]", got)
				}
				if got := tamperedCount(t); got <= before {
					t.Errorf("chartproof_release_records_tampered_total = %v; want more than %v", got, before)
				}
			} else {
				vhr = f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
			}
			if vhr.Status.Installed.Digest != d2 {
				t.Errorf("status.installed.digest = %s; want 2.0.0's %s", vhr.Status.Installed.Digest, d2)
			}
			if cm := f.configMap("app"); cm == nil || cm.Annotations[chartproofv1.AnnotationChartDigest] != d2 {
				t.Errorf("the release's ConfigMap = %+v; want it stamped %s", cm, d2)
			}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "victim"}, &corev1.ConfigMap{}); err != nil {
				t.Errorf("the victim ConfigMap: %v; want it kept", err)
			}

			f.deleteRelease("app")
			if cm := f.configMap("app"); cm != nil {
				t.Error("the release's ConfigMap is still there after the uninstall")
			}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "victim"}, &corev1.ConfigMap{}); apierrors.IsNotFound(err) {
				t.Error("the victim ConfigMap was deleted on deletion")
			}
		})
	}
}

// TestForgedRecordAndPendingRepaired: the case. A Secret writer
// rewrites the deployed revision's record (it now lists ConfigMap victim)
// and adds a pending revision 2 that lists it too. Recovery marks revision 2
// failed, and the next reconcile does not upgrade over the rewritten record:
// the tampering is reported, the records are dropped and the verified chart
// installed afresh; the victim stays. The twin is TestPendingUpgradeRecovered:
// the same pending revision over an untouched record is upgraded from it.
func TestForgedRecordAndPendingRepaired(t *testing.T) {
	f := newFixture(t)
	d := f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	ctx := context.Background()
	if err := k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "victim"}}); err != nil {
		t.Fatal(err)
	}
	victim := "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\n  namespace: " + f.ns + "\n"
	f.suspend("app") // resumed by touch
	cfg := helmConfig(t, f.ns)
	rel, err := cfg.Releases.Get("app", 1)
	if err != nil {
		t.Fatal(err)
	}
	rel.Manifest += victim
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
	f.interruptUpgrade("app", func(m string) string { return m }, nil)
	before := tamperedCount(t)
	f.touch("app")

	f.waitEvent("app", chartproofv1.ReasonReleaseRecordTampered)
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if got := helmHistory(t, f.ns, "app"); len(got) != 1 || got[0] != "1:deployed" {
		t.Errorf("history after the repair = %v; want [1:deployed]", got)
	}
	if inst := vhr.Status.Installed; inst.Digest != d || !inst.Verified {
		t.Errorf("status.installed = %+v; want %s, verified", inst, d)
	}
	f.assertInstalled("app", d)
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "victim"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("the victim ConfigMap: %v; want it kept", err)
	}
	if got := tamperedCount(t); got <= before {
		t.Errorf("chartproof_release_records_tampered_total = %v; want more than %v", got, before)
	}
}

// TestFailedRepairCountedOnce: when the fresh install that repairs a
// tampered release fails too (here its chart writes into a namespace the
// account may not: the preflight refuses it, PermissionsMissing), the
// records status named are gone, so the next attempt is a plain install
// that is refused again, not the same tampering reported and counted a
// second time.
func TestFailedRepairCountedOnce(t *testing.T) {
	f := newFixture(t)
	victim := newBareNamespace(t)
	f.pushChart("1.0.0", nil)
	f.pushChart("2.0.0", map[string]string{"elsewhere.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: " + victim + "\n"})
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted")
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	// Suspended while its record is rewritten and its version changed, so
	// that the repair the record watch would start at once is the install
	// of 2.0.0 the test needs.
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Suspend = true
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	vhr = f.waitCondition("app", chartproofv1.ConditionReconciling, metav1.ConditionFalse, chartproofv1.ReasonSuspended)

	cfg := helmConfig(t, f.ns)
	rel, err := cfg.Releases.Get("app", 1)
	if err != nil {
		t.Fatal(err)
	}
	rel.Manifest += "\n# rewritten\n"
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
	before := tamperedCount(t)
	patch = client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Suspend = false
	vhr.Spec.Chart.Version = "2.0.0"
	vhr.Spec.Interval = metav1.Duration{Duration: time.Second}
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}

	f.waitEvent("app", chartproofv1.ReasonReleaseRecordTampered)
	refused := f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonPermissionsMissing)
	// The next attempt (the interval is a second) has verified and been
	// refused again.
	waitFor(t, waitTimeout, "another attempt after the failed repair", func() (bool, string) {
		vhr := f.get("app")
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReleased)
		return vhr.Status.LastVerifiedTime.After(refused.Status.LastVerifiedTime.Time) && c != nil && c.Reason == chartproofv1.ReasonPermissionsMissing,
			fmt.Sprintf("lastVerifiedTime %v, Released %+v", vhr.Status.LastVerifiedTime, c)
	})
	if got := tamperedCount(t); got != before+1 {
		t.Errorf("chartproof_release_records_tampered_total rose by %v; want 1", got-before)
	}
	if inst := f.get("app").Status.Installed; inst != nil {
		t.Errorf("status.installed = %+v after the failed repair; want none", inst)
	}
}
