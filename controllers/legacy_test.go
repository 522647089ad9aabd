package controllers_test

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestReleaseFromBeforeOwnershipAdopted: a release chartproof installed
// before it labelled records with their owner (its records carry no owner,
// and status.installed names no release) is still this object's: it is
// upgraded once, which labels its records, and deleting the object then
// uninstalls it. Its twin is TestReleaseOfAnotherOwnerUntouched: the same
// unlabelled records, with no status saying this object installed them,
// are refused.
func TestReleaseFromBeforeOwnershipAdopted(t *testing.T) {
	f := newFixture(t)
	f.pushChart("1.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	// What an earlier chartproof left: no owner label, no release name in
	// status.
	f.suspend("app") // resumed by touch
	cfg := helmConfig(t, f.ns)
	rel, err := cfg.Releases.Get("app", 1)
	if err != nil {
		t.Fatal(err)
	}
	rel.Labels = nil
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}
	vhr := f.get("app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Status.Installed.Name, vhr.Status.Installed.Namespace = "", ""
	if err := k8s.Status().Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	if got := f.get("app").Status.Installed; got.Name != "" {
		t.Fatalf("status.installed.name = %q after the patch; want it empty", got.Name)
	}
	f.touch("app")

	f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
	rel, err = cfg.Releases.Get("app", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rel.Labels[chartproofv1.LabelOwner], string(f.get("app").UID); got != want {
		t.Errorf("revision 2 owner label = %q; want %q", got, want)
	}
	f.deleteRelease("app")
	if cm := f.configMap("app"); cm != nil {
		t.Errorf("the ConfigMap after the deletion = %+v; want it uninstalled", cm.Data)
	}
}
