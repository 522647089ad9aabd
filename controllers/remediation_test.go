package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testworkload"
)

// brokenImage is the image of a chart version whose Deployment never
// becomes available (testworkload holds it).
const brokenImage = "registry.k8s.io/e2e-test-images/agnhost:broken"

// pushBroken pushes chart hello at version with its Deployment's image
// brokenImage, and returns its digest.
func (f *fixture) pushBroken(version string) string {
	f.t.Helper()
	files := testchart.Files("hello", version)
	files["values.yaml"] = strings.Replace(files["values.yaml"], `tag: "2.53"`, `tag: "broken"`, 1)
	if !strings.Contains(files["values.yaml"], `tag: "broken"`) {
		f.t.Fatal("the chart's values name no image tag to break")
	}
	archive, err := testchart.Build(testchart.Entries("hello", files))
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := f.reg.PushChart(f.repo, version, archive, "hello", version)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// TestUpgradeRemediationRollsBack: an upgrade to a chart whose Deployment
// never becomes available is tried again spec.upgrade.remediation.retries
// times, then rolled back to the last healthy revision (its digest verified
// again, its values from its record), and nothing more is tried: Ready is
// False (RetriesExhausted, kstatus Failed), Remediated True. Its control
// twin upgrades to a chart that becomes available: Ready, no remediation.
func TestUpgradeRemediationRollsBack(t *testing.T) {
	if err := rollouts.SetImage(brokenImage, testworkload.Held); err != nil {
		t.Fatal(err)
	}
	for _, broken := range []bool{true, false} {
		name := map[bool]string{true: "broken", false: "control"}[broken]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			v1 := f.push("1.0.0")
			f.signLegacy(v1, f.key)
			v2 := ""
			if broken {
				v2 = f.pushBroken("2.0.0")
			} else {
				v2 = f.push("2.0.0")
			}
			f.signLegacy(v2, f.key)
			f.policy("trusted", f.key, "")
			f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
				v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
				v.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Second}
				v.Spec.Upgrade = &chartproofv1.Upgrade{Remediation: &chartproofv1.Remediation{Retries: ptr.To[int32](1)}}
			})
			f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			vhr := f.get("app")
			vhr.Spec.Chart.Version = "2.0.0"
			if err := k8s.Update(context.Background(), vhr); err != nil {
				t.Fatal(err)
			}
			if !broken {
				vhr = f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
				if vhr.Status.LastAttempt != nil || apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionRemediated) != nil {
					t.Errorf("lastAttempt %+v, Remediated %+v after a healthy upgrade; want neither", vhr.Status.LastAttempt, apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionRemediated))
				}
				return
			}
			// Revision 2 fails its health check, revision 3 (the retry)
			// too; revision 4 is the rollback to what revision 1 ran.
			vhr = f.waitCondition("app", chartproofv1.ConditionRemediated, metav1.ConditionTrue, chartproofv1.ReasonRollbackSucceeded)
			vhr = f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonRetriesExhausted)
			inst := vhr.Status.Installed
			if inst == nil || inst.Digest != v1 || inst.Revision != 4 {
				t.Fatalf("installed %+v; want %s at revision 4 (two tries of 2.0.0, then the rollback)", inst, v1)
			}
			if a := vhr.Status.LastAttempt; a == nil || a.Digest != v2 || a.Failures != 2 || !a.Remediated || a.Install {
				t.Errorf("lastAttempt %+v; want the upgrade to %s, 2 failures, remediated", a, v2)
			}
			if got := kstatusOf(t, vhr); got != kstatus.FailedStatus {
				t.Errorf("kstatus %s after the retries, want %s", got, kstatus.FailedStatus)
			}
			if c := findCondition(vhr, chartproofv1.ConditionRemediated); !strings.Contains(c.Message, "failed 2 times (spec.upgrade.remediation.retries 1)") {
				t.Errorf("Remediated message %q does not say how often it failed", c.Message)
			}
			f.waitEvent("app", chartproofv1.ReasonRollbackSucceeded)
			f.checkGolden("app", "remediated-rollback")

			// Nothing more is tried: a requested reconcile leaves it.
			requestReconcile(t, f, "app")
			vhr = f.get("app")
			if vhr.Status.Installed.Revision != 4 || vhr.Status.LastAttempt == nil || vhr.Status.LastAttempt.Failures != 2 {
				t.Errorf("after another reconcile: installed %+v, lastAttempt %+v; want revision 4 and 2 failures, nothing tried", vhr.Status.Installed, vhr.Status.LastAttempt)
			}
		})
	}
}

// TestInstallRemediationUninstalls: an install whose Deployment never becomes
// available, with no retry and the strategy Uninstall, is uninstalled once
// and not installed again.
func TestInstallRemediationUninstalls(t *testing.T) {
	f := newFixture(t)
	if err := rollouts.Set(f.ns, testworkload.Held); err != nil {
		t.Fatal(err)
	}
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
		v.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Second}
		v.Spec.Install = &chartproofv1.Install{Remediation: &chartproofv1.Remediation{Retries: ptr.To[int32](0), Strategy: chartproofv1.RemediationUninstall}}
	})
	vhr := f.waitCondition("app", chartproofv1.ConditionRemediated, metav1.ConditionTrue, chartproofv1.ReasonUninstallSucceeded)
	if vhr.Status.Installed != nil {
		t.Errorf("installed %+v after the uninstall", vhr.Status.Installed)
	}
	if d := f.deploymentOrNil("app"); d != nil {
		t.Errorf("the Deployment is still there after the uninstall")
	}
	f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonRetriesExhausted)
	requestReconcile(t, f, "app")
	if vhr = f.get("app"); vhr.Status.Installed != nil || f.deploymentOrNil("app") != nil {
		t.Errorf("installed again after the remediation: %+v", vhr.Status.Installed)
	}
	// A spec change starts afresh.
	if err := rollouts.Set(f.ns, testworkload.Available); err != nil {
		t.Fatal(err)
	}
	vhr.Spec.Timeout = &metav1.Duration{Duration: time.Minute}
	if err := k8s.Update(context.Background(), vhr); err != nil {
		t.Fatal(err)
	}
	vhr = f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if vhr.Status.LastAttempt != nil {
		t.Errorf("lastAttempt %+v once installed and healthy; want none", vhr.Status.LastAttempt)
	}
}

// TestFailedInstallRetriesBounded: an install that fails (its target
// namespace does not exist) is tried 1 + retries times, then left: the
// default is no longer a retry every 30 s forever.
func TestFailedInstallRetriesBounded(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.TargetNamespace = "does-not-exist-" + f.ns
		v.Spec.Install = &chartproofv1.Install{Remediation: &chartproofv1.Remediation{Retries: ptr.To[int32](1)}}
	})
	vhr := f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonRetriesExhausted)
	if a := vhr.Status.LastAttempt; a == nil || a.Failures != 2 || !a.Install {
		t.Fatalf("lastAttempt %+v; want an install that failed twice", a)
	}
	if c := findCondition(vhr, chartproofv1.ConditionStalled); c.Status != metav1.ConditionTrue {
		t.Errorf("Stalled = %+v, want True", c)
	}
	requestReconcile(t, f, "app")
	if a := f.get("app").Status.LastAttempt; a == nil || a.Failures != 2 {
		t.Errorf("lastAttempt %+v after another reconcile; want 2 failures, nothing tried", a)
	}
}

// deploymentOrNil returns the chart's Deployment of release name, nil when
// there is none.
func (f *fixture) deploymentOrNil(release string) *appsv1.Deployment {
	f.t.Helper()
	var d appsv1.Deployment
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: release + "-hello"}, &d)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return &d
}

// TestReleaseSpecValidation: the API server refuses a remediation that
// cannot be carried out (an install has nothing to roll back to) or an
// unbounded one, an unknown CRD policy, a valuesFrom targetPath outside
// Helm's path syntax, and accepts the rest (the controls).
func TestReleaseSpecValidation(t *testing.T) {
	f := newFixture(t)
	for i, tc := range []struct {
		name    string
		mut     func(*chartproofv1.VerifiedHelmRelease)
		refused string
	}{
		{"control: install Uninstall, upgrade Rollback", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Install = &chartproofv1.Install{Remediation: &chartproofv1.Remediation{Retries: ptr.To[int32](20), Strategy: chartproofv1.RemediationUninstall}}
			v.Spec.Upgrade = &chartproofv1.Upgrade{Remediation: &chartproofv1.Remediation{Strategy: chartproofv1.RemediationRollback}}
		}, ""},
		{"install Rollback", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Install = &chartproofv1.Install{Remediation: &chartproofv1.Remediation{Strategy: chartproofv1.RemediationRollback}}
		}, "an install has nothing to roll back to"},
		{"retries above 20", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Upgrade = &chartproofv1.Upgrade{Remediation: &chartproofv1.Remediation{Retries: ptr.To[int32](21)}}
		}, "should be less than or equal to 20"},
		{"unknown strategy", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Upgrade = &chartproofv1.Upgrade{Remediation: &chartproofv1.Remediation{Strategy: "Retry"}}
		}, "Unsupported value"},
		{"control: CRD policies, force, a targetPath", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Install = &chartproofv1.Install{CRDs: chartproofv1.CRDsSkip}
			v.Spec.Upgrade = &chartproofv1.Upgrade{CRDs: chartproofv1.CRDsCreateReplace, Force: true}
			v.Spec.ValuesFrom = []chartproofv1.ValuesReference{{Kind: "ConfigMap", Name: "v", Key: "k", TargetPath: `a.b[0].c\.d`}}
		}, ""},
		{"unknown CRD policy", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Upgrade = &chartproofv1.Upgrade{CRDs: "Replace"}
		}, "Unsupported value"},
		{"targetPath with a comma", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.ValuesFrom = []chartproofv1.ValuesReference{{Kind: "ConfigMap", Name: "v", Key: "k", TargetPath: "a,b"}}
		}, "should match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &chartproofv1.VerifiedHelmRelease{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: fmt.Sprintf("v%d", i)},
				Spec: chartproofv1.VerifiedHelmReleaseSpec{
					Chart:          chartproofv1.ChartSource{URL: f.url(), Version: "1.0.0"},
					TrustPolicyRef: chartproofv1.TrustPolicyReference{Kind: "TrustPolicy", Name: "none"}, Suspend: true,
				},
			}
			tc.mut(v)
			err := k8s.Create(context.Background(), v)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, want refused with %q", err, tc.refused)
			}
		})
	}
}
