package controllers_test

import (
	"context"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// buildSigned pushes version signed by a key of its own, the "build" key,
// creates TrustPolicy "trusted" trusting the fixture's key (authority
// "release") and the build key (authority "build"), and returns the
// digest.
func (f *fixture) buildSigned(version string) string {
	f.t.Helper()
	build, err := testsign.NewKey("p256")
	if err != nil {
		f.t.Fatal(err)
	}
	d := f.push(version)
	f.signLegacy(d, build)
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "trusted"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities: []chartproofv1.Authority{
				{Name: "release", Key: &chartproofv1.KeyAuthority{PublicKey: f.key.PublicPEM()}},
				{Name: "build", Key: &chartproofv1.KeyAuthority{PublicKey: build.PublicPEM()}},
			},
		},
	}
	if err := k8s.Create(context.Background(), tp); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// revokeKey adds keyID to the revocation list of TrustPolicy name.
func (f *fixture) revokeKey(name, keyID string) {
	f.t.Helper()
	var tp chartproofv1.TrustPolicy
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &tp); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(tp.DeepCopy())
	tp.Spec.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{KeyIDs: []string{keyID}}}
	if err := k8s.Patch(context.Background(), &tp, patch); err != nil {
		f.t.Fatal(err)
	}
}

// edit changes a release's spec.
func (f *fixture) edit(name string, change func(*chartproofv1.VerifiedHelmRelease)) {
	f.t.Helper()
	vhr := f.get(name)
	patch := client.MergeFrom(vhr.DeepCopy())
	change(vhr)
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		f.t.Fatal(err)
	}
}

// TestDowngradeRefused (issue 12, item 5; THREATS FRS-01): a release that
// installed 2.0.0 does not move to the signed 1.0.0 (DowngradeRefused,
// 2.0.0 stays installed and verified) until spec.allowDowngrade says so;
// then it does, and 1.0.0 becomes its newest. The control is the same
// change with the opt-in.
func TestDowngradeRefused(t *testing.T) {
	f := newFixture(t)
	d1 := f.pushChart("1.0.0", nil)
	d2 := f.pushChart("2.0.0", nil)
	f.policy("trusted", f.key, chartproofv1.ModeEnforce)
	f.release("app", "2.0.0", "trusted")
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if n := vhr.Status.Newest; n == nil || n.ChartVersion != "2.0.0" || n.Digest != d2 {
		t.Fatalf("status.newest = %+v; want 2.0.0 %s", n, d2)
	}

	f.edit("app", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Chart.Version = "1.0.0" })
	vhr = f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonDowngradeRefused)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse ||
		c.Reason != chartproofv1.ReasonUpgradeBlocked || !strings.Contains(c.Message, chartproofv1.ReasonDowngradeRefused) {
		t.Errorf("Ready = %+v; want False, UpgradeBlocked by DowngradeRefused", c)
	}
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != d2 || !inst.Verified {
		t.Errorf("installed = %+v; want %s kept and still verified", inst, d2)
	}
	f.assertInstalled("app", d2)

	f.edit("app", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.AllowDowngrade = true })
	vhr = f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
	f.assertInstalled("app", d1)
	if n := vhr.Status.Newest; n == nil || n.ChartVersion != "1.0.0" || n.Digest != d1 {
		t.Errorf("status.newest = %+v; want 1.0.0 %s after the allowed downgrade", n, d1)
	}
}

// TestNewestForgottenWhenRevoked (THREATS FRS-03): a compromised key signs
// 9.0.0, which is installed and becomes the release's newest; once the key
// is revoked, 9.0.0 stops verifying and no longer holds the release at
// 9.0.0: the legitimate 1.0.0 is installed without allowDowngrade. (Its
// twin, TestDowngradeRefused, shows the floor holding while its chart still
// verifies.)
func TestNewestForgottenWhenRevoked(t *testing.T) {
	f := newFixture(t)
	d1 := f.pushChart("1.0.0", nil)
	d9 := f.buildSigned("9.0.0") // the build key, compromised
	f.release("app", "9.0.0", "trusted")
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if n := vhr.Status.Newest; n == nil || n.Digest != d9 {
		t.Fatalf("status.newest = %+v; want 9.0.0 %s", n, d9)
	}

	f.revokeKey("trusted", vhr.Status.Evidence[0].KeyID)
	vhr = f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonSignerRevoked)
	if vhr.Status.Newest != nil {
		t.Errorf("status.newest = %+v; want it forgotten once 9.0.0 no longer verifies", vhr.Status.Newest)
	}

	f.edit("app", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Chart.Version = "1.0.0" })
	vhr = f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
	f.assertInstalled("app", d1)
	if n := vhr.Status.Newest; n == nil || n.Digest != d1 {
		t.Errorf("status.newest = %+v; want 1.0.0 %s", n, d1)
	}
}
