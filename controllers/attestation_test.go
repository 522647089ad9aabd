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

// TestProvenanceRequiredAndTightened (issue 15): a policy requiring SLSA
// provenance signed by the build platform's key, from the main branch. A
// release whose chart carries it installs, its status listing the
// attestation that held (predicate type, signer, where); its twin, whose
// chart is signed but carries no provenance, installs nothing
// (AttestationMissing). The policy's condition is then tightened to
// another branch: the installed release turns Verified=False with
// PredicateRejected at once (the policy's watch, not the interval), and
// what is installed stays.
func TestProvenanceRequiredAndTightened(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	builder, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	withProvenance := f.pushChart("1.0.0", nil)
	stmt := testsign.AttestationStatement("https://slsa.dev/provenance/v1",
		`{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1","externalParameters":{"workflow":{"ref":"refs/heads/main","repository":"https://github.com/example/charts","path":".github/workflows/release.yml"}}},"runDetails":{"builder":{"id":"https://github.com/actions/runner/github-hosted"}}}`,
		regHost+"/"+f.repo, withProvenance)
	b, err := testsign.Bundle(stmt, builder)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.AttachBundleAs(f.repo, withProvenance, b, "https://slsa.dev/provenance/v1", false); err != nil {
		t.Fatal(err)
	}
	f.pushChart("2.0.0", nil) // signed, no provenance

	condition := func(ref string) string {
		return `predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/example/charts" && predicate.buildDefinition.externalParameters.workflow.ref == "` + ref + `"`
	}
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "provenance"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: f.key.PublicPEM()}}},
			Attestations: []chartproofv1.AttestationRequirement{{
				Name: "provenance", PredicateType: "https://slsa.dev/provenance/v1",
				Authorities: []chartproofv1.Authority{{Name: "github", Key: &chartproofv1.KeyAuthority{PublicKey: builder.PublicPEM()}}},
				Condition:   condition("refs/heads/main"),
			}},
		},
	}
	if err := k8s.Create(ctx, tp); err != nil {
		t.Fatal(err)
	}
	f.release("app", "1.0.0", "provenance")
	f.release("twin", "2.0.0", "provenance")
	vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if n := len(vhr.Status.Attestations); n != 1 {
		t.Fatalf("status.attestations %+v; want the provenance", vhr.Status.Attestations)
	}
	if a := vhr.Status.Attestations[0]; a.Name != "provenance" || a.PredicateType != "https://slsa.dev/provenance/v1" ||
		a.Authority != "provenance/github" || a.Layout != "sigstore-bundle" || a.Signature == "" {
		t.Errorf("status.attestations[0] = %+v; want provenance by provenance/github, a sigstore-bundle referrer", a)
	}
	f.waitCondition("twin", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonAttestationMissing)
	if twin := f.get("twin"); twin.Status.Installed != nil {
		t.Errorf("twin installed %+v without provenance", twin.Status.Installed)
	}

	// Tighten the condition: the installed chart's provenance no longer
	// satisfies it.
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(tp), tp); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(tp.DeepCopy())
	tp.Spec.Attestations[0].Condition = condition("refs/heads/release")
	if err := k8s.Patch(ctx, tp, patch); err != nil {
		t.Fatal(err)
	}
	vhr = f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonPredicateRejected)
	c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified)
	if !strings.Contains(c.Message, "attestation provenance") || !strings.Contains(c.Message, "refs/heads/release") {
		t.Errorf("Verified message %q; want it to name the requirement and its condition", c.Message)
	}
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != withProvenance || inst.Verified {
		t.Errorf("installed = %+v; want %s kept, no longer verified", inst, withProvenance)
	}
	f.assertInstalled("app", withProvenance)
}
