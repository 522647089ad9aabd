package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
)

// These tests play a tenant: someone who may write VerifiedHelmReleases and
// TrustPolicies in their own namespace, signs a chart with their own key,
// and tries to use chartproof to reach beyond what their namespace's
// ServiceAccount may do. The API server enforces RBAC (envtest runs it with
// the RBAC authorizer) and the suite's manager itself may do anything, so
// every refusal below is the API server refusing the impersonated account.
// Each attack has a twin in which the platform team granted the right, and
// the same release installs.

// pushChart pushes the hello chart at version with extra templates (path
// under templates/ -> content), signs it with the fixture's key, and
// returns its digest.
func (f *fixture) pushChart(version string, extra map[string]string) string {
	f.t.Helper()
	files := testchart.Files("hello", version)
	for name, content := range extra {
		files["templates/"+name] = content
	}
	archive, err := testchart.Build(testchart.Entries("hello", files))
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := f.reg.PushChart(f.repo, version, archive, "hello", version)
	if err != nil {
		f.t.Fatal(err)
	}
	f.signLegacy(d, f.key)
	return d
}

// messages returns every condition message of the release and every event
// note about it.
func (f *fixture) messages(name string) []string {
	f.t.Helper()
	var out []string
	for _, c := range f.get(name).Status.Conditions {
		out = append(out, c.Type+": "+c.Message)
	}
	var evs eventsv1.EventList
	if err := k8s.List(context.Background(), &evs, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Regarding.Name == name {
			out = append(out, "event "+e.Reason+": "+e.Note)
		}
	}
	return out
}

// grantClusterRoles lets the fixture's ServiceAccount manage ClusterRoles.
func (f *fixture) grantClusterRoles() {
	f.t.Helper()
	name := "t-" + f.ns + "-clusterroles"
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.ns, Name: testServiceAccount}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := k8s.Create(context.Background(), o); err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { k8s.Delete(context.Background(), o) })
	}
}

// TestTenantConfinedToItsNamespace: a release can write only where its
// ServiceAccount may (THREATS TEN-01). The twin grants the right
// and installs.
func TestTenantConfinedToItsNamespace(t *testing.T) {
	tests := []struct {
		name string
		// chart returns the extra templates of the chart, given the
		// victim namespace and a unique name.
		chart func(victim, unique string) map[string]string
		// spec changes the release.
		spec func(v *chartproofv1.VerifiedHelmRelease, victim string)
		// grant gives the fixture's account the right the attack lacks.
		grant func(f *fixture, victim string)
		// written reads back what the attack tries to write; it returns
		// NotFound when nothing was written.
		written func(victim, unique string) error
		// reason is the refusal's, and says a part of its message.
		reason string
		says   func(victim string) string
	}{
		{
			name: "targetNamespace of another team",
			spec: func(v *chartproofv1.VerifiedHelmRelease, victim string) { v.Spec.TargetNamespace = victim },
			grant: func(f *fixture, victim string) {
				grantNamespace(f.t, victim, f.ns, testServiceAccount)
			},
			written: func(victim, _ string) error {
				return k8s.Get(context.Background(), types.NamespacedName{Namespace: victim, Name: "app-hello"}, &corev1.ConfigMap{})
			},
			// Helm's records there cannot even be read: refused before
			// the chart is rendered.
			reason: chartproofv1.ReasonInstallFailed,
			says:   func(string) string { return "the API server answered Forbidden (HTTP 403) on secrets" },
		},
		{
			name: "metadata.namespace in a template",
			chart: func(victim, unique string) map[string]string {
				return map[string]string{"elsewhere.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  planted: \"yes\"\n", unique, victim)}
			},
			grant: func(f *fixture, victim string) {
				grantNamespace(f.t, victim, f.ns, testServiceAccount)
			},
			written: func(victim, unique string) error {
				return k8s.Get(context.Background(), types.NamespacedName{Namespace: victim, Name: unique}, &corev1.ConfigMap{})
			},
			// The preflight (issue 14, item 7) refuses before Helm
			// writes a record or an object, naming the right missing.
			reason: chartproofv1.ReasonPermissionsMissing,
			says:   func(victim string) string { return "create configmaps in " + victim },
		},
		{
			name: "a ClusterRole",
			chart: func(_, unique string) map[string]string {
				return map[string]string{"clusterrole.yaml": fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: %s\nrules: []\n", unique)}
			},
			grant: func(f *fixture, _ string) { f.grantClusterRoles() },
			written: func(_, unique string) error {
				return k8s.Get(context.Background(), types.NamespacedName{Name: unique}, &rbacv1.ClusterRole{})
			},
			reason: chartproofv1.ReasonPermissionsMissing,
			says:   func(string) string { return "create clusterroles.rbac.authorization.k8s.io (cluster-wide)" },
		},
	}
	for _, tc := range tests {
		for _, granted := range []bool{false, true} {
			name := tc.name
			if granted {
				name += " (twin: granted)"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				victim := newBareNamespace(t)
				unique := "planted-" + f.ns
				var extra map[string]string
				if tc.chart != nil {
					extra = tc.chart(victim, unique)
				}
				f.pushChart("1.0.0", extra)
				f.policy("trusted", f.key, chartproofv1.ModeEnforce)
				t.Cleanup(func() {
					k8s.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: unique}})
				})
				if granted {
					tc.grant(f, victim)
				}
				f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
					if tc.spec != nil {
						tc.spec(v, victim)
					}
				})

				if granted {
					f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
					if err := tc.written(victim, unique); err != nil {
						t.Errorf("reading what the granted release wrote: %v", err)
					}
					return
				}
				vhr := f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, tc.reason)
				c := findCondition(vhr, chartproofv1.ConditionReleased)
				if want := "as system:serviceaccount:" + f.ns + ":" + testServiceAccount; !strings.Contains(c.Message, want) {
					t.Errorf("Released message = %q; want it to name %q", c.Message, want)
				}
				if want := tc.says(victim); !strings.Contains(c.Message, want) {
					t.Errorf("Released message = %q; want it to say %q", c.Message, want)
				}
				if err := tc.written(victim, unique); !apierrors.IsNotFound(err) {
					t.Errorf("reading what the refused release tried to write: error = %v; want NotFound", err)
				}
				for _, ns := range []string{f.ns, victim} {
					if n := records(t, ns, "app"); n != 0 {
						t.Errorf("%d Helm records in %s; want none", n, ns)
					}
				}
			})
		}
	}
}

func findCondition(vhr *chartproofv1.VerifiedHelmRelease, condType string) metav1.Condition {
	for _, c := range vhr.Status.Conditions {
		if c.Type == condType {
			return c
		}
	}
	return metav1.Condition{}
}

// TestLookupConfinedAndNotLeaked: `lookup` at render time reads as the
// release's ServiceAccount (TEN-02), and what a template reads never
// reaches the release's status or events, even when the account may read
// it: a `fail` of a lookup puts the whole Secret in Helm's error.
// The twin: with read access granted, a chart that only counts the Secrets
// installs, which shows the account could read them.
func TestLookupConfinedAndNotLeaked(t *testing.T) {
	f := newFixture(t)
	victim := newBareNamespace(t)
	const canary = "canary-7f3a9c-do-not-leak"
	if err := k8s.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: victim, Name: "credentials"},
		Data:       map[string][]byte{"token": []byte(canary)},
	}); err != nil {
		t.Fatal(err)
	}
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.pushChart("1.0.0", map[string]string{"exfil.yaml": fmt.Sprintf("{{ fail (lookup \"v1\" \"Secret\" %q \"\" | toJson) }}\n", victim)})
	f.pushChart("2.0.0", map[string]string{"count.yaml": fmt.Sprintf(
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-count\ndata:\n  secrets: {{ len (index (lookup \"v1\" \"Secret\" %q \"\") \"items\") | quote }}\n", victim)})
	short := func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Interval = metav1.Duration{Duration: time.Second} }
	f.release("exfil", "1.0.0", "trusted", short)
	f.release("count", "2.0.0", "trusted", short)

	noLeak := func(name string) {
		t.Helper()
		for _, m := range f.messages(name) {
			if strings.Contains(m, canary) || strings.Contains(m, "Y2FuYXJ5") { // the canary, or its base64
				t.Errorf("%s: a message carries the Secret: %q", name, m)
			}
		}
	}

	// Not granted: the lookup itself is refused.
	for _, name := range []string{"exfil", "count"} {
		vhr := f.waitCondition(name, chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonInstallFailed)
		if c := findCondition(vhr, chartproofv1.ConditionReleased); !strings.Contains(c.Message, "did not render (template hello/templates/") {
			t.Errorf("%s: Released message = %q; want the template location of the render error", name, c.Message)
		}
		noLeak(name)
	}

	// Granted read access to the victim's Secrets: the count installs (the
	// account can read them); the exfiltration still fails, and its
	// message still carries nothing it read, although Helm's error now
	// holds the Secret.
	if !renderErrorHasCanary(t, f, victim) {
		t.Fatal("Helm's render error of the exfil chart does not carry the Secret: the test could not see a leak")
	}
	granted := time.Now()
	grantNamespace(t, victim, f.ns, testServiceAccount)
	f.waitReady("count", 1, chartproofv1.ReasonInstallSucceeded)
	var cm corev1.ConfigMap
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "count-count"}, &cm); err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["secrets"]; got != "1" {
		t.Errorf("Secrets the granted lookup counted = %q; want 1", got)
	}
	waitFor(t, waitTimeout, "exfil to fail again after the grant", func() (bool, string) {
		vhr := f.get("exfil")
		c := findCondition(vhr, chartproofv1.ConditionReleased)
		seen := fmt.Sprintf("last verified %v, Released %s %s", vhr.Status.LastVerifiedTime, c.Reason, c.Message)
		return vhr.Status.LastVerifiedTime != nil && vhr.Status.LastVerifiedTime.Time.After(granted) &&
			c.Reason == chartproofv1.ReasonInstallFailed, seen
	})
	noLeak("exfil")
}

// renderErrorHasCanary renders the exfil chart with the admin's rights
// (what the account may do once granted), and reports whether Helm's error
// carries the Secret.
func renderErrorHasCanary(t *testing.T, f *fixture, victim string) bool {
	t.Helper()
	files := testchart.Files("hello", "1.0.0")
	files["templates/exfil.yaml"] = fmt.Sprintf("{{ fail (lookup \"v1\" \"Secret\" %q \"\" | toJson) }}\n", victim)
	archive, err := testchart.Build(testchart.Entries("hello", files))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadArchive(strings.NewReader(string(archive)))
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(helmConfig(t, f.ns))
	install.DryRun, install.DryRunOption, install.ReleaseName, install.Namespace = true, "server", "probe", f.ns
	_, err = install.Run(ch, nil)
	return err != nil && strings.Contains(err.Error(), "Y2FuYXJ5") // base64 of "canary" in the Secret's JSON
}

// installByHand installs the hello chart as release name in ns the way the
// helm CLI would, without chartproof: another team's release.
func installByHand(t *testing.T, ns, name string) {
	t.Helper()
	archive, err := testchart.Archive("hello", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadArchive(strings.NewReader(string(archive)))
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(helmConfig(t, ns))
	install.ReleaseName, install.Namespace = name, ns
	if _, err := install.Run(ch, map[string]any{"message": "by hand"}); err != nil {
		t.Fatalf("helm install %s: %v", name, err)
	}
}

// deleteRelease deletes the VerifiedHelmRelease and waits until it is gone.
func (f *fixture) deleteRelease(name string) {
	f.t.Helper()
	if err := k8s.Delete(context.Background(), &chartproofv1.VerifiedHelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}}); err != nil {
		f.t.Fatal(err)
	}
	waitFor(f.t, waitTimeout, name+" to be gone", func() (bool, string) {
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &chartproofv1.VerifiedHelmRelease{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// TestReleaseOfAnotherOwnerUntouched: a release chartproof did not install
// for this object is neither upgraded nor, on deletion, uninstalled
// (TEN-03 with a missing policy, so nothing is even verified; TEN-04 with a
// chart that passes). The twin adopts it when asked.
func TestReleaseOfAnotherOwnerUntouched(t *testing.T) {
	for _, policyName := range []string{"missing", "trusted"} {
		t.Run("policy "+policyName, func(t *testing.T) {
			f := newFixture(t)
			installByHand(t, f.ns, "victim")
			d := f.pushChart("1.0.0", nil)
			f.policy("trusted", f.key, chartproofv1.ModeEnforce)
			f.release("victim", "1.0.0", policyName)

			vhr := f.waitCondition("victim", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonReleaseNotOwned)
			if vhr.Status.Installed != nil {
				t.Errorf("status.installed = %+v; want none", vhr.Status.Installed)
			}
			if cm := f.configMap("victim"); cm == nil || cm.Data["message"] != "by hand" {
				t.Fatalf("victim's ConfigMap = %+v; want it untouched (message \"by hand\")", cm)
			}
			f.deleteRelease("victim")
			if got := helmHistory(t, f.ns, "victim"); len(got) != 1 || got[0] != "1:deployed" {
				t.Errorf("victim's history after the deletion = %v; want [1:deployed]", got)
			}
			if cm := f.configMap("victim"); cm == nil || cm.Data["message"] != "by hand" {
				t.Errorf("victim's ConfigMap after the deletion = %+v; want it untouched", cm)
			}

			// The twin: asked to adopt, the object upgrades the release,
			// owns it, and uninstalls it on deletion.
			if policyName == "missing" {
				return
			}
			f.release("victim", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Adopt = true })
			f.waitReady("victim", 2, chartproofv1.ReasonUpgradeSucceeded)
			f.assertInstalled("victim", d)
			f.deleteRelease("victim")
			if cm := f.configMap("victim"); cm != nil {
				t.Errorf("victim's ConfigMap after the adopter's deletion = %+v; want it uninstalled", cm.Data)
			}
		})
	}
}

// TestSecondOwnerRefused: two VerifiedHelmReleases naming one Helm release:
// the second is refused, even with adopt, and deleting it leaves the first
// one's release installed (TEN-04).
func TestSecondOwnerRefused(t *testing.T) {
	f := newFixture(t)
	d := f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	shared := func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.ReleaseName = "shared" }
	f.release("first", "1.0.0", "trusted", shared)
	f.waitReady("first", 1, chartproofv1.ReasonInstallSucceeded)

	f.release("second", "1.0.0", "trusted", shared, func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Adopt = true })
	vhr := f.waitCondition("second", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonReleaseNotOwned)
	if c := findCondition(vhr, chartproofv1.ConditionReady); !strings.Contains(c.Message, f.ns+"/first") {
		t.Errorf("Ready message = %q; want it to name the owner %s/first", c.Message, f.ns)
	}
	f.deleteRelease("second")
	if got := helmHistory(t, f.ns, "shared"); len(got) != 1 || got[0] != "1:deployed" {
		t.Errorf("shared's history after the second's deletion = %v; want [1:deployed]", got)
	}
	f.waitCondition("first", chartproofv1.ConditionReady, metav1.ConditionTrue, chartproofv1.ReasonInstallSucceeded)
	if cm := f.configMap("shared"); cm == nil || cm.Annotations[chartproofv1.AnnotationChartDigest] != d {
		t.Errorf("shared's ConfigMap = %+v; want it installed by first", cm)
	}
}

// TestTargetMoveUninstallsOld: changing releaseName uninstalls the release
// the object installed under the old name, then installs the new one.
func TestTargetMoveUninstallsOld(t *testing.T) {
	f := newFixture(t)
	d := f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.ReleaseName = "one" })
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	vhr := f.get("app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.ReleaseName = "two"
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	f.waitEvent("app", chartproofv1.ReasonUninstallSucceeded)
	vhr = f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if inst := vhr.Status.Installed; inst.Name != "two" || inst.Namespace != f.ns {
		t.Errorf("status.installed names %s/%s; want %s/two", inst.Namespace, inst.Name, f.ns)
	}
	if cm := f.configMap("two"); cm == nil || cm.Annotations[chartproofv1.AnnotationChartDigest] != d {
		t.Errorf("the new release's ConfigMap = %+v; want it installed at %s", cm, d)
	}
	if cm := f.configMap("one"); cm != nil {
		t.Errorf("the old release's ConfigMap is still there: %+v", cm.Data)
	}
	if recs, err := action.NewHistory(helmConfig(t, f.ns)).Run("one"); err == nil {
		t.Errorf("the old release still has records: %d", len(recs))
	}
}

// TestServiceAccountRequired: a release that names no ServiceAccount, on a
// manager without a default, installs nothing (TEN-01); its twin names one
// and installs. A named account without rights is refused by the API server.
func TestServiceAccountRequired(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("anonymous", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.ServiceAccountName = "" })
	f.release("powerless", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.ServiceAccountName = "nobody" })
	f.release("named", "1.0.0", "trusted")

	f.waitCondition("anonymous", chartproofv1.ConditionStalled, metav1.ConditionTrue, chartproofv1.ReasonServiceAccountRequired)
	f.waitCondition("powerless", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonInstallFailed)
	f.waitReady("named", 1, chartproofv1.ReasonInstallSucceeded)
	for _, name := range []string{"anonymous", "powerless"} {
		if cm := f.configMap(name); cm != nil {
			t.Errorf("%s installed its ConfigMap: %+v", name, cm.Data)
		}
	}
}

// TestValuesReadAsServiceAccount: valuesFrom and chart.secretRef are read
// as the release's ServiceAccount, so a release cannot render, or log in
// with, a Secret of its namespace that its account may not read (TEN-07).
// The account here may write its release in another namespace and read only
// ConfigMaps in its own; the twin takes its values from a ConfigMap and
// installs.
func TestValuesReadAsServiceAccount(t *testing.T) {
	f := newFixture(t)
	target := newBareNamespace(t)
	grantNamespace(t, target, f.ns, "deployer")
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "deployer-configmaps"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "deployer-configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.ns, Name: "deployer"}},
	}
	values := "message: from the values object\n"
	for _, o := range []client.Object{
		role, binding,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "values"}, StringData: map[string]string{"values.yaml": values}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "values"}, Data: map[string]string{"values.yaml": values}},
	} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	for _, kind := range []string{"Secret", "ConfigMap"} {
		f.release("from-"+strings.ToLower(kind), "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.ServiceAccountName, v.Spec.TargetNamespace = "deployer", target
			v.Spec.ValuesFrom = []chartproofv1.ValuesReference{{Kind: kind, Name: "values"}}
		})
	}

	f.release("registry-secret", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.ServiceAccountName, v.Spec.TargetNamespace = "deployer", target
		v.Spec.Chart.SecretRef = &chartproofv1.LocalObjectReference{Name: "values"}
	})

	for _, name := range []string{"from-secret", "registry-secret"} {
		vhr := f.waitCondition(name, chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonInvalidSpec)
		if c := findCondition(vhr, chartproofv1.ConditionReady); !strings.Contains(c.Message, "forbidden") {
			t.Errorf("%s: Ready message = %q; want the API server's refusal of the account", name, c.Message)
		}
	}
	f.waitReady("from-configmap", 1, chartproofv1.ReasonInstallSucceeded)
	var cm corev1.ConfigMap
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: target, Name: "from-configmap-hello"}, &cm); err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["message"]; got != "from the values object" {
		t.Errorf("the twin's message = %q; want the values of its ConfigMap", got)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: target, Name: "from-secret-hello"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused release's ConfigMap: error = %v; want NotFound", err)
	}
}

// TestDeletionLetsGoWhenNamespaceGoes: an account that lost its rights keeps
// a deleted VerifiedHelmRelease's finalizer (its release stays owned and
// installed, UninstallFailed), unless the namespace is being deleted, which
// would otherwise wait for the object for ever: then the object goes, and
// the release is left to the namespace (the manager's log says so; no event
// can be created in a namespace being deleted).
func TestDeletionLetsGoWhenNamespaceGoes(t *testing.T) {
	for _, terminating := range []bool{false, true} {
		t.Run(fmt.Sprintf("namespace terminating %v", terminating), func(t *testing.T) {
			f := newFixture(t)
			f.pushChart("1.0.0", nil)
			f.policy("trusted", f.key, chartproofv1.ModeEnforce)
			f.release("app", "1.0.0", "trusted")
			f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

			ctx := context.Background()
			name := "releases-" + f.ns + "-" + testServiceAccount
			if err := k8s.Delete(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}}); err != nil {
				t.Fatal(err)
			}
			if terminating {
				// envtest runs no namespace controller: the namespace stays
				// Terminating, with everything in it.
				if err := k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := k8s.Delete(ctx, &chartproofv1.VerifiedHelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "app"}}); err != nil {
				t.Fatal(err)
			}
			if !terminating {
				// (In a namespace being deleted no event can be created.)
				f.waitEvent("app", chartproofv1.ReasonUninstallFailed)
				// The account cannot uninstall: the object stays, and so
				// does its release.
				vhr := f.get("app")
				if vhr.DeletionTimestamp.IsZero() || len(vhr.Finalizers) == 0 {
					t.Errorf("object after a failed uninstall: deletion %v, finalizers %v; want it held", vhr.DeletionTimestamp, vhr.Finalizers)
				}
				if cm := f.configMap("app"); cm == nil {
					t.Error("the release's ConfigMap is gone; want it installed")
				}
				// Restore the right: the uninstall then goes through.
				binding := &rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
					Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.ns, Name: testServiceAccount}},
				}
				if err := k8s.Create(ctx, binding); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, waitTimeout, "app to be gone", func() (bool, string) {
				err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "app"}, &chartproofv1.VerifiedHelmRelease{})
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
			cm := f.configMap("app")
			if terminating && cm == nil {
				t.Error("the release's ConfigMap is gone; want it left to the namespace")
			}
			if !terminating && cm != nil {
				t.Error("the release's ConfigMap is still there after the uninstall")
			}
		})
	}
}

// TestCrossNamespacePolicyRefused (TEN-07): a release naming another
// namespace's TrustPolicy — one that trusts the key its chart is signed
// with — is refused with CrossNamespaceReference and installs nothing: the
// controller never reads that policy (the admission webhook refuses the
// same release when it is applied: e2e.TestAdmission). Its twin, naming
// its own namespace explicitly, installs.
func TestCrossNamespacePolicyRefused(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	other := newBareNamespace(t)
	if err := k8s.Create(context.Background(), &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "platform"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: f.key.PublicPEM()}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	f.release("borrowed", "1.0.0", "platform", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.TrustPolicyRef.Namespace = other })
	f.waitCondition("borrowed", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonCrossNamespaceReference)
	if cm := f.configMap("borrowed"); cm != nil {
		t.Errorf("the release installed its ConfigMap: %+v", cm.Data)
	}
	f.policy("own", f.key, "")
	f.release("own", "1.0.0", "own", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.TrustPolicyRef.Namespace = f.ns })
	f.waitReady("own", 1, chartproofv1.ReasonInstallSucceeded)
}
