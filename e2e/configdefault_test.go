package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testwebhook"
)

// renderKustomization builds dir with kustomize's Go API (krusty), as
// `kubectl apply -k dir` would (namespaces and CRDs first: kubectl's
// legacy order), and returns its objects in order.
func renderKustomization(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	resources, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// find returns the object of kind and name in objs, or fails.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("config/default has no %s %s", kind, name)
	return nil
}

// TestConfigDefault (issue 14, item 2): config/default, rendered with
// kustomize's Go API and applied to the test API server with server-side
// apply, as a platform team installs chartproof. Its Deployment passes the
// restricted Pod Security Standard (k8s.io/pod-security-admission's own
// checks), runs leader-elected with requests, limits and probes, and serves
// metrics over HTTPS with authentication and authorisation; a NetworkPolicy
// admits scrapers only; a Service exposes the metrics. The manager binary
// then runs as the Deployment says (its arguments, its ServiceAccount with
// the rights config/default bound to it, nothing else): a signed chart
// installs, and /metrics answers 401 without a token, 403 to an account
// not granted config/rbac's metrics reader, and 200 to one granted it.
func TestConfigDefault(t *testing.T) {
	ctx := context.Background()
	objs := renderKustomization(t, filepath.Join("..", "config", "default"))
	// The admission webhook calls the manager on loopback, for this
	// test's namespace only (narrowWebhook).
	apps := newNamespace(t, "e2e-config-default-")
	webhookPort := freePort(t)
	for _, o := range objs {
		if o.GetKind() == "ValidatingWebhookConfiguration" {
			var cfg admissionregistrationv1.ValidatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cfg); err != nil {
				t.Fatal(err)
			}
			if err := testwebhook.PointAt(&cfg, webhookPort); err != nil {
				t.Fatal(err)
			}
			narrowWebhook(t, &cfg, apps)
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			o.Object = m
			o.SetAPIVersion(admissionregistrationv1.SchemeGroupVersion.String())
			o.SetKind("ValidatingWebhookConfiguration")
		}
		o.SetManagedFields(nil)
		if err := k8s.Patch(ctx, o, client.Apply, client.FieldOwner("chartproof-e2e-install"), client.ForceOwnership); err != nil {
			t.Fatalf("server-side apply of %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}

	var deploy appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "Deployment", "chartproof-manager").Object, &deploy); err != nil {
		t.Fatal(err)
	}
	evaluator, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range evaluator.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()},
		&deploy.Spec.Template.ObjectMeta, &deploy.Spec.Template.Spec) {
		if !r.Allowed {
			t.Errorf("the manager's pod breaks the restricted Pod Security Standard: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
	ns := find(t, objs, "Namespace", managerNamespace)
	if got := ns.GetLabels()[psaapi.EnforceLevelLabel]; got != string(psaapi.LevelRestricted) {
		t.Errorf("namespace %s enforces %q; want restricted", managerNamespace, got)
	}
	if len(deploy.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers; want the manager alone", len(deploy.Spec.Template.Spec.Containers))
	}
	c := deploy.Spec.Template.Spec.Containers[0]
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v; want CPU and memory requests and a memory limit", c.Resources)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("probes: liveness %v, readiness %v; want both", c.LivenessProbe, c.ReadinessProbe)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container securityContext %+v; want a read-only root file system", sc)
	}
	for _, want := range []string{"--leader-elect", "--metrics-secure", "--webhook-port=9443"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("manager args %v; want %s", c.Args, want)
		}
	}
	netpol := find(t, objs, "NetworkPolicy", "chartproof-manager")
	if types, _, _ := unstructured.NestedStringSlice(netpol.Object, "spec", "policyTypes"); !slices.Contains(types, "Ingress") {
		t.Errorf("NetworkPolicy policyTypes %v; want Ingress", types)
	}
	svc := find(t, objs, "Service", "chartproof-manager-metrics")
	// config/prometheus's ServiceMonitor (its CRD is the Prometheus
	// Operator's, not served here): it selects that Service and scrapes
	// its HTTPS port with a token.
	monitor := find(t, renderKustomization(t, filepath.Join("..", "config", "prometheus")), "ServiceMonitor", "chartproof-manager")
	selector, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
	for k, v := range selector {
		if svc.GetLabels()[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s; the Service's labels are %v", k, v, svc.GetLabels())
		}
	}
	endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(endpoints) != 1 || len(ports) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v, Service ports %v; want one each", endpoints, ports)
	}
	endpoint, port := endpoints[0].(map[string]any), ports[0].(map[string]any)
	if endpoint["port"] != port["name"] || endpoint["scheme"] != "https" || endpoint["bearerTokenFile"] == nil {
		t.Errorf("ServiceMonitor endpoint %v; want port %v over https with the account's token", endpoint, port["name"])
	}

	// The manager as the Deployment runs it: its arguments, but loopback
	// addresses for its ports (startManagerAs's) and a temporary directory
	// for the TUF cache (the pod's emptyDir); out of a cluster the Lease's
	// namespace is given by flag.
	var args []string
	for _, a := range c.Args {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--metrics-bind-address", "--health-probe-bind-address":
			continue
		case "--tuf-cache-dir":
			a = name + "=" + t.TempDir()
		case "--webhook-port":
			a = name + "=" + strconv.Itoa(webhookPort)
		}
		args = append(args, a)
	}
	// Out of a cluster: the namespace of the Lease and of the webhook's
	// Secret, and the serving certificate's loopback address.
	args = append(args, "--leader-election-namespace="+managerNamespace, "--webhook-namespace="+managerNamespace, "--webhook-hosts=127.0.0.1")
	manager, metricsAddr := startManagerAs(t, deploy.Spec.Template.Spec.ServiceAccountName, args...)
	defer stopManager(t, manager)

	reg := startRegistry(t)
	digest, pubPEM, _ := pushSignedChart(t, reg.Host, "charts/hello", "1.0.0")
	mustCreate(t, newTrustPolicy(apps, "ci", reg.Host+"/charts/*", pubPEM))
	mustCreate(t, newRelease(apps, "hello", "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci"))
	vhr := waitCondition(t, manager, apps, "hello", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != digest || !inst.Verified {
		t.Errorf("status.installed %+v; want %s, verified", inst, digest)
	}
	checkInstalled(t, apps, "hello", digest)
	// The webhook config/default registers refuses an edit of what the
	// release deployed (the manager wrote its CA into the configuration);
	// the control twin, an unlabelled ConfigMap, is admitted.
	edit := client.RawPatch(types.MergePatchType, []byte(`{"data":{"message":"rewritten"}}`))
	waitFor(t, managerWait, "an edit of the release's ConfigMap refused", manager, func() (bool, string) {
		err := k8s.Patch(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "hello-hello"}}, edit)
		return err != nil && strings.Contains(err.Error(), chartproofv1.ReasonOwnedObjectProtected), fmt.Sprint(err)
	})
	plain := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "plain"}}
	mustCreate(t, plain)
	if err := k8s.Patch(ctx, plain, edit); err != nil {
		t.Errorf("control: editing an unlabelled ConfigMap: %v", err)
	}

	// /metrics over HTTPS (a self-signed certificate: no --metrics-cert-dir).
	scraper := newNamespace(t, "e2e-scraper-")
	for _, sa := range []string{"prometheus", "stranger"} {
		mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: scraper, Name: sa}})
	}
	reader := find(t, objs, "ClusterRole", "chartproof-metrics-reader")
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-metrics-reader-" + scraper},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.GetName()},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: scraper, Name: "prometheus"}},
	}
	mustCreate(t, binding)
	t.Cleanup(func() { _ = k8s.Delete(ctx, binding) })
	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the manager's self-signed certificate
	}}
	get := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "https://"+metricsAddr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := https.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(body)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: %d; want 401", code)
	}
	if code, _ := get(saToken(t, scraper, "stranger")); code != http.StatusForbidden {
		t.Errorf("GET /metrics as an account without the reader role: %d; want 403", code)
	}
	// The API server authorizes from its watch of RBAC objects: the
	// binding may take a moment to count.
	waitFor(t, managerWait, "the metrics reader served", manager, func() (bool, string) {
		code, body := get(saToken(t, scraper, "prometheus"))
		return code == http.StatusOK && strings.Contains(body, "chartproof_verifications_total"), fmt.Sprintf("HTTP %d", code)
	})
	deleteReleases(t, manager, apps, "hello")
}

// saToken returns a token of ServiceAccount ns/name.
func saToken(t *testing.T, ns, name string) string {
	t.Helper()
	expiry := int64(600)
	tr, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}
