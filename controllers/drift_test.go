package controllers_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/drifttest"
	"github.com/chartproof/chartproof/internal/release"
)

// deployment reads the chart's Deployment of release name.
func (f *fixture) deployment(release string) *appsv1.Deployment {
	f.t.Helper()
	var d appsv1.Deployment
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: release + "-hello"}, &d); err != nil {
		f.t.Fatal(err)
	}
	return &d
}

// editDeployment changes the chart's Deployment as `kubectl edit` does: an
// update under the field manager "kubectl-edit", read again and retried
// when another writer (its status, written as a deployment controller
// would) came in between.
func (f *fixture) editDeployment(release string, change func(*appsv1.Deployment)) {
	f.t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := f.deployment(release)
		change(d)
		return k8s.Update(context.Background(), d, client.FieldOwner("kubectl-edit"))
	}); err != nil {
		f.t.Fatal(err)
	}
}

// driftCondition describes the release's Drifted condition.
func (f *fixture) driftCondition(name string) *metav1.Condition {
	f.t.Helper()
	return apimeta.FindStatusCondition(f.get(name).Status.Conditions, chartproofv1.ConditionDrifted)
}

func sidecar(d *appsv1.Deployment) {
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers,
		corev1.Container{Name: "miner", Image: "evil.example/miner:latest"})
}

// TestDriftCorrected (issue 11, items 1, 2, 4): releases at the default 10m
// interval, so only the watch of what they deployed can make them act
// within the test's wait. A sidecar container is added to one release's
// Deployment and its ConfigMap is deleted: both are found and corrected
// (read back from the cluster), reported as DriftCorrected with the object,
// the path and the writer. The twin release, whose objects nobody touched,
// reports NoDrift and is never corrected.
func TestDriftCorrected(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted")
	f.release("bystander", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	f.waitReady("bystander", 1, chartproofv1.ReasonInstallSucceeded)
	f.waitCondition("bystander", chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonNoDrift)

	f.editDeployment("app", sidecar)
	waitFor(t, waitTimeout, "the sidecar removed", func() (bool, string) {
		c := f.deployment("app").Spec.Template.Spec.Containers
		return len(c) == 1 && c[0].Name == "hello", fmt.Sprintf("containers %v", c)
	})
	f.waitEvent("app", chartproofv1.ReasonDriftCorrected)
	cond := f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonDriftCorrected)
	want := "Deployment " + f.ns + "/app-hello /spec/template/spec/containers/1 added by kubectl-edit"
	if c := apimeta.FindStatusCondition(cond.Status.Conditions, chartproofv1.ConditionDrifted); !strings.Contains(c.Message, want) {
		t.Errorf("Drifted message = %q; want it to name %q", c.Message, want)
	}

	if err := k8s.Delete(context.Background(), f.configMap("app")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "the ConfigMap recreated", func() (bool, string) {
		cm := f.configMap("app")
		return cm != nil && cm.Data["message"] == "hello", fmt.Sprintf("ConfigMap %v", cm)
	})

	if c := f.driftCondition("bystander"); c == nil || c.Reason != chartproofv1.ReasonNoDrift {
		t.Errorf("bystander Drifted = %+v; want NoDrift", c)
	}
	for _, m := range f.messages("bystander") {
		if strings.Contains(m, "drift corrected") {
			t.Errorf("bystander was corrected: %s", m)
		}
	}
}

// TestDriftWarn: in Warn mode the same change is reported (Drifted=True,
// DriftDetected, naming the field and writer) and left in the cluster.
func TestDriftWarn(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.DriftDetection = &chartproofv1.DriftDetection{Mode: chartproofv1.DriftWarn}
	})
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonNoDrift)

	f.editDeployment("app", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "evil.example/hello:1" })
	vhr := f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionTrue, chartproofv1.ReasonDriftDetected)
	msg := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionDrifted).Message
	if want := "/spec/template/spec/containers/0/image changed by kubectl-edit"; !strings.Contains(msg, want) {
		t.Errorf("Drifted message = %q; want it to name %q", msg, want)
	}
	if strings.Contains(msg, "evil.example") {
		t.Errorf("Drifted message = %q; it must name fields, never values", msg)
	}
	if got := f.deployment("app").Spec.Template.Spec.Containers[0].Image; got != "evil.example/hello:1" {
		t.Errorf("image = %q; Warn must leave it", got)
	}
}

// TestDriftIgnoredField: a field an ignore rule names is another
// controller's; changing it is not drift, while the twin change of a field
// no rule names, made afterwards to the same object, is.
func TestDriftIgnoredField(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	group := "apps"
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.DriftDetection = &chartproofv1.DriftDetection{Ignore: []chartproofv1.DriftIgnoreRule{{
			Paths:  []string{"/spec/replicas"},
			Target: &chartproofv1.DriftTarget{Group: &group, Kind: "Deployment"},
		}}}
	})
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonNoDrift)

	replicas := int32(7)
	f.editDeployment("app", func(d *appsv1.Deployment) { d.Spec.Replicas = &replicas })
	f.editDeployment("app", sidecar)
	waitFor(t, waitTimeout, "the sidecar removed", func() (bool, string) {
		return len(f.deployment("app").Spec.Template.Spec.Containers) == 1, "two containers"
	})
	if got := *f.deployment("app").Spec.Replicas; got != 7 {
		t.Errorf("replicas = %d; the ignored field must be left at 7", got)
	}
	for _, m := range f.messages("app") {
		if strings.Contains(m, "/spec/replicas") {
			t.Errorf("the ignored field was reported: %s", m)
		}
	}
}

// TestDriftConflict (issue 11, item 4): a second writer undoes every
// correction of the ConfigMap's message. chartproof corrects twice, then
// reports DriftConflict naming the writer and leaves the field to it: the
// writer stops having to write, and later reconciles (a 1s interval) do not
// correct again. The test counts the other writer's writes.
func TestDriftConflict(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: time.Second}
	})
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	ctx, cancel := context.WithCancel(context.Background())
	var writes atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The rogue controller: whenever the message is not its own, it
		// writes it back, as fast as it can see the change.
		for ctx.Err() == nil {
			var cm corev1.ConfigMap
			err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "app-hello"}, &cm)
			if err == nil && cm.Data["message"] != "rogue" {
				cm.Data["message"] = "rogue"
				if err := k8s.Update(ctx, &cm, client.FieldOwner("rogue-controller")); err == nil {
					writes.Add(1)
				} else if !apierrors.IsConflict(err) && ctx.Err() == nil {
					t.Errorf("rogue write: %v", err)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	vhr := f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionTrue, chartproofv1.ReasonDriftConflict)
	msg := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionDrifted).Message
	if want := "ConfigMap " + f.ns + "/app-hello /data/message undone again by rogue-controller"; !strings.Contains(msg, want) {
		t.Errorf("DriftConflict message = %q; want it to name %q", msg, want)
	}
	atConflict := writes.Load()
	// Two corrections undone, plus the first write: three.
	if atConflict != 3 {
		t.Errorf("rogue writes when the conflict was reported = %d; want 3 (two corrections undone)", atConflict)
	}
	// Reconciles go on (the interval is 1s); none corrects the field again.
	since := vhr.Status.LastVerifiedTime.Time
	waitFor(t, waitTimeout, "two more reconciles", func() (bool, string) {
		last := f.get("app").Status.LastVerifiedTime
		return last.Time.Sub(since) >= 2*time.Second, fmt.Sprintf("last verified %v", last)
	})
	if got := writes.Load(); got != atConflict {
		t.Errorf("rogue writes = %d after the conflict, was %d: chartproof kept correcting", got, atConflict)
	}
	if cm := f.configMap("app"); cm == nil || cm.Data["message"] != "rogue" {
		t.Errorf("ConfigMap = %v; the field in conflict is left to the other writer", cm)
	}
}

// TestDriftActsAsServiceAccount: the check and the correction run as the
// release's ServiceAccount, never with the manager's rights. Once the
// account may only read its namespace, a rewritten ConfigMap can be neither
// compared (the dry run is a patch) nor corrected: DriftCheckFailed, and
// the ConfigMap keeps the other writer's value. The twin, the same change
// once the account's rights are back, is corrected.
func TestDriftActsAsServiceAccount(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonNoDrift)

	ctx := context.Background()
	var role rbacv1.Role
	key := types.NamespacedName{Namespace: f.ns, Name: "releases-" + f.ns + "-" + testServiceAccount}
	if err := k8s.Get(ctx, key, &role); err != nil {
		t.Fatal(err)
	}
	full := role.DeepCopy()
	role.Rules = []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}}}
	if err := k8s.Update(ctx, &role); err != nil {
		t.Fatal(err)
	}

	cm := f.configMap("app")
	cm.Data["message"] = "rewritten"
	if err := k8s.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	vhr := f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionUnknown, chartproofv1.ReasonDriftCheckFailed)
	if msg := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionDrifted).Message; !strings.Contains(msg, "the API server answered Forbidden (HTTP 403)") {
		t.Errorf("DriftCheckFailed message = %q; want the API server's refusal of the ServiceAccount", msg)
	}
	if got := f.configMap("app").Data["message"]; got != "rewritten" {
		t.Errorf("ConfigMap message = %q; nothing may correct it without the account's rights", got)
	}

	role.Rules = full.Rules
	if err := k8s.Update(ctx, &role); err != nil {
		t.Fatal(err)
	}
	// A failed check is retried soon; the twin change wakes it at once.
	cm = f.configMap("app")
	cm.Data["message"] = "rewritten again"
	if err := k8s.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "the ConfigMap corrected", func() (bool, string) {
		m := f.configMap("app").Data["message"]
		return m == "hello", "message " + m
	})
}

// TestDriftEachChange (issue 11, "How we will know"): each change of
// drifttest.Changes, made to a release of a chart holding one object of
// each kind, is detected and corrected in Correct (the object read back as
// the chart renders it) and reported and left in Warn (read back still
// changed once Drifted says so).
func TestDriftEachChange(t *testing.T) {
	extra := map[string]string{}
	for name, content := range drifttest.Templates {
		extra[strings.TrimPrefix(name, "templates/")] = content
	}
	for _, mode := range []string{chartproofv1.DriftCorrect, chartproofv1.DriftWarn} {
		for _, ch := range drifttest.Changes {
			t.Run(mode+"/"+ch.Name, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				f.pushChart("1.0.0", extra)
				f.policy("trusted", f.key, chartproofv1.ModeEnforce)
				f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
					v.Spec.DriftDetection = &chartproofv1.DriftDetection{Mode: mode}
				})
				f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
				f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonNoDrift)
				ctx := context.Background()
				if err := ch.Apply(ctx, k8s, f.ns, "app"); err != nil {
					t.Fatal(err)
				}
				if mode == chartproofv1.DriftCorrect {
					waitFor(t, waitTimeout, "the object corrected", func() (bool, string) {
						ok, err := ch.Restored(ctx, k8s, f.ns, "app")
						return ok, fmt.Sprintf("restored %v, %v", ok, err)
					})
					f.waitEvent("app", chartproofv1.ReasonDriftCorrected)
					return
				}
				f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionTrue, chartproofv1.ReasonDriftDetected)
				if ok, err := ch.Restored(ctx, k8s, f.ns, "app"); ok || (err != nil && !apierrors.IsNotFound(err)) {
					t.Errorf("after Drifted: restored %v, %v; Warn must leave the change", ok, err)
				}
			})
		}
	}
}

// TestDriftQuietForIntervals is the false-positive corpus on the real
// manager: what other writers legitimately do to a release's objects (an
// HPA scaling the ignored replicas through /scale, the deployment
// controller's annotation and label, an operator merge-patching a ConfigMap
// with the data it holds) stays quiet over several reconciles (a 1s
// interval): Drifted stays NoDrift, nothing is corrected, replicas stays
// the HPA's. Its twins, changes that are drift, are TestDriftEachChange's.
func TestDriftQuietForIntervals(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	group := "apps"
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: time.Second}
		v.Spec.DriftDetection = &chartproofv1.DriftDetection{Ignore: []chartproofv1.DriftIgnoreRule{{
			Paths: []string{"/spec/replicas"}, Target: &chartproofv1.DriftTarget{Group: &group, Kind: "Deployment"},
		}}}
	})
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	f.waitCondition("app", chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonNoDrift)
	ctx := context.Background()

	d := f.deployment("app")
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	if err := k8s.SubResource("scale").Update(ctx, d, client.WithSubResourceBody(scale), client.FieldOwner("horizontal-pod-autoscaler")); err != nil {
		t.Fatal(err)
	}
	patch := `{"metadata":{"annotations":{"deployment.kubernetes.io/revision":"2"},"labels":{"pod-template-hash":"abc"}}}`
	if err := k8s.Patch(ctx, f.deployment("app"), client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner("kube-controller-manager")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Patch(ctx, f.configMap("app"), client.RawPatch(types.MergePatchType, []byte(`{"data":{"message":"hello"}}`)), client.FieldOwner("operator")); err != nil {
		t.Fatal(err)
	}

	since := f.get("app").Status.LastVerifiedTime.Time
	waitFor(t, waitTimeout, "three more seconds of reconciles", func() (bool, string) {
		last := f.get("app").Status.LastVerifiedTime
		return last.Time.Sub(since) >= 3*time.Second, fmt.Sprintf("last verified %v", last)
	})
	if c := f.driftCondition("app"); c == nil || c.Reason != chartproofv1.ReasonNoDrift {
		t.Errorf("Drifted = %+v; want NoDrift", c)
	}
	for _, m := range f.messages("app") {
		if strings.Contains(m, "drift corrected") || strings.Contains(m, "drift left in place") {
			t.Errorf("a legitimate change was taken for drift: %s", m)
		}
	}
	if got := *f.deployment("app").Spec.Replicas; got != 5 {
		t.Errorf("replicas = %d; the HPA's 5 must stay", got)
	}
}

// TestUnlabelledReleaseRelabelled (issue 11, item 1): a release chartproof
// installed before it labelled what it renders (its record's manifest and
// its objects without the owner label, so the watches cannot see them) is
// upgraded once, with the same chart and values, and its objects carry the
// label from then on. Its twin, installed with the label, stays at revision
// 1 when it runs again.
func TestUnlabelledReleaseRelabelled(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted")
	f.release("bystander", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	f.waitReady("bystander", 1, chartproofv1.ReasonInstallSucceeded)
	ctx := context.Background()

	// As an older chartproof left it: no label in the record (its digest
	// in status to match) nor on the ConfigMap.
	f.suspend("app")
	cfg := helmConfig(t, f.ns)
	rel, err := cfg.Releases.Get("app", 1)
	if err != nil {
		t.Fatal(err)
	}
	rel.Manifest = regexp.MustCompile(`(?m)^\s*`+regexp.QuoteMeta(chartproofv1.LabelOwner)+`: .*\n`).ReplaceAllString(rel.Manifest, "")
	if strings.Contains(rel.Manifest, chartproofv1.LabelOwner) {
		t.Fatalf("the owner label is still in the manifest:\n%s", rel.Manifest)
	}
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
	stored, err := cfg.Releases.Get("app", 1)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := release.RecordDigest(stored)
	if err != nil {
		t.Fatal(err)
	}
	vhr := f.get("app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Status.Installed.RecordDigest = digest
	if err := k8s.Status().Patch(ctx, vhr, patch); err != nil {
		t.Fatal(err)
	}
	cm := f.configMap("app")
	patch = client.MergeFrom(cm.DeepCopy())
	delete(cm.Labels, chartproofv1.LabelOwner)
	if err := k8s.Patch(ctx, cm, patch); err != nil {
		t.Fatal(err)
	}

	f.touch("app")
	f.touch("bystander")
	vhr = f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
	if got := f.configMap("app").Labels[chartproofv1.LabelOwner]; got != string(vhr.UID) {
		t.Errorf("ConfigMap owner label %q after the upgrade; want %q", got, vhr.UID)
	}
	// Once: run it again, and it stays at revision 2.
	if v := f.rerun("app"); v.Status.Installed.Revision != 2 {
		t.Errorf("app at revision %d after running again; want 2", v.Status.Installed.Revision)
	}
	if got := helmHistory(t, f.ns, "app"); len(got) != 2 {
		t.Errorf("history %v after running again; want 2 revisions, the relabel done once", got)
	}
	if by := f.waitObserved("bystander"); by.Status.Installed.Revision != 1 {
		t.Errorf("bystander at revision %d; want 1, its objects were labelled", by.Status.Installed.Revision)
	}
}
