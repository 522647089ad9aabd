package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/testtuf"
)

const (
	tufIssuer   = "https://token.actions.githubusercontent.com"
	tufWorkflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
)

// tufRelease pushes a chart signed keyless by s, and creates the ConfigMap
// tuf-root holding repo's first root.json and the TrustPolicy "ci" whose
// keyless authority reads its trusted root through tuf.
func (f *fixture) tufRelease(s *testsign.Sigstore, repo *testtuf.Repo, tuf chartproofv1.TUFRepositoryReference) string {
	f.t.Helper()
	digest := f.push("1.0.0")
	b, err := s.SignKeyless(testsign.Statement(regHost+"/"+f.repo, digest), testsign.KeylessOptions{
		Cert: testsign.Cert{URI: tufWorkflow, Issuer: tufIssuer},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.reg.AttachBundle(f.repo, digest, b, false); err != nil {
		f.t.Fatal(err)
	}
	ctx := context.Background()
	root := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "tuf-root"}, Data: map[string]string{"root.json": string(repo.Root())}}
	if err := k8s.Create(ctx, root); err != nil {
		f.t.Fatal(err)
	}
	tuf.Root = &chartproofv1.TUFRootReference{Name: "tuf-root"}
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "ci"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities: []chartproofv1.Authority{{Name: "release", Keyless: &chartproofv1.KeylessAuthority{
				TrustedRoot: &chartproofv1.TrustedRootReference{TUF: &tuf},
				Identities:  []chartproofv1.Identity{{Issuer: tufIssuer, Subject: tufWorkflow}},
			}}},
		},
	}
	if err := k8s.Create(ctx, tp); err != nil {
		f.t.Fatal(err)
	}
	f.release("app", "1.0.0", "ci")
	return digest
}

func newTUFRepo(t *testing.T, s *testsign.Sigstore) *testtuf.Repo {
	t.Helper()
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := testtuf.New(rootJSON)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func newSigstore(t *testing.T) *testsign.Sigstore {
	t.Helper()
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTUFTrustedRoot (issue 12, item 4): a keyless release whose policy
// reads its trusted root from a TUF repository, over HTTP on loopback and
// from an air-gapped copy in a ConfigMap, installs what that root vouches
// for. When the repository publishes another Sigstore's root (a CA rotated
// away), the copy's change re-verifies the release at once and the old
// signer no longer verifies. A copy whose timestamp expired (THREATS
// FRS-02) is refused with TrustedRootRefused and nothing is installed; a
// repository that answers 503 leaves the release TrustedRootUnavailable and
// Reconciling until it answers, then installs. The first subtest is their
// control twin.
func TestTUFTrustedRoot(t *testing.T) {
	t.Run("over HTTP", func(t *testing.T) {
		f := newFixture(t)
		s := newSigstore(t)
		repo := newTUFRepo(t, s)
		srv := repo.Serve()
		defer srv.Close()
		digest := f.tufRelease(s, repo, chartproofv1.TUFRepositoryReference{URL: srv.URL})
		vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
		if ev := vhr.Status.Evidence; len(ev) != 1 || ev[0].Subject != tufWorkflow {
			t.Fatalf("evidence = %+v, want the workflow as signer", ev)
		}
		f.assertInstalled("app", digest)
	})

	t.Run("over HTTP, repository down", func(t *testing.T) {
		f := newFixture(t)
		s := newSigstore(t)
		repo := newTUFRepo(t, s)
		repo.SetDown(true)
		srv := repo.Serve()
		defer srv.Close()
		f.tufRelease(s, repo, chartproofv1.TUFRepositoryReference{URL: srv.URL})
		vhr := f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonTrustedRootUnavailable)
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReconciling); c == nil || c.Status != metav1.ConditionTrue {
			t.Fatalf("conditions %+v: want Reconciling (an outage is retried), not Stalled", vhr.Status.Conditions)
		}
		if cm := f.configMap("app"); cm != nil {
			t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
		}
		// Up again: the retry installs, no change to anything needed.
		repo.SetDown(false)
		f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	})

	t.Run("air-gapped copy, then a rotated root", func(t *testing.T) {
		f := newFixture(t)
		s := newSigstore(t)
		repo := newTUFRepo(t, s)
		cp := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "tuf-copy"}, Data: repo.ConfigMapData()}
		if err := k8s.Create(context.Background(), cp); err != nil {
			t.Fatal(err)
		}
		digest := f.tufRelease(s, repo, chartproofv1.TUFRepositoryReference{ConfigMapRef: &chartproofv1.TUFFilesReference{Name: "tuf-copy"}})
		f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
		f.assertInstalled("app", digest)

		other, err := newSigstore(t).TrustedRootJSON(false)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Publish(other); err != nil {
			t.Fatal(err)
		}
		cp.Data = repo.ConfigMapData()
		if err := k8s.Update(context.Background(), cp); err != nil {
			t.Fatal(err)
		}
		vhr := f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
		if inst := vhr.Status.Installed; inst == nil || inst.Verified {
			t.Fatalf("installed = %+v, want the release kept and marked not verified", inst)
		}
	})

	t.Run("air-gapped copy expired", func(t *testing.T) {
		f := newFixture(t)
		s := newSigstore(t)
		repo := newTUFRepo(t, s)
		if err := repo.ExpireTimestamp(); err != nil {
			t.Fatal(err)
		}
		cp := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "tuf-copy"}, Data: repo.ConfigMapData()}
		if err := k8s.Create(context.Background(), cp); err != nil {
			t.Fatal(err)
		}
		f.tufRelease(s, repo, chartproofv1.TUFRepositoryReference{ConfigMapRef: &chartproofv1.TUFFilesReference{Name: "tuf-copy"}})
		f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonTrustedRootRefused)
		f.waitEvent("app", chartproofv1.ReasonTrustedRootRefused)
		if cm := f.configMap("app"); cm != nil {
			t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
		}
	})
}
