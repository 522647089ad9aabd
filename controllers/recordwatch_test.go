package controllers_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
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

	cfg := helmConfig(t, f.ns)
	rel, err := cfg.Releases.Get("target", 1)
	if err != nil {
		t.Fatal(err)
	}
	rel.Manifest += "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n  namespace: " + f.ns + "\n"
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}

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
