package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testworkload"
)

// The health tests run on envtest, which has no deployment controller and
// no kubelet: internal/testworkload writes the status a Deployment has once
// its pods run (observedGeneration, replicas, Available), or none (Held), or
// a rollout past its progress deadline (Failed), per namespace. Every other
// test's Deployments become available that way.

// kstatusOf is what kstatus (the library kubectl and Flux use) says of a
// release.
func kstatusOf(t *testing.T, vhr *chartproofv1.VerifiedHelmRelease) kstatus.Status {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vhr)
	if err != nil {
		t.Fatal(err)
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: u})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// TestHealthGatesReady: a release whose Deployment is not available yet is
// not Ready (Healthy=Unknown, kstatus InProgress) and becomes Ready, without
// waiting for its interval, once the Deployment is; its control twin is
// every other test, whose Deployments become available at once.
func TestHealthGatesReady(t *testing.T) {
	f := newFixture(t)
	if err := rollouts.Set(f.ns, testworkload.Held); err != nil {
		t.Fatal(err)
	}
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
	})
	vhr := f.waitCondition("app", chartproofv1.ConditionHealthy, metav1.ConditionUnknown, chartproofv1.ReasonHealthCheckPending)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionHealthy); !strings.Contains(c.Message, "Deployment "+f.ns+"/app-hello") {
		t.Errorf("Healthy message %q does not name the Deployment waited for", c.Message)
	}
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status == metav1.ConditionTrue {
		t.Errorf("Ready = %+v while the Deployment is not available", c)
	}
	if got := kstatusOf(t, vhr); got != kstatus.InProgressStatus {
		t.Errorf("kstatus %s while waiting, want %s", got, kstatus.InProgressStatus)
	}
	if vhr.Status.Installed == nil || vhr.Status.Installed.Revision != 1 || vhr.Status.Installed.DeployedAt == nil {
		t.Fatalf("status.installed = %+v, want revision 1 with deployedAt", vhr.Status.Installed)
	}
	f.checkGolden("app", "health-pending")

	if err := rollouts.Set(f.ns, testworkload.Available); err != nil {
		t.Fatal(err)
	}
	vhr = f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionHealthy); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != chartproofv1.ReasonHealthCheckSucceeded {
		t.Errorf("Healthy = %+v, want True %s", c, chartproofv1.ReasonHealthCheckSucceeded)
	}
	if got := kstatusOf(t, vhr); got != kstatus.CurrentStatus {
		t.Errorf("kstatus %s once healthy, want %s", got, kstatus.CurrentStatus)
	}
}

// TestHealthTimeout: a Deployment that never becomes available fails the
// release after spec.timeout: Healthy=False naming it, a Warning event;
// with no retry left (remediation.retries 0, strategy Hold), Ready=False
// and Stalled (kstatus Failed). Once it is available, a requested
// reconcile makes the release Ready again.
func TestHealthTimeout(t *testing.T) {
	f := newFixture(t)
	if err := rollouts.Set(f.ns, testworkload.Held); err != nil {
		t.Fatal(err)
	}
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
		v.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Second}
		v.Spec.Install = &chartproofv1.Install{Remediation: &chartproofv1.Remediation{Retries: ptr.To[int32](0)}}
	})
	vhr := f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonRetriesExhausted)
	c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionHealthy)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "Deployment "+f.ns+"/app-hello is InProgress") ||
		!strings.Contains(c.Message, "within spec.timeout 3s") {
		t.Errorf("Healthy = %+v, want False naming the Deployment and the timeout", c)
	}
	if got := kstatusOf(t, vhr); got != kstatus.FailedStatus {
		t.Errorf("kstatus %s after the timeout, want %s", got, kstatus.FailedStatus)
	}
	f.waitEvent("app", chartproofv1.ReasonHealthCheckFailed)
	f.checkGolden("app", "health-failed")

	if err := rollouts.Set(f.ns, testworkload.Available); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, f, "app")
	vhr = f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionTrue, chartproofv1.ReasonInstallSucceeded)
	if got := kstatusOf(t, vhr); got != kstatus.CurrentStatus {
		t.Errorf("kstatus %s once healthy, want %s", got, kstatus.CurrentStatus)
	}
	f.waitEvent("app", chartproofv1.ReasonHealthCheckSucceeded)
}

// TestHealthFailsFast: a rollout that kstatus reads as Failed (its progress
// deadline exceeded) fails the release at once, not after spec.timeout.
func TestHealthFailsFast(t *testing.T) {
	f := newFixture(t)
	if err := rollouts.Set(f.ns, testworkload.Failed); err != nil {
		t.Fatal(err)
	}
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Timeout = &metav1.Duration{Duration: time.Hour}
	})
	vhr := f.waitCondition("app", chartproofv1.ConditionHealthy, metav1.ConditionFalse, chartproofv1.ReasonHealthCheckFailed)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionHealthy); !strings.Contains(c.Message, "Deployment "+f.ns+"/app-hello is Failed") {
		t.Errorf("Healthy message %q, want the Deployment's failure", c.Message)
	}
}

// TestHealthWaitDisabled: spec.install.disableWait makes a release Ready
// when Helm has sent its objects, as before health checks: no Healthy
// condition, although its Deployment never becomes available.
func TestHealthWaitDisabled(t *testing.T) {
	f := newFixture(t)
	if err := rollouts.Set(f.ns, testworkload.Held); err != nil {
		t.Fatal(err)
	}
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Install = &chartproofv1.Install{DisableWait: true}
	})
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionHealthy); c != nil {
		t.Errorf("Healthy = %+v with disableWait, want none", c)
	}
}

// requestReconcile asks for a reconcile of release name as Flux users do
// (reconcile.fluxcd.io/requestedAt) and waits until it was handled.
func requestReconcile(t *testing.T, f *fixture, name string) {
	t.Helper()
	requested := time.Now().Format(time.RFC3339Nano)
	vhr := f.get(name)
	patch := client.MergeFrom(vhr.DeepCopy())
	if vhr.Annotations == nil {
		vhr.Annotations = map[string]string{}
	}
	vhr.Annotations[chartproofv1.AnnotationReconcileRequest] = requested
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "the request handled", func() (bool, string) {
		vhr = f.get(name)
		return vhr.Status.LastHandledReconcileAt == requested, fmt.Sprintf("lastHandledReconcileAt %q", vhr.Status.LastHandledReconcileAt)
	})
}

// TestHealthDegradationNotRemediated: a release that was healthy and is not
// any more (its rollout now past its progress deadline) is reported
// (Healthy=False, Ready=False) but not remediated: with install.remediation
// retries 0 and Uninstall, it stays installed. Its control twin fails right
// after the install and is uninstalled.
func TestHealthDegradationNotRemediated(t *testing.T) {
	for _, later := range []bool{true, false} {
		name := map[bool]string{true: "degraded later", false: "control: failed after the install"}[later]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			if !later {
				if err := rollouts.Set(f.ns, testworkload.Failed); err != nil {
					t.Fatal(err)
				}
			}
			f.signLegacy(f.push("1.0.0"), f.key)
			f.policy("trusted", f.key, "")
			f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
				v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
				v.Spec.Install = &chartproofv1.Install{Remediation: &chartproofv1.Remediation{Retries: ptr.To[int32](0), Strategy: chartproofv1.RemediationUninstall}}
			})
			if !later {
				f.waitCondition("app", chartproofv1.ConditionRemediated, metav1.ConditionTrue, chartproofv1.ReasonUninstallSucceeded)
				return
			}
			f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			if err := rollouts.Set(f.ns, testworkload.Failed); err != nil {
				t.Fatal(err)
			}
			waitFor(t, waitTimeout, "the Deployment past its progress deadline", func() (bool, string) {
				for _, c := range f.deployment("app").Status.Conditions {
					if c.Type == "Progressing" && c.Reason == "ProgressDeadlineExceeded" {
						return true, ""
					}
				}
				return false, "still progressing"
			})
			requestReconcile(t, f, "app")
			vhr := f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonHealthCheckFailed)
			if vhr.Status.Installed == nil || vhr.Status.Installed.Revision != 1 || vhr.Status.LastAttempt != nil {
				t.Errorf("installed %+v, lastAttempt %+v; want revision 1 kept, no failure counted", vhr.Status.Installed, vhr.Status.LastAttempt)
			}
			if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionRemediated); c != nil {
				t.Errorf("Remediated = %+v for a release that degraded later", c)
			}
		})
	}
}

// TestHealthCheckExprs: spec.healthCheckExprs judge a custom resource
// kstatus cannot (a Widget without conditions, which kstatus reads as
// Current at once: the control twin is Healthy while its Widget has no
// status). With the expressions the release waits (HealthCheckPending)
// until the Widget's status.phase is Ready, and fails (HealthCheckFailed,
// naming the Widget) when it is Broken. An expression that does not
// compile is InvalidSpec, and nothing is installed.
func TestHealthCheckExprs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	group := f.ns + ".chartproof.test"
	f.grantCRDs(group)
	f.signLegacy(f.pushCRDChart("1.0.0", group), f.key)
	f.policy("trusted", f.key, "")
	exprs := []chartproofv1.HealthCheckExpr{{
		APIVersion: group + "/v1", Kind: "Widget",
		Current: `has(status.phase) && status.phase == "Ready"`,
		Failed:  `has(status.phase) && status.phase == "Broken"`,
	}}
	hour := metav1.Duration{Duration: time.Hour}
	for _, name := range []string{"ready", "broken", "plain", "invalid"} {
		f.release(name, "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Interval = hour
			switch name {
			case "ready", "broken":
				v.Spec.HealthCheckExprs = exprs
			case "invalid":
				v.Spec.HealthCheckExprs = []chartproofv1.HealthCheckExpr{{APIVersion: group + "/v1", Kind: "Widget", Current: `status.phase ==`}}
			}
		})
	}
	f.waitCondition("plain", chartproofv1.ConditionHealthy, metav1.ConditionTrue, chartproofv1.ReasonHealthCheckSucceeded)
	vhr := f.waitCondition("invalid", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonInvalidSpec)
	if c := findCondition(vhr, chartproofv1.ConditionReady); !strings.Contains(c.Message, "spec.healthCheckExprs[0].current") {
		t.Errorf("invalid: Ready = %q; want the expression named", c.Message)
	}
	if vhr.Status.Installed != nil {
		t.Errorf("invalid: installed %+v; want nothing", vhr.Status.Installed)
	}

	setPhase := func(release, phase string) {
		t.Helper()
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			w := &unstructured.Unstructured{}
			w.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: "v1", Kind: "Widget"})
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: release + "-widget"}, w); err != nil {
				return err
			}
			if err := unstructured.SetNestedField(w.Object, phase, "status", "phase"); err != nil {
				return err
			}
			return k8s.Status().Update(ctx, w)
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"ready", "broken"} {
		vhr := f.waitCondition(name, chartproofv1.ConditionHealthy, metav1.ConditionUnknown, chartproofv1.ReasonHealthCheckPending)
		if c := findCondition(vhr, chartproofv1.ConditionHealthy); !strings.Contains(c.Message, "Widget") {
			t.Errorf("%s: Healthy = %q; want the Widget named", name, c.Message)
		}
	}
	setPhase("ready", "Ready")
	setPhase("broken", "Broken")
	f.waitCondition("ready", chartproofv1.ConditionHealthy, metav1.ConditionTrue, chartproofv1.ReasonHealthCheckSucceeded)
	vhr = f.waitCondition("broken", chartproofv1.ConditionHealthy, metav1.ConditionFalse, chartproofv1.ReasonHealthCheckFailed)
	if c := findCondition(vhr, chartproofv1.ConditionHealthy); !strings.Contains(c.Message, "Widget "+f.ns+"/broken-widget is Failed") {
		t.Errorf("broken: Healthy = %q; want the Widget named Failed", c.Message)
	}
}
