package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestHelmTests: with spec.test.enable the chart's test hook (a Pod, which
// internal/testworkload ends as its kubelet would: envtest runs none) runs
// as the release's ServiceAccount once the release is healthy. Passing, it
// is TestSuccess=True and the release Ready; failing (the control's twin),
// TestSuccess=False and Ready=False, and with install.remediation
// (retries 0, Uninstall) the release is uninstalled.
func TestHelmTests(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "passing", true: "failing"}[fail]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			if fail {
				rollouts.FailTests(f.ns)
			}
			f.signLegacy(f.push("1.0.0"), f.key)
			f.policy("trusted", f.key, "")
			f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
				v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
				v.Spec.Test = &chartproofv1.Test{Enable: true}
				v.Spec.Install = &chartproofv1.Install{Remediation: &chartproofv1.Remediation{Retries: ptr.To[int32](0), Strategy: chartproofv1.RemediationUninstall}}
			})
			if !fail {
				vhr := f.waitCondition("app", chartproofv1.ConditionTestSuccess, metav1.ConditionTrue, chartproofv1.ReasonTestSucceeded)
				if vhr.Status.Installed == nil || vhr.Status.Installed.Tests != "Succeeded" {
					t.Errorf("installed %+v; want tests Succeeded", vhr.Status.Installed)
				}
				f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
				f.waitEvent("app", chartproofv1.ReasonTestSucceeded)
				// The hook's delete policy (hook-succeeded) removed its Pod.
				var p corev1.Pod
				if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "app-hello-test-connection"}, &p); !apierrors.IsNotFound(err) {
					t.Errorf("test Pod after passing: %v; want it deleted", err)
				}
				return
			}
			vhr := f.waitCondition("app", chartproofv1.ConditionRemediated, metav1.ConditionTrue, chartproofv1.ReasonUninstallSucceeded)
			c := findCondition(vhr, chartproofv1.ConditionTestSuccess)
			if c.Status != metav1.ConditionFalse || c.Reason != chartproofv1.ReasonTestFailed || !strings.Contains(c.Message, "test Pod app-hello-test-connection: Failed") {
				t.Errorf("TestSuccess = %+v; want False naming the failed test Pod", c)
			}
			if vhr.Status.Installed != nil {
				t.Errorf("installed %+v after the remediation; want uninstalled", vhr.Status.Installed)
			}
			f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonRetriesExhausted)
			f.waitEvent("app", chartproofv1.ReasonTestFailed)
		})
	}
}
