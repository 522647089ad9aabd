package controllers_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestRecoveryNeverRestoresAuditRevision (issue 10): an unsigned chart
// installed under an Audit policy; the policy then turns Enforce, and an
// upgrade is found interrupted (its record pending, the ConfigMap patched).
// Recovery marks the record failed and puts nothing back, and in
// particular not revision 1, which only Audit mode let in: the chart is
// refused now (NoSignature), so nothing is applied at all and the
// ConfigMap keeps what the interrupted action left. The twin keeps the
// policy in Audit mode: the chart is applied again (AuditOnly), revision 3.
func TestRecoveryNeverRestoresAuditRevision(t *testing.T) {
	for _, enforce := range []bool{true, false} {
		t.Run(fmt.Sprintf("policy turned Enforce %v", enforce), func(t *testing.T) {
			f := newFixture(t)
			f.push("1.0.0") // unsigned
			f.policy("own", f.key, chartproofv1.ModeAudit)
			f.release("app", "1.0.0", "own")
			f.waitEvent("app", chartproofv1.ReasonAuditOnly)
			// The event is sent before the install's status is written.
			waitRevision(t, f, "app", 1)
			if vhr := f.get("app"); vhr.Status.Installed == nil || vhr.Status.Installed.Verified {
				t.Fatalf("status.installed = %+v; want revision 1, not verified", vhr.Status.Installed)
			}

			if enforce {
				var tp chartproofv1.TrustPolicy
				if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "own"}, &tp); err != nil {
					t.Fatal(err)
				}
				patch := client.MergeFrom(tp.DeepCopy())
				tp.Spec.Mode = chartproofv1.ModeEnforce
				if err := k8s.Patch(context.Background(), &tp, patch); err != nil {
					t.Fatal(err)
				}
				f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonNoSignature)
			}
			f.interruptUpgrade("app", func(m string) string { return m }, func(cm *corev1.ConfigMap) { cm.Data["message"] = "interrupted" })
			f.touch("app")
			f.waitEvent("app", chartproofv1.ReasonPendingReleaseRecovered)

			if !enforce {
				f.waitEvent("app", chartproofv1.ReasonAuditOnly)
				waitRevision(t, f, "app", 3)
				if got := f.configMap("app").Data["message"]; got != "hello" {
					t.Errorf("ConfigMap message = %q; want the chart's %q", got, "hello")
				}
				return
			}
			vhr := f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonNoSignature)
			if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse {
				t.Errorf("Ready = %+v; want False", c)
			}
			if diff := cmp.Diff([]string{"1:deployed", "2:failed"}, helmHistory(t, f.ns, "app")); diff != "" {
				t.Errorf("helm history (-want +got):\n%s; want nothing applied after the recovery", diff)
			}
			if got := f.configMap("app").Data["message"]; got != "interrupted" {
				t.Errorf("ConfigMap message = %q; want %q: revision 1's rendering is not put back", got, "interrupted")
			}
		})
	}
}

// waitRevision waits until status.installed names Helm revision rev.
func waitRevision(t *testing.T, f *fixture, name string, rev int) {
	t.Helper()
	waitFor(t, waitTimeout, fmt.Sprintf("%s installed at revision %d", name, rev), func() (bool, string) {
		inst := f.get(name).Status.Installed
		return inst != nil && inst.Revision == rev, fmt.Sprintf("installed %+v", inst)
	})
}
