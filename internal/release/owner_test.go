package release

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// installByHand installs testChart as release demo the way the helm CLI
// does, with no chartproof owner on its records, greeting "by hand".
func installByHand(t *testing.T, ns string) {
	t.Helper()
	install := action.NewInstall(helmCLI(t, ns))
	install.Namespace, install.ReleaseName = ns, "demo"
	if _, err := install.Run(testChart(), map[string]any{"greeting": "by hand"}); err != nil {
		t.Fatalf("helm install: %v", err)
	}
}

// configGreeting reads the greeting of the release's ConfigMap.
func configGreeting(t *testing.T, c client.Client, ns string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "demo-config"}, cm); err != nil {
		t.Fatalf("reading ConfigMap: %v", err)
	}
	return cm.Data["greeting"]
}

// TestApplyRefusesReleaseOfAnotherOwner: a release installed by hand, or by
// another owner, is not upgraded, and nothing of it changes; with Adopt
// (the twin) it is upgraded and labelled with the new owner.
func TestApplyRefusesReleaseOfAnotherOwner(t *testing.T) {
	tests := []struct {
		name    string
		owner   string // the owner the release is adopted from
		install func(t *testing.T, m *Manager, ns string)
	}{
		{"installed by hand", "", func(t *testing.T, _ *Manager, ns string) { installByHand(t, ns) }},
		{"installed for another owner", "another-uid", func(t *testing.T, m *Manager, ns string) {
			stamp := stampFor(digestV1)
			stamp.Owner = "another-uid"
			if _, err := m.Apply(testContext(t), Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "by hand"}, Stamp: stamp}); err != nil {
				t.Fatalf("Apply() for another owner: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			c := testClient(t)
			ns := testNamespace(t)
			m := NewManager(testCluster(t), Options{})
			tc.install(t, m, ns)
			before := history(t, ns)

			_, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "hijacked"}, Stamp: stampFor(digestV2)})
			if !errors.Is(err, ErrNotOwned) {
				t.Fatalf("Apply() error = %v; want an error wrapping ErrNotOwned", err)
			}
			if got := configGreeting(t, c, ns); got != "by hand" {
				t.Errorf("greeting after the refused Apply = %q; want %q", got, "by hand")
			}
			if diff := cmp.Diff(before, history(t, ns)); diff != "" {
				t.Errorf("history changed by the refused Apply (-before +after):\n%s", diff)
			}
			if err := m.Uninstall(ctx, Location{Namespace: ns}, "demo", testOwner, nil); !errors.Is(err, ErrNotOwned) {
				t.Errorf("Uninstall() error = %v; want an error wrapping ErrNotOwned", err)
			}
			if got := configGreeting(t, c, ns); got != "by hand" {
				t.Errorf("greeting after the refused Uninstall = %q; want %q", got, "by hand")
			}

			// Adopting from an owner the release no longer has (another
			// one claimed it since the caller looked) is refused.
			if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV2), Adopt: true, AdoptFrom: "someone-else"}); !errors.Is(err, ErrNotOwned) {
				t.Errorf("Apply(Adopt from another owner) error = %v; want an error wrapping ErrNotOwned", err)
			}

			// The twin: asked to adopt from its owner, the same Apply
			// upgrades it.
			rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "adopted"}, Stamp: stampFor(digestV2), Adopt: true, AdoptFrom: tc.owner})
			if err != nil {
				t.Fatalf("Apply(Adopt) error = %v", err)
			}
			if got := Owner(rel); got != testOwner {
				t.Errorf("Owner() after adoption = %q; want %q", got, testOwner)
			}
			if got := configGreeting(t, c, ns); got != "adopted" {
				t.Errorf("greeting after adoption = %q; want %q", got, "adopted")
			}
			// Owned now: a plain Apply and Uninstall act.
			if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV2)}); err != nil {
				t.Errorf("Apply() after adoption error = %v", err)
			}
			if err := m.Uninstall(ctx, Location{Namespace: ns}, "demo", testOwner, nil); err != nil {
				t.Errorf("Uninstall() after adoption error = %v", err)
			}
		})
	}
}

// TestRecordsCarryOwner: every record Apply writes, install and upgrade,
// after a recovery too, carries the owner label; Recover acts only for the
// owner.
func TestRecordsCarryOwner(t *testing.T) {
	ctx := testContext(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})
	apply(t, m, ns, "hi", digestV1)
	apply(t, m, ns, "bonjour", digestV2)
	setStatus(t, ns, "demo", 1, release.StatusDeployed)
	setStatus(t, ns, "demo", 2, release.StatusPendingUpgrade)
	if _, err := m.Recover(ctx, ns, "demo", "another-uid"); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Recover() for another owner error = %v; want an error wrapping ErrNotOwned", err)
	}
	if _, err := m.Recover(ctx, ns, "demo", testOwner); err != nil {
		t.Fatalf("Recover() error = %v", err)
	}
	apply(t, m, ns, "salut", digestV1)
	rels, err := action.NewHistory(helmCLI(t, ns)).Run("demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 3 {
		t.Fatalf("history has %d revisions; want 3 (install, interrupted upgrade, upgrade)", len(rels))
	}
	for _, r := range rels {
		if got := r.Labels[chartproofv1.LabelOwner]; got != testOwner {
			t.Errorf("revision %d owner label = %q; want %q", r.Version, got, testOwner)
		}
	}
}
