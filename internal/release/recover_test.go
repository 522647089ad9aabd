package release

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// setStatus rewrites the status of one stored revision, as an interrupted
// Helm action leaves it: the record says pending, the objects are whatever
// the action had applied.
func setStatus(t *testing.T, namespace, name string, version int, status release.Status) {
	t.Helper()
	cfg := helmCLI(t, namespace)
	rel, err := cfg.Releases.Get(name, version)
	if err != nil {
		t.Fatalf("reading revision %d: %v", version, err)
	}
	rel.Info.Status = status
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatalf("storing revision %d as %s: %v", version, status, err)
	}
}

// greeting reads the ConfigMap testChart renders and returns its greeting
// and stamp digest.
func greeting(t *testing.T, c client.Client, namespace string) (string, string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "demo-config"}, cm); err != nil {
		t.Fatalf("reading ConfigMap: %v", err)
	}
	return cm.Data["greeting"], stampOf(cm)[chartproofv1.AnnotationChartDigest]
}

// history is `helm history` of demo in namespace, as summaries.
func history(t *testing.T, namespace string) []summary {
	t.Helper()
	rels, err := action.NewHistory(helmCLI(t, namespace)).Run("demo")
	if err != nil {
		t.Fatalf("helm history: %v", err)
	}
	return summarize(rels...)
}

// TestRecoverMarksFailedOnly: Recover marks the unfinished record failed
// and applies nothing (the objects keep what the interrupted action left);
// the caller's next Apply, with what it vouches for, is then an upgrade from
// the deployed record it installed, or a fresh install (revision 1) that
// takes the objects over when nothing it installed is deployed.
func TestRecoverMarksFailedOnly(t *testing.T) {
	tests := []struct {
		name string
		// interrupt leaves release demo unfinished, with the objects of
		// greeting "bonjour" (digestV2) applied, except for the
		// uninstalling case ("hi", digestV1).
		interrupt       func(t *testing.T, m *Manager, ns string)
		wantInterrupted int
		wantStatus      release.Status
		// next is what the caller passes to the Apply that follows: the
		// record it installed (status.installed), or Replace when it
		// installed none.
		trusted *Trust
		replace bool
		// wantHistory is the history after Recover, wantVersion the
		// revision the Apply writes.
		wantHistory []release.Status
		wantVersion int
	}{
		{
			// helm upgrade created revision 2 and applied its objects,
			// then died before recording the outcome.
			name: "pending-upgrade",
			interrupt: func(t *testing.T, m *Manager, ns string) {
				apply(t, m, ns, "bonjour", digestV2)
				setStatus(t, ns, "demo", 1, release.StatusDeployed)
				setStatus(t, ns, "demo", 2, release.StatusPendingUpgrade)
			},
			wantInterrupted: 2, wantStatus: release.StatusPendingUpgrade, trusted: &Trust{Revision: 1},
			wantHistory: []release.Status{release.StatusDeployed, release.StatusFailed}, wantVersion: 3,
		},
		{
			// An upgrade to digestV2 deployed revision 2; helm rollback
			// to revision 1 then created revision 3, applied revision 1's
			// objects and died: revision 2 is still the deployed one.
			name: "pending-rollback",
			interrupt: func(t *testing.T, m *Manager, ns string) {
				apply(t, m, ns, "bonjour", digestV2)
				rollback := action.NewRollback(helmCLI(t, ns))
				rollback.Version = 1
				if err := rollback.Run("demo"); err != nil {
					t.Fatalf("helm rollback: %v", err)
				}
				setStatus(t, ns, "demo", 2, release.StatusDeployed)
				setStatus(t, ns, "demo", 3, release.StatusPendingRollback)
			},
			wantInterrupted: 3, wantStatus: release.StatusPendingRollback, trusted: &Trust{Revision: 2},
			wantHistory: []release.Status{release.StatusSuperseded, release.StatusDeployed, release.StatusFailed}, wantVersion: 4,
		},
		{
			name: "pending-install",
			interrupt: func(t *testing.T, m *Manager, ns string) {
				if err := m.Uninstall(testContext(t), Location{Namespace: ns}, "demo", testOwner, nil); err != nil {
					t.Fatal(err)
				}
				apply(t, m, ns, "bonjour", digestV2)
				setStatus(t, ns, "demo", 1, release.StatusPendingInstall)
			},
			wantInterrupted: 1, wantStatus: release.StatusPendingInstall, replace: true,
			wantHistory: []release.Status{release.StatusFailed}, wantVersion: 1,
		},
		{
			// An upgrade of a release whose install failed: Helm upgrades
			// from the failed revision, and nothing was ever deployed.
			name: "pending-upgrade without a deployed revision",
			interrupt: func(t *testing.T, m *Manager, ns string) {
				apply(t, m, ns, "bonjour", digestV2)
				setStatus(t, ns, "demo", 1, release.StatusFailed)
				setStatus(t, ns, "demo", 2, release.StatusPendingUpgrade)
			},
			wantInterrupted: 2, wantStatus: release.StatusPendingUpgrade, replace: true,
			wantHistory: []release.Status{release.StatusFailed, release.StatusFailed}, wantVersion: 1,
		},
		{
			// helm uninstall marks the deployed record uninstalling
			// before it deletes anything.
			name: "uninstalling",
			interrupt: func(t *testing.T, m *Manager, ns string) {
				setStatus(t, ns, "demo", 1, release.StatusUninstalling)
			},
			wantInterrupted: 1, wantStatus: release.StatusUninstalling, trusted: &Trust{Revision: 1},
			wantHistory: []release.Status{release.StatusFailed}, wantVersion: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			c := testClient(t)
			ns := testNamespace(t)
			m := NewManager(testCluster(t), Options{})
			apply(t, m, ns, "hi", digestV1)
			tc.interrupt(t, m, ns)
			before := objectVersions(t, c, ns)

			rel, err := m.Get(ctx, ns, "demo")
			if err != nil || !Pending(rel) {
				t.Fatalf("Get() = %v, %v; want a pending release before Recover", summarize(rel), err)
			}
			rec, err := m.Recover(ctx, ns, "demo", testOwner)
			if err != nil {
				t.Fatalf("Recover() error = %v", err)
			}
			if diff := cmp.Diff(&Recovery{Interrupted: tc.wantInterrupted, Status: tc.wantStatus}, rec); diff != "" {
				t.Errorf("Recover() mismatch (-want +got):\n%s", diff)
			}
			var wantHistory []summary
			for i, s := range tc.wantHistory {
				wantHistory = append(wantHistory, summary{Namespace: ns, Name: "demo", Version: i + 1, Status: s})
			}
			if diff := cmp.Diff(wantHistory, history(t, ns)); diff != "" {
				t.Errorf("helm history after Recover (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, objectVersions(t, c, ns)); diff != "" {
				t.Errorf("objects changed by Recover (resourceVersions, -before +after):\n%s", diff)
			}

			// The release is unlocked: Apply puts the verified chart over it.
			got, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "salut"},
				Stamp: stampFor(digestV1), Trusted: tc.trusted, Replace: tc.replace})
			if err != nil {
				t.Fatalf("Apply() after Recover error = %v", err)
			}
			want := &release.Release{Namespace: ns, Name: "demo", Version: tc.wantVersion, Info: &release.Info{Status: release.StatusDeployed}}
			if diff := cmp.Diff(summarize(want), summarize(got)); diff != "" {
				t.Errorf("Apply() after Recover mismatch (-want +got):\n%s", diff)
			}
			if got, digest := greeting(t, c, ns); got != "salut" || digest != digestV1 {
				t.Errorf("ConfigMap greeting %q stamped %s after Apply; want %q stamped %s", got, digest, "salut", digestV1)
			}
			checkStamped(t, c, ns, "demo", stampFor(digestV1))
			after := objectVersions(t, c, ns)
			for key, v := range before {
				if after[key].UID != v.UID {
					t.Errorf("%s was re-created; want it taken over", key)
				}
			}
		})
	}
}

// TestReplaceRefusesPendingRelease: Replace does not take a release whose
// latest record is pending: another operation may be under way (Helm's
// records are the only lock), so Apply returns ErrPending and changes
// nothing; after Recover, the same Replace installs afresh.
func TestReplaceRefusesPendingRelease(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})
	apply(t, m, ns, "hi", digestV1)
	setStatus(t, ns, "demo", 1, release.StatusPendingInstall)
	before := objectVersions(t, c, ns)

	req := Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "salut"}, Stamp: stampFor(digestV2), Replace: true}
	if _, err := m.Apply(ctx, req); !errors.Is(err, ErrPending) {
		t.Fatalf("Apply(Replace) of a pending release error = %v; want ErrPending", err)
	}
	if diff := cmp.Diff([]summary{{Namespace: ns, Name: "demo", Version: 1, Status: release.StatusPendingInstall}}, history(t, ns)); diff != "" {
		t.Errorf("helm history after a refused Replace (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, objectVersions(t, c, ns)); diff != "" {
		t.Errorf("objects changed by a refused Replace (-before +after):\n%s", diff)
	}

	if _, err := m.Recover(ctx, ns, "demo", testOwner); err != nil {
		t.Fatal(err)
	}
	req.Chart = testChart()
	if _, err := m.Apply(ctx, req); err != nil {
		t.Fatalf("Apply(Replace) after Recover error = %v", err)
	}
	if got, _ := greeting(t, c, ns); got != "salut" {
		t.Errorf("ConfigMap greeting = %q; want %q", got, "salut")
	}
}

// objectVersion identifies one state of an object.
type objectVersion struct {
	UID             types.UID
	ResourceVersion string
}

// objectVersions are the UIDs and resourceVersions of the objects testChart
// renders, by kind and name.
func objectVersions(t *testing.T, c client.Client, ns string) map[string]objectVersion {
	t.Helper()
	out := map[string]objectVersion{}
	for _, obj := range renderedObjects(ns, "demo") {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatalf("reading %T %s: %v", obj, obj.GetName(), err)
		}
		out[fmt.Sprintf("%T %s", obj, obj.GetName())] = objectVersion{obj.GetUID(), obj.GetResourceVersion()}
	}
	return out
}

// TestRecoverRefusesSettledRelease: a release that is not pending is left
// alone, and so is a missing one.
func TestRecoverRefusesSettledRelease(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	if rec, err := m.Recover(ctx, ns, "demo", testOwner); err == nil {
		t.Errorf("Recover() of a missing release = %+v, nil; want an error", rec)
	}

	apply(t, m, ns, "hi", digestV1)
	before := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo-config"}, before); err != nil {
		t.Fatal(err)
	}
	if rec, err := m.Recover(ctx, ns, "demo", testOwner); err == nil {
		t.Errorf("Recover() of a deployed release = %+v, nil; want an error", rec)
	}
	want := []summary{{Namespace: ns, Name: "demo", Version: 1, Status: release.StatusDeployed}}
	if diff := cmp.Diff(want, history(t, ns)); diff != "" {
		t.Errorf("helm history after a refused Recover (-want +got):\n%s", diff)
	}
	after := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo-config"}, after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("ConfigMap resourceVersion %s -> %s; want it untouched by a refused Recover", before.ResourceVersion, after.ResourceVersion)
	}
}

// apply installs or upgrades release demo in ns with greeting, stamped
// with digest.
func apply(t *testing.T, m *Manager, ns, greeting, digest string) {
	t.Helper()
	if _, err := m.Apply(testContext(t), Request{Namespace: ns, Name: "demo", Chart: testChart(),
		Values: map[string]any{"greeting": greeting}, Stamp: stampFor(digest)}); err != nil {
		t.Fatalf("Apply(%s, %s) error = %v", greeting, digest, err)
	}
}
