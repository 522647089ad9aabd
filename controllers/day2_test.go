package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
)

// records counts the Helm release records of release name in namespace.
func records(t *testing.T, namespace, name string) int {
	t.Helper()
	var list corev1.SecretList
	if err := k8s.List(context.Background(), &list, client.InNamespace(namespace), client.MatchingLabels{"owner": "helm", "name": name}); err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// TestMaxHistory: spec.maxHistory bounds the records an upgrade keeps; its
// control twin, without it, keeps every revision (the default keeps 10).
func TestMaxHistory(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("bounded", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.MaxHistory = ptr.To[int32](2) })
	f.release("control", "1.0.0", "trusted")
	for _, name := range []string{"bounded", "control"} {
		f.waitReady(name, 1, chartproofv1.ReasonInstallSucceeded)
		for rev := 2; rev <= 4; rev++ {
			vhr := f.get(name)
			patch := client.MergeFrom(vhr.DeepCopy())
			vhr.Spec.Values = jsonValues(t, fmt.Sprintf(`{"message":"revision %d"}`, rev))
			if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
				t.Fatal(err)
			}
			f.waitReady(name, rev, chartproofv1.ReasonUpgradeSucceeded)
		}
	}
	if got := records(t, f.ns, "bounded"); got != 2 {
		t.Errorf("bounded: %d records after 4 revisions, want 2 (maxHistory)", got)
	}
	if got := records(t, f.ns, "control"); got != 4 {
		t.Errorf("control: %d records after 4 revisions, want 4", got)
	}
}

// TestCreateNamespace: spec.install.createNamespace creates the target
// namespace as the release's ServiceAccount, never with the manager's
// rights: refused while the account may not (InstallFailed, no namespace),
// done once a platform team grants it.
func TestCreateNamespace(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	target := f.ns + "-new"
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.TargetNamespace = target
		v.Spec.Install = &chartproofv1.Install{CreateNamespace: true}
	})
	f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonInstallFailed)
	var ns corev1.Namespace
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: target}, &ns); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s: %v; want none while the ServiceAccount may not create it", target, err)
	}

	// Granted what a release that creates its namespace needs: the
	// namespace, and what the chart holds, wherever.
	ctx := context.Background()
	name := "chartproof-test-create-namespace-" + f.ns
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "create"}},
		{APIGroups: []string{"", "apps"}, Resources: []string{"secrets", "configmaps", "services", "serviceaccounts", "deployments"}, Verbs: []string{"*"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.ns, Name: testServiceAccount}}}
	for _, o := range []client.Object{role, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), o) })
	}
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if err := k8s.Get(ctx, types.NamespacedName{Name: target}, &ns); err != nil {
		t.Fatalf("namespace %s after the install: %v", target, err)
	}
	if vhr.Status.Installed.Namespace != target {
		t.Errorf("installed in %q, want %q", vhr.Status.Installed.Namespace, target)
	}
}

// TestDisableHooks: spec.install.disableHooks installs without running the
// chart's post-install hook; its control twin runs it.
func TestDisableHooks(t *testing.T) {
	f := newFixture(t)
	files := testchart.Files("hello", "1.0.0")
	files["templates/hook.yaml"] = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-hooked
  annotations:
    helm.sh/hook: post-install
data:
  ran: "true"
`
	archive, err := testchart.Build(testchart.Entries("hello", files))
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.reg.PushChart(f.repo, "1.0.0", archive, "hello", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	f.signLegacy(d, f.key)
	f.policy("trusted", f.key, "")
	f.release("hooks", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour} })
	f.release("nohooks", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
		v.Spec.Install = &chartproofv1.Install{DisableHooks: true}
	})
	for name, want := range map[string]bool{"hooks": true, "nohooks": false} {
		f.waitReady(name, 1, chartproofv1.ReasonInstallSucceeded)
		var cm corev1.ConfigMap
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name + "-hooked"}, &cm)
		if ran := err == nil; ran != want {
			t.Errorf("%s: the post-install hook ran %v (%v), want %v", name, ran, err, want)
		}
	}
}

// TestValuesTargetPath: valuesFrom[].targetPath sets a ConfigMap key's whole
// content at a path, after the valuesFrom before it and under spec.values;
// the content's comma does not split it (its twin, without targetPath, merges
// the key as YAML).
func TestValuesTargetPath(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "settings"}, Data: map[string]string{
		"greeting":    "hello, world=1",
		"values.yaml": "message: from yaml\n",
	}}
	if err := k8s.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	f.release("path", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.ValuesFrom = []chartproofv1.ValuesReference{
			{Kind: "ConfigMap", Name: "settings"},
			{Kind: "ConfigMap", Name: "settings", Key: "greeting", TargetPath: "message"},
		}
	})
	f.release("yaml", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.ValuesFrom = []chartproofv1.ValuesReference{{Kind: "ConfigMap", Name: "settings"}}
	})
	for name, want := range map[string]string{"path": "hello, world=1", "yaml": "from yaml"} {
		f.waitReady(name, 1, chartproofv1.ReasonInstallSucceeded)
		if got := f.configMap(name).Data["message"]; got != want {
			t.Errorf("%s: message %q, want %q", name, got, want)
		}
	}
}

// TestUpgradeForce: spec.upgrade.force upgrades by replacing each object
// whole, so a key another writer added to the chart's ConfigMap is gone;
// its twin's patch keeps it. (Drift detection is off in both, or it would
// remove the key itself.)
func TestUpgradeForce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	for name, force := range map[string]bool{"forced": true, "patched": false} {
		f.release(name, "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
			v.Spec.DriftDetection = &chartproofv1.DriftDetection{Mode: chartproofv1.DriftDisabled}
			v.Spec.Upgrade = &chartproofv1.Upgrade{Force: force}
		})
	}
	for name, force := range map[string]bool{"forced": true, "patched": false} {
		f.waitReady(name, 1, chartproofv1.ReasonInstallSucceeded)
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cm := f.configMap(name)
			cm.Data["added"] = "by hand"
			return k8s.Update(ctx, cm)
		}); err != nil {
			t.Fatal(err)
		}
		vhr := f.get(name)
		patch := client.MergeFrom(vhr.DeepCopy())
		vhr.Spec.Values = jsonValues(t, `{"message":"upgraded"}`)
		if err := k8s.Patch(ctx, vhr, patch); err != nil {
			t.Fatal(err)
		}
		f.waitReady(name, 2, chartproofv1.ReasonUpgradeSucceeded)
		cm := f.configMap(name)
		if cm.Data["message"] != "upgraded" {
			t.Errorf("%s: message %q after the upgrade", name, cm.Data["message"])
		}
		if _, kept := cm.Data["added"]; kept == force {
			t.Errorf("%s (force %v): the key added by hand kept: %v", name, force, kept)
		}
	}
}

// TestStorageNamespace: spec.storageNamespace keeps the Helm records in
// another namespace, written and read as the release's ServiceAccount.
// While the account may not write there, the install fails and nothing is
// written; once it may, the records are there and the objects in the
// target. A record rewritten there is found (ReleaseRecordTampered) and
// the release installed afresh, as in the target. Moving the storage back
// uninstalls from the old one and installs afresh; deletion removes the
// records. Its control twin, without storageNamespace, keeps its records in
// the target.
func TestStorageNamespace(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	store := newBareNamespace(t)
	hour := metav1.Duration{Duration: time.Hour}
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = hour
		v.Spec.StorageNamespace = store
	})
	f.release("control", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Interval = hour })
	f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonInstallFailed)
	if n := records(t, store, "app"); n != 0 || f.configMap("app") != nil {
		t.Fatalf("%d records, ConfigMap %v while the account may not write the records; want none", n, f.configMap("app"))
	}
	f.waitReady("control", 1, chartproofv1.ReasonInstallSucceeded)
	if n := records(t, f.ns, "control"); n != 1 {
		t.Errorf("control: %d records in the target, want 1", n)
	}

	grantNamespace(t, store, f.ns, testServiceAccount)
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if vhr.Status.Installed.StorageNamespace != store {
		t.Errorf("status.installed.storageNamespace %q, want %q", vhr.Status.Installed.StorageNamespace, store)
	}
	if got, in := records(t, store, "app"), records(t, f.ns, "app"); got != 1 || in != 0 || f.configMap("app") == nil {
		t.Fatalf("%d records in the storage namespace, %d in the target, ConfigMap %v; want 1, 0 and the ConfigMap", got, in, f.configMap("app"))
	}

	// A record rewritten in the storage namespace is tampering.
	cfg := helmConfig(t, store)
	rel, err := cfg.Releases.Get("app", 1)
	if err != nil {
		t.Fatal(err)
	}
	rel.Manifest += "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\n"
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
	f.waitEvent("app", chartproofv1.ReasonReleaseRecordTampered)
	// The generation is the same: Ready at revision 1 is said before the
	// repair too. The records say when it is done.
	waitFor(t, waitTimeout, "revision 1 installed afresh in the storage namespace", func() (bool, string) {
		rel, err := helmConfig(t, store).Releases.Get("app", 1)
		switch {
		case err != nil:
			return false, err.Error()
		case strings.Contains(rel.Manifest, "victim"):
			return false, "the rewritten record is still there"
		}
		return rel.Info.Status == "deployed", "revision 1 is " + rel.Info.Status.String()
	})
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if got := helmHistory(t, store, "app"); len(got) != 1 || got[0] != "1:deployed" {
		t.Errorf("history after the repair = %v; want [1:deployed]", got)
	}

	// Back to the target namespace.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		v := f.get("app")
		v.Spec.StorageNamespace = ""
		return k8s.Update(ctx, v)
	}); err != nil {
		t.Fatal(err)
	}
	f.waitEvent("app", chartproofv1.ReasonUninstallSucceeded)
	vhr = f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if got, in := records(t, store, "app"), records(t, f.ns, "app"); got != 0 || in != 1 || vhr.Status.Installed.StorageNamespace != "" {
		t.Errorf("after the move: %d records in the old storage, %d in the target, status storage %q; want 0, 1, none",
			got, in, vhr.Status.Installed.StorageNamespace)
	}
	f.deleteRelease("app")
	waitFor(t, waitTimeout, "the records removed on deletion", func() (bool, string) {
		n := records(t, f.ns, "app")
		return n == 0, fmt.Sprintf("%d records", n)
	})
}
