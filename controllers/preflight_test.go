package controllers_test

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// setRules replaces the rules of the fixture account's Role in its own
// namespace (grantNamespace's) and returns the ones it had.
func (f *fixture) setRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	f.t.Helper()
	var role rbacv1.Role
	key := types.NamespacedName{Namespace: f.ns, Name: "releases-" + f.ns + "-" + testServiceAccount}
	if err := k8s.Get(context.Background(), key, &role); err != nil {
		f.t.Fatal(err)
	}
	old := role.Rules
	role.Rules = rules
	if err := k8s.Update(context.Background(), &role); err != nil {
		f.t.Fatal(err)
	}
	return old
}

// TestPreflight (issue 14, item 7): before an install or an upgrade writes
// anything, the release's ServiceAccount asks the API server
// (SelfSubjectAccessReview) for every verb a release needs on every object
// the chart rendered: get, create, patch, delete. An account that may do
// everything but delete is refused with PermissionsMissing naming each
// object it could not delete, Stalled, with no record and no object
// written (before, Helm got as far as it could and failed on the first
// Forbidden). Once the right is back it installs by itself (the refusal is
// looked at again every 30 s, with no change to the release): the control
// twin. An upgrade whose account may no longer patch the Deployment is
// refused the same way, revision 1 left running untouched, and goes
// through once the right is back.
func TestPreflight(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.pushChart("2.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	noDelete := []string{"get", "list", "watch", "create", "update", "patch"}
	full := f.setRules([]rbacv1.PolicyRule{
		{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: noDelete},
		// Helm's records are Secrets it deletes (maxHistory); the chart has no Secret.
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: all},
	})
	f.release("app", "1.0.0", "trusted")

	vhr := f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonPermissionsMissing)
	msg := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReleased).Message
	for _, want := range []string{
		"as system:serviceaccount:" + f.ns + ":" + testServiceAccount,
		"4 permissions missing",
		"delete serviceaccounts app-hello in " + f.ns,
		"delete configmaps app-hello in " + f.ns,
		"delete services app-hello in " + f.ns,
		"delete deployments.apps app-hello in " + f.ns,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Released message %q; want it to say %q", msg, want)
		}
	}
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionStalled); c == nil || c.Status != metav1.ConditionTrue || c.Reason != chartproofv1.ReasonPermissionsMissing {
		t.Errorf("Stalled = %+v; want True, PermissionsMissing (someone must grant them)", c)
	}
	if vhr.Status.Installed != nil || vhr.Status.LastAttempt != nil {
		t.Errorf("installed %+v, lastAttempt %+v; want neither: nothing was tried", vhr.Status.Installed, vhr.Status.LastAttempt)
	}
	f.waitEvent("app", chartproofv1.ReasonPermissionsMissing)
	if n := records(t, f.ns, "app"); n != 0 {
		t.Errorf("%d Helm records written; want none", n)
	}
	if cm := f.configMap("app"); cm != nil {
		t.Errorf("ConfigMap %s written; want nothing", cm.Name)
	}

	// The control twin: the same release, the right given back.
	f.setRules(full)
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	// An upgrade the account may not carry out.
	f.setRules([]rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"*"}, Verbs: all},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}},
	})
	before := f.get("app")
	patch := client.MergeFrom(before.DeepCopy())
	before.Spec.Chart.Version = "2.0.0"
	if err := k8s.Patch(context.Background(), before, patch); err != nil {
		t.Fatal(err)
	}
	vhr = f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonPermissionsMissing)
	msg = apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReleased).Message
	if want := "1 permission missing: patch deployments.apps app-hello in " + f.ns; !strings.Contains(msg, want) {
		t.Errorf("Released message %q; want it to say %q", msg, want)
	}
	if inst := vhr.Status.Installed; inst == nil || inst.Revision != 1 || inst.ChartVersion != "1.0.0" {
		t.Errorf("installed %+v; want revision 1 (1.0.0) kept", inst)
	}
	if n := records(t, f.ns, "app"); n != 1 {
		t.Errorf("%d Helm records; want revision 1's alone", n)
	}
	f.setRules(full)
	f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
}
