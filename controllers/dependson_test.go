package controllers_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestDependsOn: a release that depends on another is verified but not
// installed while the other does not exist or is not Ready
// (DependencyNotReady, kstatus InProgress); it is installed once the other
// is Ready, after it. Every other test is the control: without dependsOn
// a release installs at once.
func TestDependsOn(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	hourly := func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour} }
	f.release("app", "1.0.0", "trusted", hourly, func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.DependsOn = []chartproofv1.LocalObjectReference{{Name: "db"}}
	})
	vhr := f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonDependencyNotReady)
	if c := findCondition(vhr, chartproofv1.ConditionReady); !strings.Contains(c.Message, "db (not found)") {
		t.Errorf("Ready message %q does not name the missing dependency", c.Message)
	}
	if c := findCondition(vhr, chartproofv1.ConditionVerified); c.Status != metav1.ConditionTrue {
		t.Errorf("Verified = %+v while waiting; want the chart verified as usual", c)
	}
	if vhr.Status.Installed != nil {
		t.Fatalf("installed %+v before its dependency exists", vhr.Status.Installed)
	}
	if got := kstatusOf(t, vhr); got.String() != "InProgress" {
		t.Errorf("kstatus %s while waiting for a dependency, want InProgress", got)
	}

	f.release("db", "1.0.0", "trusted", hourly)
	db := f.waitReady("db", 1, chartproofv1.ReasonInstallSucceeded)
	vhr = f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	dbReady := findCondition(db, chartproofv1.ConditionReady).LastTransitionTime
	if deployed := vhr.Status.Installed.DeployedAt; deployed == nil || deployed.Before(&dbReady) {
		t.Errorf("app deployed at %v, before db was Ready at %v", deployed, dbReady)
	}
}
