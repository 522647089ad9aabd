package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/hack/internal/image"
)

// platformNamespace is where the demo installs chartproof's own chart.
const platformNamespace = "chartproof-system"

// shipItself does what `make image IMAGE_REGISTRY=...` does against the
// demo's registry (this machine's platform only): chartproof's image, and
// its chart naming the image by digest, pushed, the chart signed with
// chartproof's release key. `chartproof verify` checks the chart against a
// policy trusting that key, and only then does a VerifiedHelmRelease
// install it, verified again by the manager, as a platform ServiceAccount.
func (d *demo) shipItself(ctx context.Context) error {
	platform := "linux/" + runtime.GOARCH // the image runs on Linux nodes, whatever runs the demo
	say("shipping chartproof itself: building its image for %s without a Docker engine (hack/image; the first time takes a few minutes)", platform)
	s, err := image.Ship(ctx, image.ShipOptions{
		Image:    image.Options{Platforms: []string{platform}, Out: filepath.Join(d.dir, "image"), Insecure: true},
		Registry: d.regHost + "/chartproof",
		ChartOut: d.dir,
		Cosign:   image.Cosign{Bin: d.cosign, Home: filepath.Join(d.dir, "release-key")},
	})
	if err != nil {
		return err
	}
	say("pushed chartproof's image %s (static binary, no base image, user 65532)", s.Image)
	say("packaged charts/chartproof %s naming that digest, pushed it to %s:%s (%s) and signed it with chartproof's release key", s.Version, s.Chart, s.Version, s.ChartDigest)

	policy := &chartproofv1.TrustPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: chartproofv1.GroupVersion.String(), Kind: "TrustPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: platformNamespace, Name: "chartproof-release"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{d.regHost + "/chartproof/**"},
			Authorities:  []chartproofv1.Authority{{Name: "chartproof-release", Key: &chartproofv1.KeyAuthority{PublicKey: s.PublicKey}}},
		},
	}
	policyFile := filepath.Join(d.dir, "chartproof-policy.yaml")
	data, err := yaml.Marshal(policy)
	if err != nil {
		return err
	}
	if err := os.WriteFile(policyFile, data, 0o644); err != nil {
		return err
	}
	ref := s.Chart + ":" + s.Version
	say("chartproof verify %s --policy %s --plain-http", ref, filepath.Base(policyFile))
	out, err := exec.CommandContext(ctx, d.chartproof, "verify", ref, "--policy", policyFile, "--plain-http").CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Printf("       %s\n", line)
	}
	fmt.Printf("RESULT self-verify verified=%t chart=%s\n", err == nil, s.ChartDigest)
	if err != nil {
		return fmt.Errorf("chartproof verify refused chartproof's own chart: %w", err)
	}

	// Installed as users install charts: a VerifiedHelmRelease in the
	// platform namespace, acting as a ServiceAccount the platform team
	// grants what chartproof's install needs (cluster-wide RBAC and CRDs).
	installer := "chartproof-installer"
	if err := d.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: platformNamespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
	}}}); err != nil {
		return err
	}
	if err := d.k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: platformNamespace, Name: installer}}); err != nil {
		return err
	}
	if err := d.k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "chartproof-installer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: platformNamespace, Name: installer}},
	}); err != nil {
		return err
	}
	policy.TypeMeta = metav1.TypeMeta{}
	if err := d.k8s.Create(ctx, policy); err != nil {
		return err
	}
	say("applied TrustPolicy %s/%s trusting chartproof's release key for %s/chartproof/**", platformNamespace, policy.Name, d.regHost)
	if err := d.k8s.Create(ctx, &chartproofv1.VerifiedHelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: platformNamespace, Name: "chartproof"},
		Spec: chartproofv1.VerifiedHelmReleaseSpec{
			Chart:              chartproofv1.ChartSource{URL: s.Chart, Version: s.Version, Insecure: true},
			TrustPolicyRef:     chartproofv1.TrustPolicyReference{Kind: "TrustPolicy", Name: policy.Name},
			ServiceAccountName: installer,
		},
	}); err != nil {
		return err
	}
	say("applying VerifiedHelmRelease %s/chartproof: %s version %s, as ServiceAccount %s", platformNamespace, s.Chart, s.Version, installer)
	deadline := time.Now().Add(d.timeout)
	for {
		var vhr chartproofv1.VerifiedHelmRelease
		if err := d.k8s.Get(ctx, types.NamespacedName{Namespace: platformNamespace, Name: "chartproof"}, &vhr); err != nil {
			return err
		}
		ready := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		if ready != nil && ready.Status == metav1.ConditionTrue && vhr.Status.ObservedGeneration == vhr.Generation {
			var dep appsv1.Deployment
			if err := d.k8s.Get(ctx, types.NamespacedName{Namespace: platformNamespace, Name: "chartproof-manager"}, &dep); err != nil {
				return err
			}
			fmt.Printf("RESULT chartproof Ready=True digest=%s image=%s\n", vhr.Status.ResolvedDigest, dep.Spec.Template.Spec.Containers[0].Image)
			say("chartproof's own chart is installed: Deployment %s/chartproof-manager names %s (no kubelet runs here to start it)", platformNamespace, dep.Spec.Template.Spec.Containers[0].Image)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chartproof's own release was not Ready within %s; conditions: %+v", d.timeout, vhr.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond) // polling the API server for a condition
	}
}
