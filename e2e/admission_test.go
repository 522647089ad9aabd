package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	cpadmission "github.com/chartproof/chartproof/internal/admission"
	"github.com/chartproof/chartproof/internal/testwebhook"
)

// TestAdmission (issue 16, first rule): the real kube-apiserver calls the
// manager's admission webhook over TLS, registered by config/webhook's
// configuration (narrowed to this test's namespace, so the package's other
// tests run unguarded), with the CA and serving certificate the manager
// made itself and the CA bundle it wrote into the configuration. What a verified release deployed, and its Helm
// release record, may be changed only by chartproof acting for it:
//   - a stamp forged on a new object is refused; chartproof's own install
//     and its drift correction are admitted;
//   - a patch injecting a sidecar, sent with the release's own
//     ServiceAccount (its token used directly, without the manager), is
//     refused with OwnedObjectProtected; its control twin, the same patch
//     to an unlabelled Deployment of the same namespace, is admitted;
//   - a ConfigMap edit, a delete, and a rewrite of the Helm record by
//     anyone else are refused, each reason asserted;
//   - a break-glass group's edit is admitted and recorded (a BreakGlass
//     event on the release, the metric), then corrected as drift;
//   - with the webhook down, the guarded objects cannot be changed (fail
//     closed) while an unlabelled object of the same namespace and a
//     labelled one in kube-system still are.
func TestAdmission(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t)
	digest, pubPEM, _ := pushSignedChart(t, reg.Host, "charts/hello", "1.0.0")
	apps := newNamespace(t, "e2e-admission-")
	// Namespaces for plain `helm install`: one labelled for enforcement,
	// its control twin not.
	enforced, unenforced := newNamespace(t, "e2e-enforced-"), newNamespace(t, "e2e-unenforced-")
	labelNamespace(t, enforced, cpadmission.LabelEnforce, "true")
	port := freePort(t)
	webhookConfig := registerWebhook(t, port, apps, enforced, unenforced)
	// The manager makes its own CA and serving certificate (for
	// 127.0.0.1: it runs outside the cluster) and writes the CA into the
	// configuration.
	manager, metricsAddr := startManager(t, "--webhook-port="+strconv.Itoa(port), "--webhook-namespace="+managerNamespace,
		"--webhook-hosts=127.0.0.1", "--admission-break-glass-groups=break-glass")

	// The webhook is live once a forged stamp is refused: the admin
	// creating an object labelled as a release's.
	forged := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "forged",
		Labels: map[string]string{chartproofv1.LabelOwner: "0f0e0d0c-0000-0000-0000-000000000000"}}}
	waitFor(t, managerWait, "a forged owner label refused", manager, func() (bool, string) {
		err := k8s.Create(ctx, forged.DeepCopy())
		if err == nil {
			_ = k8s.Delete(ctx, forged.DeepCopy())
			return false, "admitted"
		}
		return strings.Contains(err.Error(), chartproofv1.ReasonOwnedObjectProtected), err.Error()
	})

	mustCreate(t, newTrustPolicy(apps, "ci", reg.Host+"/charts/*", pubPEM))
	mustCreate(t, newRelease(apps, "hello", "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci"))
	t.Run("chartproof's own install is admitted", func(t *testing.T) {
		waitCondition(t, manager, apps, "hello", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
		checkInstalled(t, apps, "hello", digest)
	})

	name := types.NamespacedName{Namespace: apps, Name: "hello-hello"}
	tenant := impersonating(t, "system:serviceaccount:"+apps+":"+releaseServiceAccount, "system:serviceaccounts", "system:serviceaccounts:"+apps, "system:authenticated")
	sidecar := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"evil.example/miner:1"}]}}}}`)
	edit := []byte(`{"data":{"message":"rewritten"}}`)

	t.Run("the release's ServiceAccount used directly cannot inject a sidecar", func(t *testing.T) {
		err := tenant.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name}},
			client.RawPatch(types.StrategicMergePatchType, sidecar))
		wantRefused(t, err)
		// Control twin: the same patch, by the same account, to a
		// Deployment no release deployed.
		other := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "unmanaged"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "unmanaged"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "unmanaged"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}},
		}}
		mustCreate(t, other)
		if err := tenant.Patch(ctx, other, client.RawPatch(types.StrategicMergePatchType, sidecar)); err != nil {
			t.Errorf("control: the same patch to an unlabelled Deployment: %v", err)
		}
	})

	t.Run("others cannot edit, delete or rewrite the record", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name}}
		wantRefused(t, k8s.Patch(ctx, cm, client.RawPatch(types.MergePatchType, edit)))
		wantRefused(t, k8s.Delete(ctx, cm))
		records := helmRecords(t, apps, "hello")
		if len(records) != 1 {
			t.Fatalf("records %v, want one", records)
		}
		record := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: records[0]}}
		wantRefused(t, tenant.Patch(ctx, record, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"status":"superseded"}}}`))))
		// Control twin: the admin edits an unlabelled ConfigMap.
		plain := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "plain"}, Data: map[string]string{"message": "hello"}}
		mustCreate(t, plain)
		if err := k8s.Patch(ctx, plain, client.RawPatch(types.MergePatchType, edit)); err != nil {
			t.Errorf("control: editing an unlabelled ConfigMap: %v", err)
		}
	})

	t.Run("through subresources: a debug container or a relabel is refused, a status report is not", func(t *testing.T) {
		// A bare Pod stamped as a release's (created by break-glass: the
		// admin alone would be refused), and its unlabelled twin.
		oncall := impersonating(t, "oncall@example.com", "break-glass", "system:masters")
		pod := func(name string, labels map[string]string) *corev1.Pod {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: name, Labels: labels},
				Spec: corev1.PodSpec{ServiceAccountName: releaseServiceAccount, AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}
		}
		guardedPod := pod("guarded", map[string]string{chartproofv1.LabelOwner: "0f0e0d0c-0000-0000-0000-000000000000"})
		if err := oncall.Create(ctx, guardedPod); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = oncall.Delete(ctx, guardedPod) }()
		plainPod := pod("plain", nil)
		mustCreate(t, plainPod)
		// kubectl debug: an ephemeral container added.
		debug := func(p *corev1.Pod) error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
				return err
			}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
				EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "registry.example/debug:1"}})
			return k8s.SubResource("ephemeralcontainers").Update(ctx, p)
		}
		wantRefused(t, debug(guardedPod))
		if err := debug(plainPod); err != nil {
			t.Errorf("control: a debug container in an unlabelled Pod: %v", err)
		}
		// The status subresource of a Pod accepts label changes too.
		status := func(relabel bool) error {
			p := &corev1.Pod{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(guardedPod), p); err != nil {
				return err
			}
			p.Status.Message = "reported"
			if relabel {
				delete(p.Labels, chartproofv1.LabelOwner)
			}
			return k8s.Status().Update(ctx, p)
		}
		wantRefused(t, status(true))
		if err := status(false); err != nil {
			t.Errorf("control: a status report on the guarded Pod: %v", err)
		}
	})

	t.Run("break-glass is admitted, recorded, then corrected", func(t *testing.T) {
		// RBAC lets the on-call engineer edit ConfigMaps in the namespace;
		// the break-glass group is what lets them touch what the release
		// deployed.
		mustCreate(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "oncall"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "patch"}}}})
		mustCreate(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "oncall"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "oncall"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "oncall@example.com"}}})
		oncall := impersonating(t, "oncall@example.com", "break-glass", "system:authenticated")
		// Control twin: the same edit by the same user outside the group.
		wantRefused(t, impersonating(t, "oncall@example.com", "system:authenticated").Patch(ctx,
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name}}, client.RawPatch(types.MergePatchType, edit)))
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name}}
		if err := oncall.Patch(ctx, cm, client.RawPatch(types.MergePatchType, edit)); err != nil {
			t.Fatalf("break-glass edit: %v", err)
		}
		waitFor(t, managerWait, "a BreakGlass event on the release", manager, func() (bool, string) {
			var events eventsv1.EventList
			if err := k8s.List(ctx, &events, client.InNamespace(apps)); err != nil {
				return false, err.Error()
			}
			for _, e := range events.Items {
				if e.Regarding.Name == "hello" && e.Reason == chartproofv1.ReasonBreakGlass && strings.Contains(e.Note, "oncall@example.com") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d events", len(events.Items))
		})
		// Drift correction, chartproof acting, is admitted.
		waitFor(t, managerWait, "the ConfigMap corrected", manager, func() (bool, string) {
			if err := k8s.Get(ctx, name, cm); err != nil {
				return false, err.Error()
			}
			return cm.Data["message"] != "rewritten", fmt.Sprintf("message %q", cm.Data["message"])
		})
	})

	t.Run("decisions are counted", func(t *testing.T) {
		for _, series := range []string{
			`chartproof_admission_decisions_total{outcome="denied",reason="OwnedObjectProtected",rule="owned-objects"}`,
			`chartproof_admission_decisions_total{outcome="allowed",reason="BreakGlass",rule="owned-objects"}`,
			`chartproof_admission_decisions_total{outcome="allowed",reason="ChartproofActing",rule="owned-objects"}`,
		} {
			waitFor(t, managerWait, series+" >= 1", manager, func() (bool, string) {
				v, err := scrape(metricsAddr, series)
				if err != nil {
					return false, err.Error()
				}
				return v >= 1, fmt.Sprintf("value %v", v)
			})
		}
		// The certificate it made: 90 days, the CA a year.
		for cert, days := range map[string]float64{"serving": 90, "ca": 365} {
			series := `chartproof_webhook_certificate_expiry_timestamp_seconds{certificate="` + cert + `"}`
			v, err := scrape(metricsAddr, series)
			if left := (v - float64(time.Now().Unix())) / 86400; err != nil || left < days-1 || left > days {
				t.Errorf("%s: %v days left (%v); want about %v", series, left, err, days)
			}
		}
	})

	t.Run("a plain helm install into an enforced namespace is refused, leaving nothing", func(t *testing.T) {
		res := helmInstall(t, reg.Host, enforced)
		if res.code == 0 || !strings.Contains(res.stderr, chartproofv1.ReasonUnmanagedHelmRecord) || !strings.Contains(res.stderr, "admission webhook") {
			t.Errorf("helm install into %s: %s; want refused by the webhook with %s", enforced, res, chartproofv1.ReasonUnmanagedHelmRecord)
		}
		checkNothingInstalled(t, enforced, "plain")
		// Control twin: the same install where enforcement is off.
		if res := helmInstall(t, reg.Host, unenforced); res.code != 0 {
			t.Fatalf("control: helm install into %s: %s", unenforced, res)
		}
		var cm corev1.ConfigMap
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: unenforced, Name: "plain-hello"}, &cm); err != nil {
			t.Errorf("control: the chart's ConfigMap: %v", err)
		}
	})

	t.Run("tenancy is checked when a release or policy is applied", func(t *testing.T) {
		release := func(name string, edit func(*chartproofv1.VerifiedHelmRelease)) *chartproofv1.VerifiedHelmRelease {
			vhr := newRelease(apps, name, "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci")
			vhr.Spec.Suspend = true // judged at admission only
			edit(vhr)
			return vhr
		}
		for _, tc := range []struct {
			name   string
			obj    client.Object
			reason string // "" admitted
		}{
			{"another namespace's TrustPolicy", release("borrowed", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.TrustPolicyRef.Namespace = unenforced }),
				chartproofv1.ReasonCrossNamespaceReference},
			{"twin: its own namespace named", release("own", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.TrustPolicyRef.Namespace = apps }), ""},
			{"records where its account may not write", release("system", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.TargetNamespace = "kube-system" }),
				chartproofv1.ReasonTargetNamespaceForbidden},
			{"twin: a namespace its account may write", release("elsewhere", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.TargetNamespace = apps }), ""},
			{"no ServiceAccount, the manager has no default", release("anonymous", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.ServiceAccountName = "" }),
				chartproofv1.ReasonServiceAccountRequired},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := k8s.Create(ctx, tc.obj)
				if tc.reason == "" {
					if err != nil {
						t.Errorf("control: %v", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("got %v; want refused with %s", err, tc.reason)
				}
			})
		}
		t.Run("an Audit policy where a mandatory ClusterTrustPolicy binds", func(t *testing.T) {
			audit := newTrustPolicy(apps, "audit", reg.Host+"/charts/*", pubPEM)
			audit.Spec.Mode = chartproofv1.ModeAudit
			// Control twin first: no mandatory policy binds apps yet.
			if err := k8s.Create(ctx, audit.DeepCopy()); err != nil {
				t.Fatalf("control: an Audit policy where none binds: %v", err)
			}
			labelNamespace(t, apps, "e2e-admission-mandatory", apps)
			mandatory := &chartproofv1.ClusterTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "mandatory-" + apps},
				Spec: keyPolicySpec(reg.Host+"/charts/*", pubPEM)}
			mandatory.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"e2e-admission-mandatory": apps}}
			mustCreate(t, mandatory)
			t.Cleanup(func() { _ = k8s.Delete(context.Background(), mandatory) })
			audit.Name = "audit-too"
			waitFor(t, managerWait, "an Audit policy refused", manager, func() (bool, string) {
				err := k8s.Create(ctx, audit.DeepCopy())
				if err == nil {
					_ = k8s.Delete(ctx, audit.DeepCopy())
				}
				return err != nil && strings.Contains(err.Error(), chartproofv1.ReasonWeakerThanMandatory), fmt.Sprint(err)
			})
		})
	})

	// The manager of a later test reconciles every release left in the
	// cluster (and counts those that do not verify): none is left. Deleting
	// them is chartproof's own uninstall, admitted.
	deleteReleases(t, manager, apps, "hello", "own", "elsewhere")
	checkNothingInstalled(t, apps, "hello")
	// A guarded object for the webhook-down case, created by an exempt
	// system identity (its user name; the API server's matchConditions let
	// it through without asking the webhook; system:masters stands in for
	// the rights RBAC gives kube-controller-manager in a cluster).
	guarded := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "guarded",
		Labels: map[string]string{chartproofv1.LabelOwner: "0f0e0d0c-0000-0000-0000-000000000000"}}}
	if err := impersonating(t, "system:kube-controller-manager", "system:masters", "system:authenticated").Create(ctx, guarded); err != nil {
		t.Fatalf("an exempt system identity creating a labelled ConfigMap: %v", err)
	}
	stopManager(t, manager)
	t.Run("webhook down: guarded objects fail closed, nothing else is blocked", func(t *testing.T) {
		err := k8s.Patch(ctx, guarded, client.RawPatch(types.MergePatchType, edit))
		if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
			t.Errorf("editing a guarded ConfigMap with the webhook down: %v; want refused, the webhook unreachable", err)
		}
		plain := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "plain"}}
		if err := k8s.Patch(ctx, plain, client.RawPatch(types.MergePatchType, []byte(`{"data":{"message":"still admitted"}}`))); err != nil {
			t.Errorf("an unlabelled ConfigMap of the same namespace: %v", err)
		}
		system := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", GenerateName: "labelled-",
			Labels: map[string]string{chartproofv1.LabelOwner: "0f0e0d0c-0000-0000-0000-000000000000"}}}
		if err := k8s.Create(ctx, system); err != nil {
			t.Errorf("a labelled ConfigMap in kube-system: %v", err)
		} else {
			_ = k8s.Delete(ctx, system)
		}
	})

	t.Run("without the webhook, the API server's own policy still refuses a plain helm install", func(t *testing.T) {
		// The policy is applied while the (stopped) webhook still fails
		// closed; it answers first once the API server has it. Then the
		// webhook is removed altogether: the policy alone refuses.
		data, err := os.ReadFile(filepath.Join("..", "config", "webhook", "helm_records_policy.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		applyYAML(t, "helm_records_policy.yaml", data)
		refusedByPolicy := func() (bool, string) {
			res := helmInstall(t, reg.Host, enforced)
			return res.code != 0 && strings.Contains(res.stderr, chartproofv1.ReasonUnmanagedHelmRecord) &&
				strings.Contains(res.stderr, "ValidatingAdmissionPolicy"), res.String()
		}
		waitFor(t, managerWait, "the policy refusing a plain helm install", nil, refusedByPolicy)
		if err := k8s.Delete(ctx, webhookConfig); err != nil {
			t.Fatal(err)
		}
		if ok, res := refusedByPolicy(); !ok {
			t.Errorf("helm install with no webhook configured: %s; want refused by the policy", res)
		}
		checkNothingInstalled(t, enforced, "plain")
	})
}

// helmInstall runs a plain `helm install plain` of the chart in the
// registry at host into namespace ns, as the namespace's release
// ServiceAccount (which may create what the chart holds there).
func helmInstall(t *testing.T, host, ns string) result {
	t.Helper()
	cmd := exec.Command(tools.helm, "install", "plain", "oci://"+host+"/charts/hello", "--version", "1.0.0", "--plain-http",
		"--namespace", ns, "--kubeconfig", serviceAccountKubeconfig(t, ns, releaseServiceAccount))
	cmd.Env = isolatedEnv(t)
	return runCommand(t, cmd)
}

// labelNamespace sets label key=value on namespace ns.
func labelNamespace(t *testing.T, ns, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	if err := k8s.Patch(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// wantRefused fails unless err is the webhook's refusal.
func wantRefused(t *testing.T, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), chartproofv1.ReasonOwnedObjectProtected) {
		t.Errorf("got %v; want refused with %s", err, chartproofv1.ReasonOwnedObjectProtected)
	}
}

// impersonating is a client of the test API server acting as user in
// groups (the admin impersonates them, sending no extra).
func impersonating(t *testing.T, user string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// registerWebhook creates config/webhook's configuration (its file),
// calling the manager on 127.0.0.1:port (the API server cannot reach a
// Service here) without a CA bundle (the manager writes its own), narrowed
// to namespaces (narrowWebhook), and removes it when the test ends.
func registerWebhook(t *testing.T, port int, namespaces ...string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	cfg, err := testwebhook.Loopback("..", port)
	if err != nil {
		t.Fatal(err)
	}
	narrowWebhook(t, cfg, namespaces...)
	mustCreate(t, cfg)
	return cfg
}

// narrowWebhook narrows cfg's namespace selectors to namespaces (the
// shipped exclusion of kube-system kept), so the package's other tests run
// unguarded, and removes cfg when the test ends.
func narrowWebhook(t *testing.T, cfg *admissionregistrationv1.ValidatingWebhookConfiguration, namespaces ...string) {
	t.Helper()
	for i := range cfg.Webhooks {
		w := &cfg.Webhooks[i]
		w.NamespaceSelector.MatchExpressions = append(w.NamespaceSelector.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: append(namespaces, "kube-system"),
		})
	}
	t.Cleanup(func() {
		if err := k8s.Delete(context.Background(), cfg); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("removing the webhook configuration: %v", err)
		}
	})
}

// freePort is a free TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
