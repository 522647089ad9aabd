package controllers_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
// TEN-05). The upgrade to the next verified version is refused with
// ReleaseRecordTampered, counted and reported; the victim and the release
// stay; deleting the object then uninstalls nothing. The twin, without the
// rewrite, upgrades and uninstalls.
func TestTamperedRecordReported(t *testing.T) {
	for _, forged := range []bool{true, false} {
		t.Run(fmt.Sprintf("record rewritten %v", forged), func(t *testing.T) {
			f := newFixture(t)
			f.pushChart("1.0.0", nil)
			f.pushChart("2.0.0", nil)
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
			vhr.Spec.Chart.Version = "2.0.0"
			if err := k8s.Patch(ctx, vhr, patch); err != nil {
				t.Fatal(err)
			}
			if forged {
				f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonReleaseRecordTampered)
				f.waitEvent("app", chartproofv1.ReasonReleaseRecordTampered)
				if got := helmHistory(t, f.ns, "app"); len(got) != 1 {
					t.Errorf("history after the refusal = %v; want revision 1 alone", got)
				}
				if got := tamperedCount(t); got <= before {
					t.Errorf("chartproof_release_records_tampered_total = %v; want more than %v", got, before)
				}
			} else {
				f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
			}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "victim"}, &corev1.ConfigMap{}); err != nil {
				t.Errorf("the victim ConfigMap: %v; want it kept", err)
			}

			f.deleteRelease("app")
			cm := f.configMap("app")
			if forged && cm == nil {
				t.Error("the release's ConfigMap was deleted by an uninstall over the rewritten record")
			}
			if !forged && cm != nil {
				t.Error("the release's ConfigMap is still there after the uninstall")
			}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "victim"}, &corev1.ConfigMap{}); apierrors.IsNotFound(err) {
				t.Error("the victim ConfigMap was deleted on deletion")
			}
		})
	}
}
