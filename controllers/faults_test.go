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
	apimeta "k8s.io/apimachinery/pkg/api/meta"
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

// suspend suspends release name and waits until the controller says so.
// Tests that write Helm release records by hand suspend the release first:
// the record watch would otherwise wake it between two of their writes.
func (f *fixture) suspend(name string) {
	f.t.Helper()
	vhr := f.get(name)
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Suspend = true
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		f.t.Fatal(err)
	}
	f.waitCondition(name, chartproofv1.ConditionReconciling, metav1.ConditionFalse, chartproofv1.ReasonSuspended)
}

// touch changes spec.interval (and resumes a suspended release), which
// makes the controller reconcile the release now, without changing what it
// installs.
func (f *fixture) touch(name string) {
	f.t.Helper()
	vhr := f.get(name)
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Suspend = false
	vhr.Spec.Interval = metav1.Duration{Duration: 2 * time.Second}
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		f.t.Fatal(err)
	}
}

// rerun makes the controller reconcile release name again, a spec change
// that installs nothing new (its interval one second longer), and waits
// until it has: Ready observed at the new generation.
func (f *fixture) rerun(name string) *chartproofv1.VerifiedHelmRelease {
	f.t.Helper()
	vhr := f.get(name)
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Interval = metav1.Duration{Duration: vhr.Spec.Interval.Duration + time.Second}
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		f.t.Fatal(err)
	}
	return f.waitObserved(name)
}

// waitObserved waits until the release's reconcile of its current
// generation has ended: Ready and status for that generation (not the
// Ready=Unknown written when it started).
func (f *fixture) waitObserved(name string) *chartproofv1.VerifiedHelmRelease {
	f.t.Helper()
	var vhr *chartproofv1.VerifiedHelmRelease
	waitFor(f.t, waitTimeout, name+" reconciled at its generation", func() (bool, string) {
		vhr = f.get(name)
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		return c != nil && c.ObservedGeneration == vhr.Generation && vhr.Status.ObservedGeneration == vhr.Generation,
			fmt.Sprintf("Ready %+v, generation %d, observed %d", c, vhr.Generation, vhr.Status.ObservedGeneration)
	})
	return vhr
}

// interruptUpgrade stores revision 2 of release as an upgrade Helm began
// and never finished: the record is pending-upgrade, its manifest is
// revision 1's edited by edit, and the ConfigMap carries what revision 2
// would have written, as if Helm had patched it and died before the rest.
func (f *fixture) interruptUpgrade(release string, edit func(manifest string) string, cm func(*corev1.ConfigMap)) {
	f.t.Helper()
	f.suspend(release) // resumed by the caller's touch
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

// TestPendingUpgradeRecovered: an upgrade interrupted after it patched the
// ConfigMap has its record marked failed at the next reconcile, and the
// verified chart is upgraded to from revision 1, the record chartproof
// installed: the ConfigMap's data and stamp are the chart's again (the
// three-way patch puts back what the interrupted action changed), and the
// release is Ready at revision 3.
func TestPendingUpgradeRecovered(t *testing.T) {
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

	f.waitEvent("app", chartproofv1.ReasonPendingReleaseRecovered)
	vhr := f.waitReady("app", 3, chartproofv1.ReasonUpgradeSucceeded)
	if inst := vhr.Status.Installed; inst.Digest != digest || !inst.Verified {
		t.Errorf("status.installed = %+v; want %s, verified", inst, digest)
	}
	f.assertInstalled("app", digest)
	if got := f.configMap("app").Data["message"]; got != "hello" {
		t.Errorf("ConfigMap message = %q; want %q, the verified chart's", got, "hello")
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

	f.suspend("app") // resumed by touch
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

// TestPendingRecordDecidesNothing: the interrupted revision's record is
// evidence of a half-done action, not a plan (THREATS TEN-05). Whoever may
// write Secrets in the namespace adds a pending revision 2 whose manifest
// also lists ConfigMap victim.
// Recovery marks it failed and applies nothing of it: the next upgrade
// diffs against revision 1, the record chartproof installed (Helm's
// rollback would diff against revision 2 and delete the victim), so the
// victim stays and the release is Ready at revision 3, revision 1's
// rendering of the verified chart. The twin, a pending revision 2 that is
// revision 1's own manifest, recovers the same way.
func TestPendingRecordDecidesNothing(t *testing.T) {
	for _, forged := range []bool{true, false} {
		t.Run(fmt.Sprintf("forged %v", forged), func(t *testing.T) {
			f := newFixture(t)
			digest := f.push("1.0.0")
			f.signLegacy(digest, f.key)
			f.policy("trusted", f.key, "")
			f.release("app", "1.0.0", "trusted")
			f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			ctx := context.Background()
			victim := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "victim"}}
			if err := k8s.Create(ctx, victim); err != nil {
				t.Fatal(err)
			}

			f.interruptUpgrade("app", func(m string) string {
				if !forged {
					return m
				}
				return m + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\n  namespace: " + f.ns + "\n"
			}, func(cm *corev1.ConfigMap) { cm.Data["message"] = "interrupted" })
			f.touch("app")

			f.waitEvent("app", chartproofv1.ReasonPendingReleaseRecovered)
			vhr := f.waitReady("app", 3, chartproofv1.ReasonUpgradeSucceeded)
			if inst := vhr.Status.Installed; inst.Digest != digest || !inst.Verified {
				t.Errorf("status.installed = %+v; want %s, verified", inst, digest)
			}
			f.assertInstalled("app", digest)
			if got := f.configMap("app").Data["message"]; got != "hello" {
				t.Errorf("ConfigMap message = %q; want %q, the verified chart's", got, "hello")
			}
			if diff := cmp.Diff([]string{"1:superseded", "2:failed", "3:deployed"}, helmHistory(t, f.ns, "app")); diff != "" {
				t.Errorf("helm history (-want +got):\n%s", diff)
			}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(victim), &corev1.ConfigMap{}); err != nil {
				t.Errorf("the victim ConfigMap: %v; want it kept", err)
			}
		})
	}
}

// TestPendingRecoveryFailed: when the unfinished record cannot be marked
// failed (here an administrator made its Secret immutable), the failure is
// reported (PendingRecoveryFailed), nothing is applied, and the recovery is
// retried: once the Secret can be written again, the release recovers and
// is upgraded to the verified chart.
func TestPendingRecoveryFailed(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.signLegacy(digest, f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	f.interruptUpgrade("app", func(m string) string { return m }, nil)
	ctx := context.Background()
	record := &corev1.Secret{}
	key := types.NamespacedName{Namespace: f.ns, Name: "sh.helm.release.v1.app.v2"}
	if err := k8s.Get(ctx, key, record); err != nil {
		t.Fatal(err)
	}
	immutable := true
	record.Immutable = &immutable
	if err := k8s.Update(ctx, record); err != nil {
		t.Fatal(err)
	}
	f.touch("app")

	f.waitEvent("app", chartproofv1.ReasonPendingRecoveryFailed)
	f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonPendingRecoveryFailed)
	if diff := cmp.Diff([]string{"1:deployed", "2:pending-upgrade"}, helmHistory(t, f.ns, "app")); diff != "" {
		t.Errorf("helm history while recovery fails (-want +got):\n%s", diff)
	}

	// An immutable Secret can only be replaced.
	if err := k8s.Delete(ctx, record); err != nil {
		t.Fatal(err)
	}
	record.ResourceVersion, record.UID, record.Immutable = "", "", nil
	if err := k8s.Create(ctx, record); err != nil {
		t.Fatal(err)
	}
	f.waitReady("app", 3, chartproofv1.ReasonUpgradeSucceeded)
	f.assertInstalled("app", digest)
	if diff := cmp.Diff([]string{"1:superseded", "2:failed", "3:deployed"}, helmHistory(t, f.ns, "app")); diff != "" {
		t.Errorf("helm history (-want +got):\n%s", diff)
	}
}
