package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestPostRenderers: spec.postRenderers (kustomize) change what the chart
// rendered before the stamp: an image rewritten and a label patched onto
// the Deployment, while a patch that forges the chart-digest annotation is
// overwritten by the stamp. Drift detection compares with the post-rendered
// objects: the image set back to the chart's by hand is drift, corrected to
// the rewritten one. Its control twin, without post-renderers, deploys the
// chart's image; a malformed patch fails the install (InstallFailed, the
// post-renderer named, nothing installed).
func TestPostRenderers(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.signLegacy(digest, f.key)
	f.policy("trusted", f.key, "")
	const chartImage, newImage = "registry.k8s.io/e2e-test-images/agnhost:2.53", "mirror.example/agnhost:2.53-patched"
	renderers := []chartproofv1.PostRenderer{{Kustomize: chartproofv1.KustomizePostRenderer{
		Images: []chartproofv1.KustomizeImage{{Name: "registry.k8s.io/e2e-test-images/agnhost", NewName: "mirror.example/agnhost", NewTag: "2.53-patched"}},
		Patches: []chartproofv1.KustomizePatch{
			{Target: &chartproofv1.KustomizeSelector{Kind: "Deployment"}, Patch: `[{"op": "add", "path": "/metadata/labels/patched", "value": "yes"}]`},
			{Patch: fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: patched-hello\n  annotations:\n    %s: sha256:forged\n", chartproofv1.AnnotationChartDigest)},
		},
	}}}
	hour := metav1.Duration{Duration: time.Hour}
	f.release("patched", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = hour
		v.Spec.PostRenderers = renderers
	})
	f.release("plain", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Interval = hour })
	f.release("broken", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = hour
		v.Spec.PostRenderers = []chartproofv1.PostRenderer{{Kustomize: chartproofv1.KustomizePostRenderer{
			Patches: []chartproofv1.KustomizePatch{{Patch: "not: [a patch"}},
		}}}
	})

	for name, want := range map[string]string{"patched": newImage, "plain": chartImage} {
		f.waitReady(name, 1, chartproofv1.ReasonInstallSucceeded)
		d := f.deployment(name)
		if got := d.Spec.Template.Spec.Containers[0].Image; got != want {
			t.Errorf("%s: image %q, want %q", name, got, want)
		}
		if got, want := d.Labels["patched"], map[string]string{"patched": "yes", "plain": ""}[name]; got != want {
			t.Errorf("%s: label patched=%q, want %q", name, got, want)
		}
		if got := f.configMap(name).Annotations[chartproofv1.AnnotationChartDigest]; got != digest {
			t.Errorf("%s: ConfigMap chart digest %q, want the stamp's %q", name, got, digest)
		}
	}

	f.editDeployment("patched", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = chartImage })
	f.waitEvent("patched", chartproofv1.ReasonDriftCorrected)
	waitFor(t, waitTimeout, "the rewritten image put back", func() (bool, string) {
		got := f.deployment("patched").Spec.Template.Spec.Containers[0].Image
		return got == newImage, "image " + got
	})

	vhr := f.waitCondition("broken", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonInstallFailed)
	if c := findCondition(vhr, chartproofv1.ConditionReleased); !strings.Contains(c.Message, "spec.postRenderers[0] (kustomize) failed") {
		t.Errorf("broken: Released = %q; want the post-renderer named", c.Message)
	}
	if vhr.Status.Installed != nil || f.configMap("broken") != nil {
		t.Errorf("broken: installed %+v; want nothing installed", vhr.Status.Installed)
	}
}
