package release

import (
	"errors"
	"fmt"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// forgeRecord rewrites revision version of release demo as whoever may
// write Secrets in the namespace could: its manifest also lists ConfigMap
// "victim", so that an upgrade or uninstall diffing against it deletes it
// (THREATS TEN-05).
func forgeRecord(t *testing.T, ns string, version int) {
	t.Helper()
	cfg := helmCLI(t, ns)
	rel, err := cfg.Releases.Get("demo", version)
	if err != nil {
		t.Fatal(err)
	}
	rel.Manifest += "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\n  namespace: " + ns + "\n"
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
}

// newVictim creates ConfigMap victim, which no release made.
func newVictim(t *testing.T, c client.Client, ns string) {
	t.Helper()
	if err := c.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim"}}); err != nil {
		t.Fatal(err)
	}
}

func victimExists(t *testing.T, c client.Client, ns string) bool {
	t.Helper()
	err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "victim"}, &corev1.ConfigMap{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestRecordDigestStable: the digest of a stored record is that of the
// record Apply returned; it does not change when Helm supersedes it, and
// does when its content is rewritten.
func TestRecordDigestStable(t *testing.T) {
	ctx := testContext(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})
	rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(),
		Values: map[string]any{"greeting": "hi", "replicas": 2}, Stamp: stampFor(digestV1)})
	if err != nil {
		t.Fatal(err)
	}
	d1, err := m.RecordDigest(ctx, ns, "demo", 1)
	if err != nil {
		t.Fatal(err)
	}
	// What Apply returned, hashed as Helm stores it, is the record read
	// back (values with numbers included: JSON gives them back as float64).
	if stored, err := StoredDigest(rel); err != nil || stored != d1 {
		t.Errorf("StoredDigest(what Apply returned) = %s, %v; want the record's %s", stored, err, d1)
	}
	apply(t, m, ns, "bonjour", digestV2) // revision 1 is now superseded
	again, err := m.RecordDigest(ctx, ns, "demo", 1)
	if err != nil {
		t.Fatal(err)
	}
	if again != d1 {
		t.Errorf("digest of revision 1 after it was superseded = %s; want %s", again, d1)
	}
	forgeRecord(t, ns, 1)
	forged, err := m.RecordDigest(ctx, ns, "demo", 1)
	if err != nil {
		t.Fatal(err)
	}
	if forged == d1 {
		t.Error("digest of a rewritten record is unchanged")
	}
}

// TestTamperedRecordRefused: with the record it installed vouched for
// (Trust), an upgrade or uninstall is refused, and nothing is deleted, over
// each forgery a Secret writer can make: the deployed record rewritten to
// list another object, or a record stored beside it under another name (its
// data saying deployed), at the revision above or at the trusted one, which
// Helm follows whatever the name. Twins: the same action over the untouched
// records goes through; and without the check the forgeries that Helm's
// upgrade follows for certain really delete the victim, so the refusal is
// what saves it.
func TestTamperedRecordRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		forge func(t *testing.T, ns string) // nil: the twin, nothing forged
		// records is the history's length after a refusal, when checked.
		records int
		// control: without the check, an upgrade over it deletes the victim.
		control bool
	}{
		{"the deployed record rewritten", func(t *testing.T, ns string) { forgeRecord(t, ns, 1) }, 1, true},
		{"a record beside it, above it", func(t *testing.T, ns string) { forgeBeside(t, ns, 2) }, 0, true},
		{"a record beside it, at its revision", func(t *testing.T, ns string) { forgeBeside(t, ns, 1) }, 0, false},
		{"twin: untouched records", nil, 0, false},
	} {
		for _, action := range []string{"upgrade", "uninstall"} {
			t.Run(action+", "+tc.name, func(t *testing.T) {
				ctx := testContext(t)
				c := testClient(t)
				ns := testNamespace(t)
				m := NewManager(testCluster(t), Options{})
				apply(t, m, ns, "hi", digestV1)
				d, err := m.RecordDigest(ctx, ns, "demo", 1)
				if err != nil {
					t.Fatal(err)
				}
				trusted := &Trust{Revision: 1, Digest: d}
				newVictim(t, c, ns)
				forged := tc.forge != nil
				if forged {
					tc.forge(t, ns)
				}

				switch action {
				case "upgrade":
					_, err = m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV2), Trusted: trusted})
				case "uninstall":
					err = m.Uninstall(ctx, Location{Namespace: ns}, "demo", testOwner, trusted)
				}
				if forged != errors.Is(err, ErrRecordTampered) || (!forged && err != nil) {
					t.Fatalf("%s: error = %v; want ErrRecordTampered: %v", action, err, forged)
				}
				if !victimExists(t, c, ns) {
					t.Error("the victim ConfigMap was deleted")
				}
				if tc.records > 0 {
					if got := len(history(t, ns)); got != tc.records {
						t.Errorf("history has %d revisions after the refusal; want %d", got, tc.records)
					}
				}
			})
		}
		if !tc.control {
			continue
		}
		t.Run("without the check, an upgrade over "+tc.name+" deletes the victim", func(t *testing.T) {
			ctx := testContext(t)
			c := testClient(t)
			ns := testNamespace(t)
			m := NewManager(testCluster(t), Options{})
			apply(t, m, ns, "hi", digestV1)
			newVictim(t, c, ns)
			tc.forge(t, ns)
			if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV2)}); err != nil {
				t.Fatal(err)
			}
			if victimExists(t, c, ns) {
				t.Error("the victim survived an upgrade over the forged record: the attack this check stops did not happen")
			}
		})
	}
}

// TestRecoveredUpgradeRefusesTamperedRevision: after Recover unlocks a
// pending release whose deployed revision is the trusted one but whose
// record was rewritten, the upgrade from it is refused (ErrRecordTampered)
// and nothing is deleted. The twin, over the untouched record, upgrades.
func TestRecoveredUpgradeRefusesTamperedRevision(t *testing.T) {
	for _, forged := range []bool{true, false} {
		t.Run(fmt.Sprintf("forged %v", forged), func(t *testing.T) {
			ctx := testContext(t)
			c := testClient(t)
			ns := testNamespace(t)
			m := NewManager(testCluster(t), Options{})
			apply(t, m, ns, "hi", digestV1)
			d, err := m.RecordDigest(ctx, ns, "demo", 1)
			if err != nil {
				t.Fatal(err)
			}
			apply(t, m, ns, "bonjour", digestV2)
			setStatus(t, ns, "demo", 1, release.StatusDeployed)
			setStatus(t, ns, "demo", 2, release.StatusPendingUpgrade)
			newVictim(t, c, ns)
			if forged {
				forgeRecord(t, ns, 1)
			}

			if _, err := m.Recover(ctx, ns, "demo", testOwner); err != nil {
				t.Fatal(err)
			}
			_, err = m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "salut"},
				Stamp: stampFor(digestV1), Trusted: &Trust{Revision: 1, Digest: d}})
			switch {
			case forged && !errors.Is(err, ErrRecordTampered):
				t.Errorf("Apply() over the rewritten record error = %v; want ErrRecordTampered", err)
			case !forged && err != nil:
				t.Errorf("Apply() over the untouched record error = %v", err)
			}
			if !victimExists(t, c, ns) {
				t.Error("the victim ConfigMap was deleted")
			}
			want := "bonjour" // nothing applied over the rewritten record
			if !forged {
				want = "salut"
			}
			if got, _ := greeting(t, c, ns); got != want {
				t.Errorf("ConfigMap greeting = %q; want %q", got, want)
			}
		})
	}
}

// TestReplaceRepairsTamperedRelease: Replace drops the rewritten records and
// installs the chart afresh: the release is the chart's own rendering again
// (revision 1, this stamp), and the object only the forged record listed is
// left as it is.
func TestReplaceRepairsTamperedRelease(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})
	apply(t, m, ns, "hi", digestV1)
	apply(t, m, ns, "bonjour", digestV1)
	newVictim(t, c, ns)
	forgeRecord(t, ns, 2)

	rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "repaired"}, Stamp: stampFor(digestV2), Replace: true})
	if err != nil {
		t.Fatalf("Apply(Replace) error = %v", err)
	}
	if rel.Version != 1 || Owner(rel) != testOwner {
		t.Errorf("after the repair: revision %d, owner %q; want revision 1, owner %q", rel.Version, Owner(rel), testOwner)
	}
	if got := len(history(t, ns)); got != 1 {
		t.Errorf("history has %d revisions after the repair; want 1", got)
	}
	if g, d := greeting(t, c, ns); g != "repaired" || d != digestV2 {
		t.Errorf("ConfigMap after the repair: greeting %q stamped %s; want %q stamped %s", g, d, "repaired", digestV2)
	}
	if !victimExists(t, c, ns) {
		t.Error("the victim ConfigMap was deleted by the repair")
	}
	// Another owner's release is not replaced.
	stamp := stampFor(digestV2)
	stamp.Owner = "another-uid"
	if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stamp, Replace: true}); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Apply(Replace) for another owner error = %v; want ErrNotOwned", err)
	}
}

// forgeBeside writes, beside the records of release demo, a Secret under
// another name holding revision version: its data says deployed and lists
// ConfigMap "victim", its labels say failed and carry the release's owner,
// as whoever may write Secrets in the namespace could. Helm finds records
// by their labels and reads revision and status from their data.
func forgeBeside(t *testing.T, ns string, version int) {
	t.Helper()
	cfg := helmCLI(t, ns)
	rel, err := cfg.Releases.Last("demo")
	if err != nil {
		t.Fatal(err)
	}
	rel.Version = version
	rel.Info.Status = release.StatusDeployed
	rel.Manifest += "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\n  namespace: " + ns + "\n"
	if err := cfg.Releases.Driver.Create("forged-record", rel); err != nil {
		t.Fatal(err)
	}
	c := testClient(t)
	var s corev1.Secret
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "forged-record"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Labels["status"] = string(release.StatusFailed)
	s.Labels[chartproofv1.LabelOwner] = testOwner
	if err := c.Update(t.Context(), &s); err != nil {
		t.Fatal(err)
	}
}

// failingChart is testChart with a Role in a namespace that does not
// exist: Helm writes its record, creates the ConfigMap and the rest, and
// fails on the Role, leaving the record failed.
func failingChart() *chart.Chart {
	ch := testChart()
	ch.Templates = append(ch.Templates, &chart.File{Name: "templates/role.yaml", Data: []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ .Release.Name }}
  namespace: no-such-namespace
rules: []
`)})
	return ch
}

// TestUninstallFollowsOnlyWhatIsVouchedFor: after a failed install, Apply
// returns the record Helm stored; an uninstall that follows that record
// deletes what the install created, and one over it rewritten is refused.
// With nothing vouched for, no record decides a deletion: a forged one
// that Helm would follow (the control shows it deletes the victim) deletes
// nothing, and the records are dropped.
func TestUninstallFollowsOnlyWhatIsVouchedFor(t *testing.T) {
	failedInstall := func(t *testing.T, m *Manager, ns string) *Trust {
		t.Helper()
		rel, err := m.Apply(testContext(t), Request{Namespace: ns, Name: "demo", Chart: failingChart(), Stamp: stampFor(digestV1)})
		if err == nil || rel == nil || rel.Info.Status != release.StatusFailed {
			t.Fatalf("Apply() of the failing chart = %v, %v; want the failed record and an error", summarize(rel), err)
		}
		d, err := StoredDigest(rel)
		if err != nil {
			t.Fatal(err)
		}
		return &Trust{Revision: rel.Version, Digest: d}
	}
	created := func(t *testing.T, c client.Client, ns string) bool {
		t.Helper()
		err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "demo-config"}, &corev1.ConfigMap{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, tc := range []struct {
		name    string
		forged  bool
		vouched bool
	}{
		{"the failed install's record, vouched for", false, true},
		{"the failed install's record, rewritten", true, true},
		{"nothing vouched for, a forged record", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			c := testClient(t)
			ns := testNamespace(t)
			m := NewManager(testCluster(t), Options{})
			trusted := failedInstall(t, m, ns)
			if !created(t, c, ns) {
				t.Fatal("the failed install created nothing: the test cannot tell a deletion")
			}
			newVictim(t, c, ns)
			if tc.forged {
				forgeRecord(t, ns, trusted.Revision)
			}
			if !tc.vouched {
				trusted = nil
			}
			err := m.Uninstall(ctx, Location{Namespace: ns}, "demo", testOwner, trusted)
			switch {
			case tc.forged && tc.vouched:
				if !errors.Is(err, ErrRecordTampered) {
					t.Fatalf("Uninstall() = %v; want ErrRecordTampered", err)
				}
			case err != nil:
				t.Fatalf("Uninstall() = %v", err)
			}
			if !victimExists(t, c, ns) {
				t.Error("the victim ConfigMap was deleted")
			}
			if want := !(tc.vouched && !tc.forged); created(t, c, ns) != want {
				t.Errorf("the install's ConfigMap exists: %v; want %v", !want, want)
			}
			if !tc.vouched {
				if rels, err := helmCLI(t, ns).Releases.History("demo"); err == nil && len(rels) > 0 {
					t.Errorf("%d records left; want them dropped", len(rels))
				}
			}
		})
	}

	t.Run("control: Helm following the forged record deletes the victim", func(t *testing.T) {
		c := testClient(t)
		ns := testNamespace(t)
		m := NewManager(testCluster(t), Options{})
		trusted := failedInstall(t, m, ns)
		newVictim(t, c, ns)
		forgeRecord(t, ns, trusted.Revision)
		if _, err := action.NewUninstall(helmCLI(t, ns)).Run("demo"); err != nil {
			t.Fatal(err)
		}
		if victimExists(t, c, ns) {
			t.Error("the victim survived Helm's uninstall over the forged record: the attack this stops did not happen")
		}
	})

	t.Run("a render failure returns no record", func(t *testing.T) {
		ns := testNamespace(t)
		m := NewManager(testCluster(t), Options{})
		ch := testChart()
		ch.Templates = append(ch.Templates, &chart.File{Name: "templates/bad.yaml", Data: []byte(`{{ fail "no" }}`)})
		rel, err := m.Apply(testContext(t), Request{Namespace: ns, Name: "demo", Chart: ch, Stamp: stampFor(digestV1)})
		if err == nil || rel != nil {
			t.Errorf("Apply() of a chart that does not render = %v, %v; want no record and an error", summarize(rel), err)
		}
	})
}
