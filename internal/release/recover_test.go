package release

import (
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

// TestRecoverRollsBack: a release an interrupted upgrade or rollback left
// pending is rolled back to its latest deployed revision: the objects are
// that revision's again, and the history says what happened.
func TestRecoverRollsBack(t *testing.T) {
	tests := []struct {
		name string
		// interrupt leaves release demo, installed at digestV1 ("hi"),
		// pending with the objects of digestV2 ("bonjour") applied.
		interrupt func(t *testing.T, m *Manager, ns string)
		// wantTarget is the revision rolled back to, and wantInterrupted
		// the one found pending, with its status.
		wantTarget, wantInterrupted int
		wantStatus                  release.Status
		wantGreeting, wantDigest    string
		wantHistory                 []release.Status
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
			wantTarget: 1, wantInterrupted: 2, wantStatus: release.StatusPendingUpgrade,
			wantGreeting: "hi", wantDigest: digestV1,
			wantHistory: []release.Status{release.StatusSuperseded, release.StatusFailed, release.StatusDeployed},
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
			wantTarget: 2, wantInterrupted: 3, wantStatus: release.StatusPendingRollback,
			wantGreeting: "bonjour", wantDigest: digestV2,
			wantHistory: []release.Status{release.StatusSuperseded, release.StatusSuperseded, release.StatusFailed, release.StatusDeployed},
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

			rel, err := m.Get(ctx, ns, "demo")
			if err != nil || !Pending(rel) {
				t.Fatalf("Get() = %v, %v; want a pending release before Recover", summarize(rel), err)
			}
			rec, err := m.Recover(ctx, ns, "demo", testOwner, Trust{Revision: tc.wantTarget}) // the revision chartproof installed
			if err != nil {
				t.Fatalf("Recover() error = %v", err)
			}
			next := len(tc.wantHistory)
			want := &Recovery{Interrupted: tc.wantInterrupted, Status: tc.wantStatus, RolledBackTo: tc.wantTarget,
				Release: &release.Release{Namespace: ns, Name: "demo", Version: next, Info: &release.Info{Status: release.StatusDeployed}}}
			if diff := cmp.Diff(summarizeRecovery(want), summarizeRecovery(rec)); diff != "" {
				t.Errorf("Recover() mismatch (-want +got):\n%s", diff)
			}

			// The cluster holds the deployed revision's objects again.
			if got, digest := greeting(t, c, ns); got != tc.wantGreeting || digest != tc.wantDigest {
				t.Errorf("ConfigMap greeting %q stamped %s; want %q stamped %s", got, digest, tc.wantGreeting, tc.wantDigest)
			}
			checkStamped(t, c, ns, "demo", stampFor(tc.wantDigest))
			var wantHistory []summary
			for i, s := range tc.wantHistory {
				wantHistory = append(wantHistory, summary{Namespace: ns, Name: "demo", Version: i + 1, Status: s})
			}
			if diff := cmp.Diff(wantHistory, history(t, ns)); diff != "" {
				t.Errorf("helm history mismatch (-want +got):\n%s", diff)
			}

			// The release is no longer pending: Apply upgrades it again.
			if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "salut"}, Stamp: stampFor(digestV2)}); err != nil {
				t.Fatalf("Apply() after Recover error = %v", err)
			}
			if got, _ := greeting(t, c, ns); got != "salut" {
				t.Errorf("ConfigMap greeting after Apply = %q; want %q", got, "salut")
			}
		})
	}
}

// TestRecoverKeepsUntrustedRevision: a pending release whose deployed
// revision is not the one the caller installed (here, a record anyone with
// write access to the namespace's Secrets could have planted) is not rolled
// back to it: the unfinished record is marked failed and nothing is
// applied, and the next Apply puts verified bytes over it. Its twin, with
// that revision trusted, is TestRecoverRollsBack "pending-upgrade".
func TestRecoverKeepsUntrustedRevision(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})
	apply(t, m, ns, "hi", digestV1)
	apply(t, m, ns, "bonjour", digestV2)
	setStatus(t, ns, "demo", 1, release.StatusDeployed)
	setStatus(t, ns, "demo", 2, release.StatusPendingUpgrade)

	rec, err := m.Recover(ctx, ns, "demo", testOwner, Trust{Revision: 7}) // chartproof installed another revision
	if err != nil {
		t.Fatalf("Recover() error = %v", err)
	}
	want := &Recovery{Interrupted: 2, Status: release.StatusPendingUpgrade, MarkedFailed: true}
	if diff := cmp.Diff(summarizeRecovery(want), summarizeRecovery(rec)); diff != "" {
		t.Errorf("Recover() mismatch (-want +got):\n%s", diff)
	}
	if got, digest := greeting(t, c, ns); got != "bonjour" || digest != digestV2 {
		t.Errorf("ConfigMap greeting %q stamped %s after Recover; want %q stamped %s: nothing applied", got, digest, "bonjour", digestV2)
	}
	wantHistory := []summary{
		{Namespace: ns, Name: "demo", Version: 1, Status: release.StatusDeployed},
		{Namespace: ns, Name: "demo", Version: 2, Status: release.StatusFailed},
	}
	if diff := cmp.Diff(wantHistory, history(t, ns)); diff != "" {
		t.Errorf("helm history after Recover (-want +got):\n%s", diff)
	}
	apply(t, m, ns, "salut", digestV1)
	if got, digest := greeting(t, c, ns); got != "salut" || digest != digestV1 {
		t.Errorf("ConfigMap greeting %q stamped %s after Apply; want %q stamped %s", got, digest, "salut", digestV1)
	}
}

// TestRecoverReinstalls: a release left pending with no deployed revision,
// or left uninstalling, has its unfinished record marked failed, and nothing
// in it decides what is deleted: every object stays. The next Apply drops
// the records and installs afresh, taking the objects over (the same
// objects, now stamped with the new digest), as revision 1.
func TestRecoverReinstalls(t *testing.T) {
	tests := []struct {
		name string
		// interrupt leaves release demo with its objects created.
		interrupt       func(t *testing.T, m *Manager, ns string)
		wantInterrupted int
		wantStatus      release.Status
	}{
		{
			name: "pending-install",
			interrupt: func(t *testing.T, m *Manager, ns string) {
				apply(t, m, ns, "hi", digestV1)
				setStatus(t, ns, "demo", 1, release.StatusPendingInstall)
			},
			wantInterrupted: 1, wantStatus: release.StatusPendingInstall,
		},
		{
			// An upgrade of a release whose install failed: Helm upgrades
			// from the failed revision, and nothing was ever deployed.
			name: "pending-upgrade without a deployed revision",
			interrupt: func(t *testing.T, m *Manager, ns string) {
				apply(t, m, ns, "hi", digestV1)
				apply(t, m, ns, "bonjour", digestV2)
				setStatus(t, ns, "demo", 1, release.StatusFailed)
				setStatus(t, ns, "demo", 2, release.StatusPendingUpgrade)
			},
			wantInterrupted: 2, wantStatus: release.StatusPendingUpgrade,
		},
		{
			name: "uninstalling",
			interrupt: func(t *testing.T, m *Manager, ns string) {
				apply(t, m, ns, "hi", digestV1)
				setStatus(t, ns, "demo", 1, release.StatusUninstalling)
			},
			wantInterrupted: 1, wantStatus: release.StatusUninstalling,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			c := testClient(t)
			ns := testNamespace(t)
			m := NewManager(testCluster(t), Options{})
			tc.interrupt(t, m, ns)

			rec, err := m.Recover(ctx, ns, "demo", testOwner, Trust{Revision: 0})
			if err != nil {
				t.Fatalf("Recover() error = %v", err)
			}
			want := &Recovery{Interrupted: tc.wantInterrupted, Status: tc.wantStatus}
			if diff := cmp.Diff(summarizeRecovery(want), summarizeRecovery(rec)); diff != "" {
				t.Errorf("Recover() mismatch (-want +got):\n%s", diff)
			}
			if !rec.Reinstall {
				t.Error("Recover().Reinstall = false; want true")
			}
			if last, err := m.Get(ctx, ns, "demo"); err != nil || last.Version != tc.wantInterrupted || last.Info.Status != release.StatusFailed {
				t.Errorf("latest record after Recover = %v, %v; want revision %d failed", summarize(last), err, tc.wantInterrupted)
			}
			uids := map[string]types.UID{}
			for _, obj := range renderedObjects(ns, "demo") {
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
					t.Errorf("reading %T %s after Recover: %v; want it kept", obj, obj.GetName(), err)
				}
				uids[obj.GetName()+fmt.Sprintf("%T", obj)] = obj.GetUID()
			}

			rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV2)})
			if err != nil {
				t.Fatalf("Apply() after Recover error = %v", err)
			}
			if diff := cmp.Diff(summarize(&release.Release{Namespace: ns, Name: "demo", Version: 1, Info: &release.Info{Status: release.StatusDeployed}}), summarize(rel)); diff != "" {
				t.Errorf("Apply() after Recover mismatch (-want +got):\n%s", diff)
			}
			checkStamped(t, c, ns, "demo", stampFor(digestV2))
			if got := len(history(t, ns)); got != 1 {
				t.Errorf("history after the Apply has %d revisions; want 1", got)
			}
			for _, obj := range renderedObjects(ns, "demo") {
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
					t.Fatal(err)
				}
				if uids[obj.GetName()+fmt.Sprintf("%T", obj)] != obj.GetUID() {
					t.Errorf("%T %s was re-created; want it taken over", obj, obj.GetName())
				}
			}
		})
	}
}

// TestRecoverFailedRollbackLeavesNothingPending: when the rollback fails
// before it applies anything (the interrupted revision's manifest names a
// kind the API server does not serve), Recover returns the error, and both
// the interrupted revision and the rollback's own are failed, not pending:
// Apply upgrades the release again.
func TestRecoverFailedRollbackLeavesNothingPending(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})
	apply(t, m, ns, "hi", digestV1)

	cfg := helmCLI(t, ns)
	deployed, err := cfg.Releases.Get("demo", 1)
	if err != nil {
		t.Fatal(err)
	}
	pending := *deployed
	pending.Version = 2
	pending.Manifest += "\n---\napiVersion: example.com/v1\nkind: Unserved\nmetadata:\n  name: nowhere\n"
	pending.Info = &release.Info{Status: release.StatusPendingUpgrade}
	if err := cfg.Releases.Create(&pending); err != nil {
		t.Fatal(err)
	}

	if rec, err := m.Recover(ctx, ns, "demo", testOwner, Trust{Revision: 1}); err == nil {
		t.Fatalf("Recover() = %+v, nil; want an error", summarizeRecovery(rec))
	}
	want := []summary{
		{Namespace: ns, Name: "demo", Version: 1, Status: release.StatusDeployed},
		{Namespace: ns, Name: "demo", Version: 2, Status: release.StatusFailed},
		{Namespace: ns, Name: "demo", Version: 3, Status: release.StatusFailed},
	}
	if diff := cmp.Diff(want, history(t, ns)); diff != "" {
		t.Errorf("helm history after a failed Recover (-want +got):\n%s", diff)
	}
	apply(t, m, ns, "salut", digestV2)
	if got, digest := greeting(t, c, ns); got != "salut" || digest != digestV2 {
		t.Errorf("ConfigMap greeting %q stamped %s after Apply; want %q stamped %s", got, digest, "salut", digestV2)
	}
}

// TestRecoverRefusesSettledRelease: a release that is not pending is left
// alone, and so is a missing one.
func TestRecoverRefusesSettledRelease(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	if rec, err := m.Recover(ctx, ns, "demo", testOwner, Trust{Revision: 0}); err == nil {
		t.Errorf("Recover() of a missing release = %+v, nil; want an error", rec)
	}

	apply(t, m, ns, "hi", digestV1)
	before := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo-config"}, before); err != nil {
		t.Fatal(err)
	}
	if rec, err := m.Recover(ctx, ns, "demo", testOwner, Trust{Revision: 1}); err == nil {
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

// recoverySummary is what the tests compare of a Recovery.
type recoverySummary struct {
	Interrupted, RolledBackTo int
	Status                    release.Status
	Release                   []summary
	MarkedFailed              bool
}

func summarizeRecovery(r *Recovery) recoverySummary {
	if r == nil {
		return recoverySummary{}
	}
	s := recoverySummary{Interrupted: r.Interrupted, RolledBackTo: r.RolledBackTo, Status: r.Status, MarkedFailed: r.MarkedFailed}
	if r.Release != nil {
		s.Release = summarize(r.Release)
	}
	return s
}
