package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
)

// TestRecordTamperingWakesRelease (issue 11, item 5, first part): two
// releases in one namespace, each at the default 10m interval, so only a
// watch can make them act within the test's wait. The deployed record of
// "target" is edited in place, as anyone who may write Secrets there can:
// "target" reports ReleaseRecordTampered and is repaired at once, without
// any change to the VerifiedHelmRelease. Its twin, "bystander", whose
// record nobody touched, is left alone: no tampering reported, its record
// Secret not replaced.
func TestRecordTamperingWakesRelease(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("target", "1.0.0", "trusted")
	f.release("bystander", "1.0.0", "trusted")
	f.waitReady("target", 1, chartproofv1.ReasonInstallSucceeded)
	f.waitReady("bystander", 1, chartproofv1.ReasonInstallSucceeded)
	ctx := context.Background()
	recordUID := func(release string) types.UID { // "" while there is none
		t.Helper()
		var s corev1.Secret
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "sh.helm.release.v1." + release + ".v1"}, &s); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return s.UID
	}
	bystanderUID, targetUID := recordUID("bystander"), recordUID("target")

	f.plantInRecord("target")

	f.waitEvent("target", chartproofv1.ReasonReleaseRecordTampered)
	waitFor(t, waitTimeout, "target's record replaced by the repair, and deployed", func() (bool, string) {
		uid := recordUID("target")
		if uid == "" || uid == targetUID {
			return false, "record UID " + string(uid)
		}
		got := helmHistory(t, f.ns, "target")
		return len(got) == 1 && got[0] == "1:deployed", fmt.Sprintf("history %v", got)
	})
	f.waitReady("target", 1, chartproofv1.ReasonInstallSucceeded)

	// The twin, read once the tampered release was repaired: the same
	// watch saw both records and mapped each to its own release.
	if recordUID("bystander") != bystanderUID {
		t.Error("bystander's record Secret was replaced; nobody touched it")
	}
	var evs eventsv1.EventList
	if err := k8s.List(ctx, &evs, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Regarding.Name == "bystander" && e.Reason == chartproofv1.ReasonReleaseRecordTampered {
			t.Errorf("bystander reported %s: %s", e.Reason, e.Note)
		}
	}
	if vhr := f.get("bystander"); vhr.Status.Installed == nil || vhr.Status.Installed.Revision != 1 {
		t.Errorf("bystander installed = %+v; want revision 1", vhr.Status.Installed)
	}
}

// TestManualHelmUpgradeUndone (issue 11, item 5): someone runs `helm
// upgrade` by hand (Helm's own SDK, as the test's admin) with an unverified
// chart. Once the release runs again, the revision chartproof
// installed is no longer the deployed one, so it is tampering: reported, and
// undone by installing the verified digest afresh (its ConfigMap back to the
// verified chart's). TestRecordTamperingWakesRelease is its twin's test: a
// release nobody touched is left alone.
func TestManualHelmUpgradeUndone(t *testing.T) {
	f := newFixture(t)
	d := f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	f.helmUpgradeByHand("app", map[string]string{"planted.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n"})

	f.waitEvent("app", chartproofv1.ReasonReleaseRecordTampered)
	f.waitHistory("app", "1:deployed") // the verified chart installed afresh
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	f.assertInstalled("app", d)
	// What only the hand-written record lists is not deleted: a record
	// chartproof did not write is evidence, not a plan, and a forged one
	// could list any victim (THREATS TEN-05). Finding such leftovers is
	// drift detection's job (issue 11, items 1 and 2).
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "planted"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("the hand-installed chart's ConfigMap: %v; want it left, not deleted on an untrusted record's word", err)
	}
}

// TestManualHelmRollbackUndone (issue 11, item 5): after chartproof upgraded
// the release to 2.0.0, someone runs `helm rollback` to revision 1 by hand.
// Once the release runs again, the revision chartproof installed
// is no longer the deployed one, so it is tampering: reported, and undone by
// installing the verified 2.0.0 afresh.
func TestManualHelmRollbackUndone(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	d2 := f.pushChart("2.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	vhr := f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	vhr = f.get("app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Chart.Version = "2.0.0"
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)

	f.suspend("app") // while Helm runs, as in TestManualHelmUpgradeUndone
	rb := action.NewRollback(helmConfig(t, f.ns))
	rb.Version = 1
	if err := rb.Run("app"); err != nil {
		t.Fatalf("helm rollback by hand: %v", err)
	}
	f.touch("app")

	f.waitEvent("app", chartproofv1.ReasonReleaseRecordTampered)
	f.waitHistory("app", "1:deployed") // the verified 2.0.0 installed afresh
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	f.assertInstalled("app", d2)
}

// TestRecordTamperingLeftInWarn (issue 11, item 5, mode Warn): the two ways
// a release's records are rewritten, a record edited in place and a manual
// `helm upgrade` with an unverified chart, are reported and left in place in
// driftDetection mode Warn: ReleaseRecordTampered (event, Released and Ready
// False, counted once however often the release runs again), Drifted=True,
// the records as the tampering left them and nothing of them applied. Its
// twin, "bystander", in Warn too and untouched, stays Ready. Switched to
// Correct, the release is repaired as in TestRecordTamperingWakesRelease.
func TestRecordTamperingLeftInWarn(t *testing.T) {
	for _, change := range []string{"record edited", "manual helm upgrade"} {
		t.Run(change, func(t *testing.T) {
			f := newFixture(t)
			d := f.pushChart("1.0.0", nil)
			f.policy("trusted", f.key, chartproofv1.ModeEnforce)
			warn := func(v *chartproofv1.VerifiedHelmRelease) {
				v.Spec.DriftDetection = &chartproofv1.DriftDetection{Mode: chartproofv1.DriftWarn}
			}
			f.release("app", "1.0.0", "trusted", warn)
			f.release("bystander", "1.0.0", "trusted", warn)
			f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			f.waitReady("bystander", 1, chartproofv1.ReasonInstallSucceeded)
			ctx := context.Background()
			counted := tamperedCount(t)

			wantHistory := []string{"1:deployed"}
			switch change {
			case "record edited":
				// The record watch alone wakes the release (interval 10m).
				f.plantInRecord("app")
			case "manual helm upgrade":
				f.helmUpgradeByHand("app", nil) // the release now runs every 2s
				wantHistory = []string{"1:superseded", "2:deployed"}
			}

			f.waitEvent("app", chartproofv1.ReasonReleaseRecordTampered)
			f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonReleaseRecordTampered)
			if c := f.driftCondition("app"); c == nil || c.Status != metav1.ConditionTrue || c.Reason != chartproofv1.ReasonDriftDetected {
				t.Errorf("Drifted = %+v; want True, DriftDetected", c)
			}
			// Run the release again: still reported, counted once.
			f.rerun("app")
			f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonReleaseRecordTampered)
			if got := tamperedCount(t) - counted; got != 1 {
				t.Errorf("tampering counted %v times; want once", got)
			}
			if got := helmHistory(t, f.ns, "app"); !slices.Equal(got, wantHistory) {
				t.Errorf("history %v; want %v, left as the tampering made it", got, wantHistory)
			}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "planted"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
				t.Errorf("the planted ConfigMap: %v; want NotFound, nothing of the records applied", err)
			}
			if c := apimeta.FindStatusCondition(f.get("bystander").Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
				t.Errorf("bystander Ready = %+v; want True, nobody touched it", c)
			}

			vhr := f.get("app")
			patch := client.MergeFrom(vhr.DeepCopy())
			vhr.Spec.DriftDetection.Mode = chartproofv1.DriftCorrect
			if err := k8s.Patch(ctx, vhr, patch); err != nil {
				t.Fatal(err)
			}
			f.waitHistory("app", "1:deployed") // the verified chart installed afresh
			f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			f.assertInstalled("app", d)
		})
	}
}

// plantInRecord rewrites revision 1 of release's Helm record in place, as
// anyone who may write Secrets in the namespace can: its manifest also
// lists a ConfigMap "planted".
func (f *fixture) plantInRecord(release string) {
	f.t.Helper()
	cfg := helmConfig(f.t, f.ns)
	rel, err := cfg.Releases.Get(release, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	rel.Manifest += "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n  namespace: " + f.ns + "\n"
	if err := cfg.Releases.Update(rel); err != nil {
		f.t.Fatal(err)
	}
}

// helmUpgradeByHand runs `helm upgrade` of release with an unverified hello
// chart 9.9.9 and the extra templates (path under templates/ -> content),
// as an admin with Helm's own SDK would. The release is suspended while
// Helm runs, so the reconcile the new record wakes does not meet the upgrade
// half done (that is TestPendingUpgradeRecovered's case), and resumed after
// it (f.touch).
func (f *fixture) helmUpgradeByHand(release string, extra map[string]string) {
	f.t.Helper()
	files := testchart.Files("hello", "9.9.9")
	for name, content := range extra {
		files["templates/"+name] = content
	}
	archive, err := testchart.Build(testchart.Entries("hello", files))
	if err != nil {
		f.t.Fatal(err)
	}
	unverified, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		f.t.Fatal(err)
	}
	f.suspend(release)
	up := action.NewUpgrade(helmConfig(f.t, f.ns))
	up.Namespace = f.ns
	if _, err := up.Run(release, unverified, nil); err != nil {
		f.t.Fatalf("helm upgrade by hand: %v", err)
	}
	f.touch(release)
}

// waitHistory waits until `helm history` of release is want
// ("revision:status"); an error reading it (between a repair's drop of the
// records and its install) is waited out.
func (f *fixture) waitHistory(release string, want ...string) {
	f.t.Helper()
	waitFor(f.t, waitTimeout, fmt.Sprintf("helm history of %s %v", release, want), func() (bool, string) {
		rels, err := action.NewHistory(helmConfig(f.t, f.ns)).Run(release)
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, r := range rels {
			got = append(got, fmt.Sprintf("%d:%s", r.Version, r.Info.Status))
		}
		return slices.Equal(got, want), fmt.Sprintf("history %v", got)
	})
}
