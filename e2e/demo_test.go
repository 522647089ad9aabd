package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestDemo runs `make demo`'s program non-interactively (hack/demo --hold),
// and checks what it prints against the cluster it ran: the signed release
// is Ready with the printed digest and its objects stamped; the unsigned and
// tampered ones are refused with the printed reasons and installed nothing;
// chartproof's own chart, built, pushed and signed as `make image` does,
// passed `chartproof verify` and its Deployment names the built image by
// digest.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	bin := chartproofBin // built by TestMain
	demoBin := filepath.Join(dir, "demo")
	if out, err := exec.Command("go", "build", "-o", demoBin, "../hack/demo").CombinedOutput(); err != nil {
		t.Fatalf("go build demo: %v\n%s", err, out)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")

	// The demo builds chartproof's image (hack/image): minutes when Go's
	// build cache is cold, seconds after.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demoBin, "--hold", "--chartproof", bin, "--kubeconfig-out", kubeconfig)
	cmd.Dir = ".." // the demo reads config/ from the repository root
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Read until the demo holds, collecting its RESULT lines.
	results := map[string]map[string]string{}
	var printed strings.Builder
	resultLine := regexp.MustCompile(`^RESULT (\S+) (.*)$`)
	sc := bufio.NewScanner(stdout)
	held := false
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if m := resultLine.FindStringSubmatch(line); m != nil {
			fields := map[string]string{}
			for _, kv := range strings.Fields(m[2]) {
				k, v, _ := strings.Cut(kv, "=")
				fields[k] = v
			}
			results[m[1]] = fields
		}
		if strings.Contains(line, "holding until standard input is closed") {
			held = true
			break
		}
	}
	if !held {
		_ = cmd.Wait()
		t.Fatalf("the demo stopped before holding.\nstdout:\n%s\nstderr:\n%s", printed.String(), stderr.String())
	}

	want := map[string]struct{ ready, verified, reason string }{
		"hello":    {"True", "True", chartproofv1.ReasonVerified},
		"unsigned": {"False", "False", chartproofv1.ReasonNoSignature},
		"tampered": {"False", "False", chartproofv1.ReasonDigestMismatch},
		// Verified, aimed at kube-system: the API server refuses its
		// ServiceAccount (TEN-01).
		"escape": {"False", "True", chartproofv1.ReasonInstallFailed},
	}
	k8s := clusterClient(t, kubeconfig)
	for name, w := range want {
		got, ok := results[name]
		if !ok {
			t.Errorf("the demo printed no RESULT for %s:\n%s", name, printed.String())
			continue
		}
		if got["Ready"] != w.ready || got["Verified"] != w.verified || got["reason"] != w.reason {
			t.Errorf("printed %s: %v; want Ready=%s Verified=%s reason=%s", name, got, w.ready, w.verified, w.reason)
		}
		// What was printed is what the cluster says.
		var vhr chartproofv1.VerifiedHelmRelease
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: "demo", Name: name}, &vhr); err != nil {
			t.Fatal(err)
		}
		ready := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		verified := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified)
		released := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReleased)
		reason := verified.Reason
		if verified.Status == metav1.ConditionTrue && ready.Status == metav1.ConditionFalse && released != nil {
			reason = released.Reason
		}
		if string(ready.Status) != got["Ready"] || string(verified.Status) != got["Verified"] || reason != got["reason"] || vhr.Status.ResolvedDigest != got["digest"] {
			t.Errorf("cluster %s: Ready=%s Verified=%s reason=%s digest=%s; printed %v", name, ready.Status, verified.Status, verified.Reason, vhr.Status.ResolvedDigest, got)
		}
		var cm corev1.ConfigMap
		target := "demo"
		if vhr.Spec.TargetNamespace != "" {
			target = vhr.Spec.TargetNamespace
		}
		err := k8s.Get(ctx, types.NamespacedName{Namespace: target, Name: name + "-hello"}, &cm)
		switch {
		case w.ready == "True" && err != nil:
			t.Errorf("ConfigMap of %s: %v, want it installed", name, err)
		case w.ready == "True":
			if d := cm.Annotations[chartproofv1.AnnotationChartDigest]; d != got["digest"] {
				t.Errorf("ConfigMap of %s is stamped %q, want the printed digest %s", name, d, got["digest"])
			}
		case !apierrors.IsNotFound(err):
			t.Errorf("ConfigMap of %s: err %v, want NotFound: a refused chart installs nothing", name, err)
		}
	}

	// The sidecar the demo slipped into hello's Deployment was taken out.
	if got := results["sidecar"]; got["release"] != "hello" || got["removed"] != "true" {
		t.Errorf("printed sidecar: %v; want release=hello removed=true:\n%s", got, printed.String())
	}
	var dep appsv1.Deployment
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: "demo", Name: "hello-hello"}, &dep); err != nil {
		t.Fatal(err)
	}
	if c := dep.Spec.Template.Spec.Containers; len(c) != 1 || c[0].Name == "miner" {
		t.Errorf("hello's Deployment containers = %v; want the chart's one", c)
	}

	// chartproof shipped itself: its chart, signed as `make image` signs
	// it, passed `chartproof verify` and was installed by a
	// VerifiedHelmRelease, its Deployment naming the built image by
	// digest, stamped with the verified chart's digest.
	if got := results["self-verify"]; got["verified"] != "true" || !strings.HasPrefix(got["chart"], "sha256:") {
		t.Errorf("printed self-verify: %v; want verified=true and the chart's digest:\n%s", got, printed.String())
	}
	self := results["chartproof"]
	if self["Ready"] != "True" || self["digest"] != results["self-verify"]["chart"] || !strings.Contains(self["image"], "/chartproof/chartproof@sha256:") {
		t.Errorf("printed chartproof: %v; want Ready=True, the verified chart's digest and the image by digest", self)
	}
	var manager appsv1.Deployment
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: "chartproof-system", Name: "chartproof-manager"}, &manager); err != nil {
		t.Fatal(err)
	}
	if img := manager.Spec.Template.Spec.Containers[0].Image; img != self["image"] || manager.Annotations[chartproofv1.AnnotationChartDigest] != self["digest"] {
		t.Errorf("chartproof's Deployment names %s, stamped %q; printed %v", img, manager.Annotations[chartproofv1.AnnotationChartDigest], self)
	}

	// Let the demo stop, and check it stops cleanly.
	stdin.Close()
	rest := new(strings.Builder)
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exit: %v\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(rest.String(), "stopped everything cleanly") {
		t.Errorf("the demo's last words were %q, want it to report a clean stop", rest.String())
	}
}

func clusterClient(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, chartproofv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(fmt.Errorf("client for the demo's API server: %w", err))
	}
	return c
}
