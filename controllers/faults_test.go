package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	helmrelease "helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// These tests leave a release the way a Helm action leaves it when the
// process running it dies half way: the latest record pending, some objects
// applied. The record is written with Helm's own storage driver, as Helm
// writes it; the objects with the API. The next reconcile must repair the
// release before anything else, and the tests read the objects to check.

// helmConfig is Helm's action.Configuration for ns, built as the helm CLI
// builds it: the tests read and write release records through it.
func helmConfig(t *testing.T, ns string) *action.Configuration {
	t.Helper()
	cfg := new(action.Configuration)
	getter := genericclioptions.NewConfigFlags(false)
	getter.KubeConfig, getter.Namespace = &kubeconfig, &ns
	if err := cfg.Init(getter, ns, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// helmHistory is `helm history` of release in ns: "revision:status".
func helmHistory(t *testing.T, ns, release string) []string {
	t.Helper()
	rels, err := action.NewHistory(helmConfig(t, ns)).Run(release)
	if err != nil {
		t.Fatalf("helm history %s: %v", release, err)
	}
	var out []string
	for _, r := range rels {
		out = append(out, fmt.Sprintf("%d:%s", r.Version, r.Info.Status))
	}
	return out
}

// touch changes spec.interval, which makes the controller reconcile the
// release now, without changing what it installs.
func (f *fixture) touch(name string) {
	f.t.Helper()
	vhr := f.get(name)
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Interval = metav1.Duration{Duration: 2 * time.Second}
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		f.t.Fatal(err)
	}
}

// interruptUpgrade stores revision 2 of release as an upgrade Helm began
// and never finished: the record is pending-upgrade, its manifest is
// revision 1's edited by edit, and the ConfigMap carries what revision 2
// would have written, as if Helm had patched it and died before the rest.
func (f *fixture) interruptUpgrade(release string, edit func(manifest string) string, cm func(*corev1.ConfigMap)) {
	f.t.Helper()
	cfg := helmConfig(f.t, f.ns)
	deployed, err := cfg.Releases.Get(release, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	pending := *deployed
	pending.Version = 2
	pending.Manifest = edit(deployed.Manifest)
	pending.Info = &helmrelease.Info{Status: helmrelease.StatusPendingUpgrade, Description: "Preparing upgrade",
		FirstDeployed: deployed.Info.FirstDeployed, LastDeployed: deployed.Info.LastDeployed}
	if err := cfg.Releases.Create(&pending); err != nil {
		f.t.Fatal(err)
	}
	if cm == nil {
		return
	}
	obj := f.configMap(release)
	cm(obj)
	if err := k8s.Update(context.Background(), obj); err != nil {
		f.t.Fatal(err)
	}
}

// objectUIDs are the UIDs of the chart's objects of release, by kind.
func (f *fixture) objectUIDs(release string) map[string]types.UID {
	f.t.Helper()
	uids := map[string]types.UID{}
	for _, o := range []client.Object{&corev1.ConfigMap{}, &corev1.Service{}, &corev1.ServiceAccount{}, &appsv1.Deployment{}} {
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: release + "-hello"}, o)
		if err != nil {
			uids[fmt.Sprintf("%T", o)] = ""
			continue
		}
		uids[fmt.Sprintf("%T", o)] = o.GetUID()
	}
	return uids
}

// TestPendingUpgradeRolledBack: an upgrade interrupted after it patched the
// ConfigMap is rolled back to the deployed revision at the next reconcile:
// the ConfigMap's data and stamp are revision 1's again, the interrupted
// revision is recorded as failed, and the release is Ready at the revision
// the rollback made.
func TestPendingUpgradeRolledBack(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.signLegacy(digest, f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	const other = "sha256:0000000000000000000000000000000000000000000000000000000000000bad"
	f.interruptUpgrade("app", func(m string) string {
		if !strings.Contains(m, "  message: hello\n") {
			t.Fatalf("manifest has no ConfigMap message to change:\n%s", m)
		}
		return strings.ReplaceAll(strings.ReplaceAll(m, "  message: hello\n", "  message: interrupted\n"), digest, other)
	}, func(cm *corev1.ConfigMap) {
		cm.Data["message"] = "interrupted"
		cm.Annotations[chartproofv1.AnnotationChartDigest] = other
	})
	f.touch("app")

	vhr := f.waitReady("app", 3, chartproofv1.ReasonPendingReleaseRecovered)
	if inst := vhr.Status.Installed; inst.Digest != digest || !inst.Verified {
		t.Errorf("status.installed = %+v; want %s, verified", inst, digest)
	}
	f.assertInstalled("app", digest)
	if got := f.configMap("app").Data["message"]; got != "hello" {
		t.Errorf("ConfigMap message = %q; want %q, revision 1's", got, "hello")
	}
	if diff := cmp.Diff([]string{"1:superseded", "2:failed", "3:deployed"}, helmHistory(t, f.ns, "app")); diff != "" {
		t.Errorf("helm history (-want +got):\n%s", diff)
	}
}

// TestPendingInstallReinstalled: an install interrupted with nothing
// deployed before it has its record marked failed at the next reconcile,
// and nothing in that record decides what is deleted; the following
// reconcile drops the records and installs the verified chart afresh,
// taking the objects over (the same objects) as revision 1.
func TestPendingInstallReinstalled(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.signLegacy(digest, f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	before := f.objectUIDs("app")

	cfg := helmConfig(t, f.ns)
	rel, err := cfg.Releases.Get("app", 1)
	if err != nil {
		t.Fatal(err)
	}
	rel.SetStatus(helmrelease.StatusPendingInstall, "Initial install underway")
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
	f.touch("app")

	f.waitEvent("app", chartproofv1.ReasonPendingReleaseRecovered)
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if inst := vhr.Status.Installed; inst.Digest != digest || !inst.Verified {
		t.Errorf("status.installed = %+v; want %s, verified", inst, digest)
	}
	f.assertInstalled("app", digest)
	if diff := cmp.Diff([]string{"1:deployed"}, helmHistory(t, f.ns, "app")); diff != "" {
		t.Errorf("helm history (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, f.objectUIDs("app")); diff != "" {
		t.Errorf("objects re-created instead of taken over (UIDs, -before +after):\n%s", diff)
	}
}

// TestPendingRecoveryFailed: when the rollback itself fails (here, the
// interrupted revision's manifest names a kind the API server does not
// serve), the failure is reported, the interrupted revision and the
// rollback's own are left failed rather than pending, and the next
// reconcile upgrades from there to the verified chart: a failed recovery
// does not wedge the release.
func TestPendingRecoveryFailed(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.signLegacy(digest, f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	f.interruptUpgrade("app", func(m string) string {
		return m + "\n---\napiVersion: example.com/v1\nkind: Unserved\nmetadata:\n  name: nowhere\n"
	}, nil)
	f.touch("app")

	f.waitEvent("app", chartproofv1.ReasonPendingRecoveryFailed)
	f.waitReady("app", 4, chartproofv1.ReasonUpgradeSucceeded)
	f.assertInstalled("app", digest)
	if diff := cmp.Diff([]string{"1:superseded", "2:failed", "3:failed", "4:deployed"}, helmHistory(t, f.ns, "app")); diff != "" {
		t.Errorf("helm history (-want +got):\n%s", diff)
	}
}
