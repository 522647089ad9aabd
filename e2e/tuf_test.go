package e2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/testtuf"
)

const (
	tufIssuer   = "https://token.actions.githubusercontent.com"
	tufWorkflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/heads/main"
)

// TestManagerTUFRotation (issue 12, item 4): the manager binary, with only
// config/rbac's rights, reads a keyless policy's trusted root from a TUF
// repository served over HTTP on loopback, read again every 30 s (the
// shortest refreshInterval). The control is the state before the rotation:
// 1.0.0, signed keyless by the first Sigstore, installed and verified.
// Then the repository rotates as Sigstore does when it rotates a key: a new
// root version gives every TUF role a new key (signed by the old root key
// and the new one, the chain a client follows) and serves the trusted root
// of another Sigstore (the CA rotated away). Nothing in the cluster
// changes and the release's interval is the default: the manager's own
// refresh sees the new trusted root (its metadata expiry metric moves to
// the new timestamp's), and re-verifies the release at once: the old
// signer is UntrustedSigner, the release kept running (Hold). An upgrade to
// 2.0.0, signed by the new Sigstore, then installs: the rotated root is the
// one in use.
func TestManagerTUFRotation(t *testing.T) {
	reg := startRegistry(t)
	registry := testsign.Registry{Host: reg.Host}
	before, after := newTestSigstore(t), newTestSigstore(t)
	d1 := pushChart(t, reg.Host, "charts/hello", "1.0.0")
	d2 := pushChart(t, reg.Host, "charts/hello", "2.0.0")
	for _, s := range []struct {
		sigstore *testsign.Sigstore
		digest   string
	}{{before, d1}, {after, d2}} {
		b, err := s.sigstore.SignKeyless(testsign.Statement(reg.Host+"/charts/hello", s.digest), testsign.KeylessOptions{
			Cert: testsign.Cert{URI: tufWorkflow, Issuer: tufIssuer},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := registry.AttachBundle("charts/hello", s.digest, b, false); err != nil {
			t.Fatal(err)
		}
	}
	rootBefore, err := before.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	rootAfter, err := after.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := testtuf.New(rootBefore)
	if err != nil {
		t.Fatal(err)
	}
	srv := repo.Serve()
	defer srv.Close()

	manager, metricsAddr := startManager(t)
	defer stopManager(t, manager)
	apps := newNamespace(t, "e2e-tuf-")
	mustCreate(t, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "tuf-root"},
		Data:       map[string]string{"root.json": string(repo.Root())},
	})
	mustCreate(t, &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "ci"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{reg.Host + "/charts/*"},
			Authorities: []chartproofv1.Authority{{Name: "release", Keyless: &chartproofv1.KeylessAuthority{
				TrustedRoot: &chartproofv1.TrustedRootReference{TUF: &chartproofv1.TUFRepositoryReference{
					URL:             srv.URL,
					Root:            &chartproofv1.TUFRootReference{Name: "tuf-root"},
					RefreshInterval: &metav1.Duration{Duration: 30 * time.Second},
				}},
				Identities: []chartproofv1.Identity{{Issuer: tufIssuer, Subject: tufWorkflow}},
			}}},
		},
	})
	mustCreate(t, newRelease(apps, "app", "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci"))

	// Control: verified by the first Sigstore and installed.
	vhr := waitCondition(t, manager, apps, "app", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != d1 || !inst.Verified {
		t.Fatalf("control: installed %+v; want %s, verified", inst, d1)
	}
	if ev := vhr.Status.Evidence; len(ev) != 1 || ev[0].Subject != tufWorkflow {
		t.Fatalf("control: evidence %+v; want the workflow as signer", ev)
	}
	checkStamped(t, apps, "app", d1)
	expirySeries := fmt.Sprintf("chartproof_tuf_metadata_expiry_timestamp_seconds{repository=%q}", srv.URL)
	expiryBefore, err := scrape(metricsAddr, expirySeries)
	if err != nil {
		t.Fatal(err)
	}

	// The rotation: new TUF keys, another Sigstore's trusted root, and a
	// timestamp valid for 12 hours instead of 24, so the metric shows
	// which metadata the manager holds.
	repo.TimestampLifetime = 12 * time.Hour
	if err := repo.RotateRoot(rootAfter); err != nil {
		t.Fatal(err)
	}
	rotated := float64(time.Now().Add(repo.TimestampLifetime).Unix())
	vhr = waitCondition(t, manager, apps, "app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != d1 || inst.Verified {
		t.Errorf("after the rotation: installed %+v; want %s kept, not verified (Hold)", inst, d1)
	}
	checkStamped(t, apps, "app", d1)
	expiryAfter, err := scrape(metricsAddr, expirySeries)
	if err != nil {
		t.Fatal(err)
	}
	// The new timestamp's expiry, to the second it was signed in.
	if expiryAfter >= expiryBefore || expiryAfter < rotated-60 || expiryAfter > rotated {
		t.Errorf("%s = %.0f after the rotation (%.0f before); want the rotated timestamp's expiry, about %.0f", expirySeries, expiryAfter, expiryBefore, rotated)
	}

	// The new Sigstore's signature verifies under the rotated root.
	setVersion(t, apps, "app", "2.0.0")
	waitFor(t, managerWait, "app Ready at 2.0.0", manager, func() (bool, string) {
		vhr := getRelease(t, apps, "app")
		inst := vhr.Status.Installed
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		ready := c != nil && c.Status == metav1.ConditionTrue
		return ready && inst != nil && inst.Digest == d2 && inst.Verified, fmt.Sprintf("installed %+v, conditions %+v", inst, vhr.Status.Conditions)
	})
	checkStamped(t, apps, "app", d2)
	deleteReleases(t, manager, apps, "app")
}

func newTestSigstore(t *testing.T) *testsign.Sigstore {
	t.Helper()
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
