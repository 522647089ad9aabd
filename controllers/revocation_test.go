package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestRevocationListReverifies (issue 12, item 1): two releases, each
// signed by its own key, under two policies that read the same revocation
// list from a ConfigMap a security team owns; both at the default 10m
// interval. Once the list names the first release's key, that release turns
// Verified=False and Ready=False with SignerRevoked at once (the watch of
// the ConfigMap, not the interval), and what is installed stays. Its twin,
// whose key the list does not name, is verified again and stays Verified.
func TestRevocationListReverifies(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d1 := f.pushChart("1.0.0", nil)
	other, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	d2 := f.push("2.0.0")
	f.signLegacy(d2, other)

	list := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "revoked"},
		Data:       map[string]string{"revocations.yaml": "keyIDs: []\n"},
	}
	if err := k8s.Create(ctx, list); err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]*testsign.Key{"first": f.key, "second": other} {
		tp := &chartproofv1.TrustPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Spec: chartproofv1.TrustPolicySpec{
				Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
				Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: key.PublicPEM()}}},
				Revocations: &chartproofv1.Revocations{
					ConfigMapRef: &chartproofv1.RevocationsKeyReference{Name: "revoked", Key: "revocations.yaml"},
				},
			},
		}
		if err := k8s.Create(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	f.release("app", "1.0.0", "first")
	f.release("twin", "2.0.0", "second")
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	twin := f.waitReady("twin", 1, chartproofv1.ReasonInstallSucceeded)
	if len(vhr.Status.Evidence) != 1 {
		t.Fatalf("evidence %+v; want one signature", vhr.Status.Evidence)
	}
	revokedKey := vhr.Status.Evidence[0].KeyID
	// LastVerifiedTime has a precision of one second: the twin's next
	// verification must be told apart from its last.
	last := twin.Status.LastVerifiedTime
	waitFor(t, 2*time.Second, "the clock past the twin's last verification", func() (bool, string) {
		return time.Now().Truncate(time.Second).After(last.Time), ""
	})

	revoked0, unverified0 := metricValue(t, "chartproof_time_to_revoke_seconds"), metricValue(t, "chartproof_installed_unverified_releases")
	patch := client.MergeFrom(list.DeepCopy())
	list.Data["revocations.yaml"] = "keyIDs: [" + revokedKey + "]\n"
	if err := k8s.Patch(ctx, list, patch); err != nil {
		t.Fatal(err)
	}

	vhr = f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonSignerRevoked)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != chartproofv1.ReasonSignerRevoked {
		t.Errorf("Ready = %+v; want False, SignerRevoked", c)
	}
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != d1 || inst.Verified {
		t.Errorf("installed = %+v; want %s kept, no longer verified", inst, d1)
	}
	f.assertInstalled("app", d1)
	f.waitEvent("app", chartproofv1.ReasonSignerRevoked)
	// Issue 12, item 7: the revocation is timed from the ConfigMap's change,
	// and the release counts among those installed that do not verify.
	// The metrics follow the status write that the condition was read from.
	waitFor(t, waitTimeout, "the revocation timed and counted", func() (bool, string) {
		timed := metricValue(t, "chartproof_time_to_revoke_seconds") - revoked0
		unverified := metricValue(t, "chartproof_installed_unverified_releases") - unverified0
		return timed >= 1 && unverified >= 1, fmt.Sprintf("chartproof_time_to_revoke_seconds observed %v more times, chartproof_installed_unverified_releases rose by %v; want at least 1 each", timed, unverified)
	})

	// The policy's own status says what it revokes, read from the ConfigMap.
	waitFor(t, waitTimeout, "policy first reporting the revoked key", func() (bool, string) {
		var tp chartproofv1.TrustPolicy
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "first"}, &tp); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(tp.Status.Conditions, chartproofv1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue && strings.Contains(c.Message, "revokes 1 keys"), fmt.Sprintf("Ready %+v", c)
	})

	waitFor(t, waitTimeout, "the twin verified again", func() (bool, string) {
		twin = f.get("twin")
		c := apimeta.FindStatusCondition(twin.Status.Conditions, chartproofv1.ConditionVerified)
		again := twin.Status.LastVerifiedTime != nil && twin.Status.LastVerifiedTime.After(last.Time)
		return again && c != nil && c.Status == metav1.ConditionTrue,
			fmt.Sprintf("verified again %v, Verified %+v", again, c)
	})
}

// metricValue is the value of a gauge, or the sample count of a histogram,
// in the suite's registry (0 when absent).
func metricValue(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := promReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if h := m.GetHistogram(); h != nil {
			return float64(h.GetSampleCount())
		}
		return m.GetGauge().GetValue()
	}
	return 0
}
