package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestManagerRevocation (issue 12, "How we will know"): the manager binary,
// with only config/rbac's rights, and three releases of hello, each
// installed at 1.0.0 (signed by the release key, real cosign v3) and
// upgraded to 2.0.0 (signed by the build key). The build key is revoked in
// the policy's revocation list: all three turn Verified=False with
// SignerRevoked, without waiting for their interval, and each does what its
// spec.onVerificationFailure says — Hold keeps 2.0.0 running, Rollback goes
// back to 1.0.0 (verified again, rendered from its digest), Uninstall
// removes the release — and none installs anything unverified afterwards.
// The metrics count what runs unverified and time the revocation. The
// control is the state before the revocation: all three verified at 2.0.0.
func TestManagerRevocation(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t)
	d1, releasePEM, _ := pushSignedChart(t, reg.Host, "charts/hello", "1.0.0")
	d2, buildPEM, buildKeyID := pushSignedChart(t, reg.Host, "charts/hello", "2.0.0")

	manager, metricsAddr := startManager(t, "--leader-elect", "--leader-election-namespace="+managerNamespace)
	defer stopManager(t, manager)
	apps := newNamespace(t, "e2e-revoke-")
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "ci"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{reg.Host + "/charts/*"},
			Authorities: []chartproofv1.Authority{
				{Name: "release", Key: &chartproofv1.KeyAuthority{PublicKey: releasePEM}},
				{Name: "build", Key: &chartproofv1.KeyAuthority{PublicKey: buildPEM}},
			},
		},
	}
	mustCreate(t, tp)
	modes := map[string]chartproofv1.VerificationFailureAction{
		"hold":      chartproofv1.VerificationFailureHold,
		"rollback":  chartproofv1.VerificationFailureRollback,
		"uninstall": chartproofv1.VerificationFailureUninstall,
	}
	for name, mode := range modes {
		vhr := newRelease(apps, name, "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci")
		vhr.Spec.OnVerificationFailure = mode
		mustCreate(t, vhr)
	}
	for name := range modes {
		waitCondition(t, manager, apps, name, chartproofv1.ConditionReady, metav1.ConditionTrue, "")
		setVersion(t, apps, name, "2.0.0")
	}
	for name := range modes {
		vhr := waitCondition(t, manager, apps, name, chartproofv1.ConditionReady, metav1.ConditionTrue, "")
		if inst := vhr.Status.Installed; inst == nil || inst.Digest != d2 || !inst.Verified {
			t.Fatalf("control: %s installed %+v; want %s, verified", name, inst, d2)
		}
		checkStamped(t, apps, name, d2)
	}

	// Revoke the build key.
	patch := client.MergeFrom(tp.DeepCopy())
	tp.Spec.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{KeyIDs: []string{buildKeyID}}}
	if err := k8s.Patch(ctx, tp, patch); err != nil {
		t.Fatal(err)
	}
	for name := range modes {
		waitCondition(t, manager, apps, name, chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonSignerRevoked)
	}

	t.Run("Hold keeps 2.0.0 running, marked unverified", func(t *testing.T) {
		vhr := waitCondition(t, manager, apps, "hold", chartproofv1.ConditionReady, metav1.ConditionFalse, "")
		if inst := vhr.Status.Installed; inst == nil || inst.Digest != d2 || inst.Verified {
			t.Errorf("installed %+v; want %s kept, not verified", inst, d2)
		}
		checkStamped(t, apps, "hold", d2)
	})
	t.Run("Rollback goes back to 1.0.0", func(t *testing.T) {
		waitStatus(t, manager, apps, "rollback", "1.0.0 installed again, verified", func(v *chartproofv1.VerifiedHelmRelease) bool {
			return v.Status.Installed != nil && v.Status.Installed.Digest == d1 && v.Status.Installed.Verified
		})
		checkStamped(t, apps, "rollback", d1)
	})
	t.Run("Uninstall removes the release", func(t *testing.T) {
		waitStatus(t, manager, apps, "uninstall", "nothing installed", func(v *chartproofv1.VerifiedHelmRelease) bool {
			return v.Status.Installed == nil
		})
		waitFor(t, managerWait, "the uninstalled release's records gone", manager, func() (bool, string) {
			recs := helmRecords(t, apps, "uninstall")
			return len(recs) == 0, fmt.Sprintf("records %v", recs)
		})
		checkNothingInstalled(t, apps, "uninstall")
	})
	t.Run("metrics: one installed release runs unverified, the revocation timed, the registry and cache counted", func(t *testing.T) {
		release := func(name string) string { return fmt.Sprintf("name=%q,namespace=%q", name, apps) }
		for series, ok := range map[string]func(float64) bool{
			"chartproof_installed_unverified_releases": func(v float64) bool { return v == 1 }, // hold
			"chartproof_time_to_revoke_seconds_count":  func(v float64) bool { return v >= 1 },
			// The release an alert names: hold runs 2.0.0, which no
			// longer verifies; rollback runs 1.0.0, which does. Both
			// are Verified=False: the 2.0.0 their spec asks for is
			// refused.
			"chartproof_release_installed_verified{" + release("hold") + "}":                           func(v float64) bool { return v == 0 },
			"chartproof_release_installed_verified{" + release("rollback") + "}":                       func(v float64) bool { return v == 1 },
			"chartproof_release_condition{" + release("hold") + `,status="False",type="Verified"}`:     func(v float64) bool { return v == 1 },
			"chartproof_release_condition{" + release("rollback") + `,status="False",type="Verified"}`: func(v float64) bool { return v == 1 },
			// The registry's requests and the cache's lookups.
			`chartproof_registry_requests_total{code="200",endpoint="manifest",registry="` + reg.Host + `"}`:  func(v float64) bool { return v >= 1 },
			`chartproof_registry_request_duration_seconds_count{endpoint="blob",registry="` + reg.Host + `"}`: func(v float64) bool { return v >= 1 },
			`chartproof_cache_lookups_total{cache="signatures",result="miss"}`:                                func(v float64) bool { return v >= 1 },
		} {
			waitFor(t, managerWait, series, manager, func() (bool, string) {
				v, err := scrape(metricsAddr, series)
				if err != nil {
					return false, err.Error()
				}
				return ok(v), fmt.Sprintf("value %v", v)
			})
		}
		// The uninstalled release runs nothing: no series says it does.
		series := "chartproof_release_installed_verified{" + release("uninstall") + "}"
		waitFor(t, managerWait, "no "+series, manager, func() (bool, string) {
			v, err := scrape(metricsAddr, series)
			return err != nil, fmt.Sprintf("value %v", v)
		})
	})
	t.Run("nothing unverified installed afterwards", func(t *testing.T) {
		// Reconciled again (a new generation): Hold stays at 2.0.0 and
		// refused, Uninstall installs nothing, Rollback stays at 1.0.0.
		for name := range modes {
			var vhr chartproofv1.VerifiedHelmRelease
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: apps, Name: name}, &vhr); err != nil {
				t.Fatal(err)
			}
			p := client.MergeFrom(vhr.DeepCopy())
			vhr.Spec.Interval = metav1.Duration{Duration: 9 * time.Minute}
			if err := k8s.Patch(ctx, &vhr, p); err != nil {
				t.Fatal(err)
			}
		}
		waitCondition(t, manager, apps, "hold", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonSignerRevoked)
		checkStamped(t, apps, "hold", d2)
		waitCondition(t, manager, apps, "uninstall", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonSignerRevoked)
		checkNothingInstalled(t, apps, "uninstall")
		waitCondition(t, manager, apps, "rollback", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonSignerRevoked)
		checkStamped(t, apps, "rollback", d1)
	})
	deleteReleases(t, manager, apps, "hold", "rollback", "uninstall")
}

// waitStatus waits until the release's status satisfies ok.
func waitStatus(t *testing.T, manager *process, ns, name, what string, ok func(*chartproofv1.VerifiedHelmRelease) bool) {
	t.Helper()
	waitFor(t, managerWait, name+": "+what, manager, func() (bool, string) {
		var vhr chartproofv1.VerifiedHelmRelease
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &vhr); err != nil {
			return false, err.Error()
		}
		return ok(&vhr), fmt.Sprintf("installed %+v, conditions %+v", vhr.Status.Installed, vhr.Status.Conditions)
	})
}

// setVersion sets a release's spec.chart.version.
func setVersion(t *testing.T, ns, name, version string) {
	t.Helper()
	var vhr chartproofv1.VerifiedHelmRelease
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &vhr); err != nil {
		t.Fatal(err)
	}
	p := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Chart.Version = version
	if err := k8s.Patch(context.Background(), &vhr, p); err != nil {
		t.Fatal(err)
	}
}

// checkStamped checks that every object of release's chart in ns carries
// digest: what runs is that chart.
func checkStamped(t *testing.T, ns, release, digest string) {
	t.Helper()
	for _, o := range chartObjects(ns, release) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Errorf("%T %s: %v", o, o.GetName(), err)
			continue
		}
		if got := o.GetAnnotations()[chartproofv1.AnnotationChartDigest]; !strings.EqualFold(got, digest) {
			t.Errorf("%T %s runs %s; want %s", o, o.GetName(), got, digest)
		}
	}
}
