package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

const (
	managerNamespace      = "chartproof-system"
	managerServiceAccount = "chartproof-manager"
	managerWait           = 60 * time.Second
)

// TestManager runs the chartproof manager binary as a subprocess with only
// the rights config/rbac grants its ServiceAccount, and drives it through
// the API: a chart signed by the real cosign v3 is installed, exactly as
// verified and stamped; an unsigned chart is refused with NoSignature and
// nothing of it is installed; the refusal is counted in the metrics;
// deleting the releases uninstalls them; SIGTERM stops the manager cleanly.
func TestManager(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t)

	// Charts: hello 1.0.0 signed with cosign v3 (a Sigstore bundle, in the
	// referrers fallback tag of the distribution registry), and hello 2.0.0
	// unsigned in another repository.
	signedDigest, pubPEM, keyID := pushSignedChart(t, reg.Host, "charts/hello", "1.0.0")
	unsignedDigest := pushChart(t, reg.Host, "charts/unsigned", "2.0.0")

	// The manager, with leader election as config/manager runs it; out of
	// a cluster the Lease's namespace is given by flag.
	manager, metricsAddr := startManager(t, "--leader-elect", "--leader-election-namespace="+managerNamespace)

	apps := newNamespace(t, "e2e-apps-")
	mustCreate(t, newTrustPolicy(apps, "ci", reg.Host+"/charts/*", pubPEM))
	mustCreate(t, newRelease(apps, "hello", "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci"))
	mustCreate(t, newRelease(apps, "unsigned", "oci://"+reg.Host+"/charts/unsigned", "2.0.0", "ci"))
	anonymous := newRelease(apps, "anonymous", "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci")
	anonymous.Spec.ReleaseName, anonymous.Spec.ServiceAccountName = "anonymous", ""
	mustCreate(t, anonymous)

	t.Run("signed chart installed as verified", func(t *testing.T) {
		vhr := waitCondition(t, manager, apps, "hello", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
		if inst := vhr.Status.Installed; inst == nil || inst.Digest != signedDigest || !inst.Verified || inst.ChartVersion != "1.0.0" {
			t.Errorf("status.installed: got %+v, want digest %s, chart version 1.0.0, verified", inst, signedDigest)
		}
		if vhr.Status.ResolvedDigest != signedDigest {
			t.Errorf("status.resolvedDigest: got %s, want %s", vhr.Status.ResolvedDigest, signedDigest)
		}
		// The signature's manifest digest is not known here; TestCosignInterop
		// checks it.
		want := []acceptance{{Authority: "ci", KeyID: keyID, Layout: layoutBundle}}
		if diff := cmp.Diff(want, evidence(vhr), cmpopts.IgnoreFields(acceptance{}, "Signature")); diff != "" {
			t.Errorf("status.evidence (-want +got):\n%s", diff)
		}
		checkInstalled(t, apps, "hello", signedDigest)
	})

	t.Run("unsigned chart refused, nothing installed", func(t *testing.T) {
		vhr := waitCondition(t, manager, apps, "unsigned", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonNoSignature)
		ready := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != chartproofv1.ReasonNoSignature {
			t.Errorf("Ready: got %+v, want False NoSignature", ready)
		}
		if vhr.Status.Installed != nil || vhr.Status.ResolvedDigest != unsignedDigest {
			t.Errorf("status: installed %+v, resolvedDigest %s; want nothing installed, resolvedDigest %s",
				vhr.Status.Installed, vhr.Status.ResolvedDigest, unsignedDigest)
		}
		checkNothingInstalled(t, apps, "unsigned")
		// The refusal is an event too: the manager may create events with
		// the rights it has.
		waitFor(t, managerWait, "a NoSignature event about unsigned", manager, func() (bool, string) {
			var events eventsv1.EventList
			if err := k8s.List(ctx, &events, client.InNamespace(apps)); err != nil {
				return false, err.Error()
			}
			var seen []string
			for _, e := range events.Items {
				if e.Regarding.Name == "unsigned" && e.Reason == chartproofv1.ReasonNoSignature && e.Type == corev1.EventTypeWarning {
					return true, ""
				}
				seen = append(seen, e.Regarding.Name+":"+e.Reason)
			}
			return false, fmt.Sprintf("events %v", seen)
		})
	})

	t.Run("a release naming no ServiceAccount installs nothing", func(t *testing.T) {
		// The manager runs without --default-service-account, as
		// config/manager runs it: it never lends a release its own rights.
		waitCondition(t, manager, apps, "anonymous", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonServiceAccountRequired)
		checkNothingInstalled(t, apps, "anonymous")
	})

	t.Run("metrics count the verdicts", func(t *testing.T) {
		for _, series := range []string{
			`chartproof_verifications_total{reason="NoSignature",result="denied"}`,
			`chartproof_verifications_total{reason="Verified",result="allowed"}`,
		} {
			waitFor(t, managerWait, series+" >= 1", manager, func() (bool, string) {
				v, err := scrape(metricsAddr, series)
				if err != nil {
					return false, err.Error()
				}
				return v >= 1, fmt.Sprintf("value %v", v)
			})
		}
	})

	t.Run("deleting the releases uninstalls them", func(t *testing.T) {
		deleteReleases(t, manager, apps, "hello", "unsigned", "anonymous")
		checkNothingInstalled(t, apps, "hello")
	})

	stopManager(t, manager)
}

// TestManagerWithoutObjectWatch: the manager binary with
// --watch-deployed-objects=false, as a ServiceAccount bound to config/rbac's
// ClusterRole without its rule to list and watch every resource (the rule
// that flag lets a platform team remove). A signed chart installs; its
// ConfigMap, edited by hand, is found and corrected at the release's
// interval (DriftCorrected) and read back as the chart renders it; deleting
// the release uninstalls it; and no request of the manager is refused.
func TestManagerWithoutObjectWatch(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t)
	digest, pubPEM, _ := pushSignedChart(t, reg.Host, "charts/hello", "1.0.0")

	// config/rbac's ClusterRole without the rule on every resource.
	ensureNamespace(t, managerNamespace)
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := utilyaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	rules := role.Rules[:0]
	for _, r := range role.Rules {
		if !slices.Contains(r.Resources, "*") {
			rules = append(rules, r)
		}
	}
	if len(rules) != len(role.Rules)-1 {
		t.Fatalf("config/rbac/role.yaml: %d rules on every resource; want one", len(role.Rules)-len(rules))
	}
	const account = "chartproof-manager-nowatch"
	role = rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: account}, Rules: rules}
	for _, o := range []client.Object{
		&role,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: managerNamespace, Name: account}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: account},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: account},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: managerNamespace, Name: account}},
		},
	} {
		if err := k8s.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// A role left by an earlier run of this test on the same API server
	// gets today's rules.
	existing := &rbacv1.ClusterRole{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: account}, existing); err != nil {
		t.Fatal(err)
	}
	existing.Rules = rules
	if err := k8s.Update(ctx, existing); err != nil {
		t.Fatal(err)
	}
	manager, _ := startManagerAs(t, account, "--watch-deployed-objects=false")

	apps := newNamespace(t, "e2e-nowatch-")
	mustCreate(t, newTrustPolicy(apps, "ci", reg.Host+"/charts/*", pubPEM))
	vhr := newRelease(apps, "hello", "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci")
	vhr.Spec.Interval = metav1.Duration{Duration: 2 * time.Second}
	mustCreate(t, vhr)
	waitCondition(t, manager, apps, "hello", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	checkInstalled(t, apps, "hello", digest)

	cm := &corev1.ConfigMap{}
	key2 := types.NamespacedName{Namespace: apps, Name: "hello-hello"}
	if err := k8s.Get(ctx, key2, cm); err != nil {
		t.Fatal(err)
	}
	want := cm.Data
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data = map[string]string{"planted": "by hand"}
	if err := k8s.Patch(ctx, cm, patch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, managerWait, "the ConfigMap corrected, and a DriftCorrected event", manager, func() (bool, string) {
		if err := k8s.Get(ctx, key2, cm); err != nil {
			return false, err.Error()
		}
		if !cmp.Equal(want, cm.Data, cmpopts.EquateEmpty()) {
			return false, fmt.Sprintf("data %v", cm.Data)
		}
		var events eventsv1.EventList
		if err := k8s.List(ctx, &events, client.InNamespace(apps)); err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.Regarding.Name == "hello" && e.Reason == chartproofv1.ReasonDriftCorrected {
				return true, ""
			}
		}
		return false, "no DriftCorrected event"
	})

	deleteReleases(t, manager, apps, "hello")
	checkNothingInstalled(t, apps, "hello")
	stopManager(t, manager)
}

// stopManager sends the manager SIGTERM and checks that it stops its
// controllers and exits 0, and that everything it did, it did within its
// RBAC: no request was refused.
func stopManager(t *testing.T, manager *process) {
	t.Helper()
	if err := manager.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := manager.wait(45 * time.Second); err != nil {
		t.Errorf("manager after SIGTERM: %v, want exit 0\noutput:\n%s", err, manager.out.String())
	}
	if lines := grepLines(manager.out.String(), "forbidden"); len(lines) > 0 {
		t.Errorf("the manager was refused requests; config/rbac lacks rights:\n%s", strings.Join(lines, "\n"))
	}
}

// startManager runs the chartproof manager binary as a subprocess with only
// the rights config/rbac grants its ServiceAccount, with flags besides the
// kubeconfig and the addresses, and waits until it is ready. It returns the
// process, stopped when the test ends (its output logged if the test
// failed), and the address of its metrics endpoint.
func startManager(t *testing.T, flags ...string) (*process, string) {
	t.Helper()
	// The manager's identity: config/rbac in its namespace, and a token of
	// its ServiceAccount in a kubeconfig.
	ensureNamespace(t, managerNamespace)
	applyRBAC(t, filepath.Join("..", "config", "rbac"))
	return startManagerAs(t, managerServiceAccount, flags...)
}

// startManagerAs is startManager as ServiceAccount account of
// managerNamespace, whose rights the caller granted.
func startManagerAs(t *testing.T, account string, flags ...string) (*process, string) {
	t.Helper()
	kubeconfig := serviceAccountKubeconfig(t, managerNamespace, account)

	metricsAddr, probeAddr := freeAddr(t), freeAddr(t)
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=" + probeAddr,
		"--zap-log-level=info",
	}, flags...)
	cmd := exec.Command(chartproofBin, args...)
	cmd.Env = isolatedEnv(t)
	manager := startProcess(t, "chartproof manager", cmd)
	waitHTTP(t, managerWait, "http://"+probeAddr+"/readyz", manager)
	return manager, metricsAddr
}

// newNamespace creates a namespace named generateName plus a random suffix,
// grants its releases their ServiceAccount (grantReleases), and returns its
// name.
func newNamespace(t *testing.T, generateName string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: generateName}}
	mustCreate(t, ns)
	grantReleases(t, ns.Name)
	return ns.Name
}

// newTrustPolicy is a TrustPolicy in ns trusting publicKeyPEM (as authority
// "ci") for the repositories matching glob.
func newTrustPolicy(ns, name, glob, publicKeyPEM string) *chartproofv1.TrustPolicy {
	return &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       keyPolicySpec(glob, publicKeyPEM),
	}
}

// newRelease is a VerifiedHelmRelease of the chart at url and version, over
// plain HTTP, under TrustPolicy policy.
func newRelease(ns, name, url, version, policy string) *chartproofv1.VerifiedHelmRelease {
	return &chartproofv1.VerifiedHelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: chartproofv1.VerifiedHelmReleaseSpec{
			Chart:              chartproofv1.ChartSource{URL: url, Version: version, Insecure: true},
			TrustPolicyRef:     chartproofv1.TrustPolicyReference{Kind: "TrustPolicy", Name: policy},
			ServiceAccountName: releaseServiceAccount,
		},
	}
}

// evidence is the status.evidence of vhr, without the verification times.
func evidence(vhr *chartproofv1.VerifiedHelmRelease) []acceptance {
	var got []acceptance
	for _, e := range vhr.Status.Evidence {
		got = append(got, acceptance{Authority: e.Authority, KeyID: e.KeyID, Layout: e.Layout, Signature: e.Signature})
	}
	return got
}

// chartObjects are the objects the hello chart makes for release in ns.
func chartObjects(ns, release string) []client.Object {
	meta := metav1.ObjectMeta{Namespace: ns, Name: release + "-hello"}
	return []client.Object{
		&corev1.ConfigMap{ObjectMeta: meta},
		&corev1.Service{ObjectMeta: meta},
		&corev1.ServiceAccount{ObjectMeta: meta},
		&appsv1.Deployment{ObjectMeta: meta},
	}
}

// checkInstalled checks that release in ns is installed once: every object
// of the chart exists, stamped with the release and digest, and Helm keeps
// one revision of it.
func checkInstalled(t *testing.T, ns, release, digest string) {
	t.Helper()
	want := map[string]string{
		chartproofv1.AnnotationRelease:     ns + "/" + release,
		chartproofv1.AnnotationChartDigest: digest,
	}
	for _, o := range chartObjects(ns, release) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Errorf("%T %s: %v", o, o.GetName(), err)
			continue
		}
		got := map[string]string{}
		for k := range want {
			got[k] = o.GetAnnotations()[k]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%T %s stamp (-want +got):\n%s", o, o.GetName(), diff)
		}
	}
	if n := len(helmRecords(t, ns, release)); n != 1 {
		t.Errorf("Helm release records of %s: got %d, want 1", release, n)
	}
}

// checkNothingInstalled checks that no object of release's chart exists in
// ns, and no Helm revision of it.
func checkNothingInstalled(t *testing.T, ns, release string) {
	t.Helper()
	for _, o := range chartObjects(ns, release) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s of release %s: got %v, want NotFound", o, o.GetName(), release, err)
		}
	}
	if recs := helmRecords(t, ns, release); len(recs) != 0 {
		t.Errorf("Helm release records of %s: got %v, want none", release, recs)
	}
}

// deleteReleases deletes the releases names in ns, if they exist, and waits
// until the manager has finalized them (uninstalled) and they are gone.
func deleteReleases(t *testing.T, manager *process, ns string, names ...string) {
	t.Helper()
	ctx := context.Background()
	for _, name := range names {
		vhr := &chartproofv1.VerifiedHelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := k8s.Delete(ctx, vhr); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		waitFor(t, managerWait, name+" to be gone (finalizer done)", manager, func() (bool, string) {
			var vhr chartproofv1.VerifiedHelmRelease
			err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &vhr)
			if apierrors.IsNotFound(err) {
				return true, ""
			}
			return false, fmt.Sprintf("err %v, finalizers %v", err, vhr.Finalizers)
		})
	}
}

// helmRecords lists the names of the Secrets in which Helm keeps the
// revisions of release in ns.
func helmRecords(t *testing.T, ns, release string) []string {
	t.Helper()
	var secrets corev1.SecretList
	if err := k8s.List(context.Background(), &secrets, client.InNamespace(ns),
		client.MatchingLabels{"owner": "helm", "name": release}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range secrets.Items {
		names = append(names, s.Name)
	}
	return names
}

// waitCondition waits until release ns/name has condition condType with
// status (and reason, unless empty) for its current generation, and returns
// the release.
func waitCondition(t *testing.T, manager *process, ns, name, condType string, status metav1.ConditionStatus, reason string) *chartproofv1.VerifiedHelmRelease {
	t.Helper()
	var vhr chartproofv1.VerifiedHelmRelease
	waitFor(t, managerWait, fmt.Sprintf("%s %s=%s %s", name, condType, status, reason), manager, func() (bool, string) {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &vhr); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, condType)
		if c == nil {
			return false, fmt.Sprintf("no %s condition; conditions %+v", condType, vhr.Status.Conditions)
		}
		ok := c.Status == status && (reason == "" || c.Reason == reason) && c.ObservedGeneration == vhr.Generation
		return ok, fmt.Sprintf("%s=%s reason %s: %s", condType, c.Status, c.Reason, c.Message)
	})
	return &vhr
}

func mustCreate(t *testing.T, o client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), o); err != nil {
		t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
}

// ensureNamespace creates namespace name unless it exists (the API server
// is shared by every test of the package, and test runs with -count > 1).
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// applyRBAC creates every object of the YAML files in dir (kustomization.yaml
// aside), as the API server's admin. Objects that exist already (a previous
// run in the same API server) are kept: they came from the same files.
func applyRBAC(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += applyYAML(t, f, data)
	}
	if n == 0 {
		t.Fatalf("no objects in %s", dir)
	}
}

// releaseServiceAccount is the ServiceAccount config/samples/release-rbac.yaml
// grants a namespace's releases, and the one newRelease names.
const releaseServiceAccount = "chartproof-release"

// grantReleases applies config/samples/release-rbac.yaml to namespace ns, as
// a platform team would for a tenant's namespace: the releases of ns may act
// as releaseServiceAccount, with the rights it grants in ns only.
func grantReleases(t *testing.T, ns string) {
	t.Helper()
	path := filepath.Join("..", "config", "samples", "release-rbac.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if applyYAML(t, path, bytes.ReplaceAll(data, []byte("namespace: default"), []byte("namespace: "+ns))) == 0 {
		t.Fatalf("no objects in %s", path)
	}
}

// applyYAML creates the objects of a YAML stream read from file, keeping
// those that exist already, and returns how many it read.
func applyYAML(t *testing.T, file string, data []byte) int {
	t.Helper()
	n := 0
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := k8s.Create(context.Background(), &u); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s: creating %s %s: %v", file, u.GetKind(), u.GetName(), err)
		}
		n++
	}
	return n
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates to the
// test API server with a token of the ServiceAccount (TokenRequest API), and
// checks that the API server sees that identity.
func serviceAccountKubeconfig(t *testing.T, namespace, name string) string {
	t.Helper()
	ctx := context.Background()
	expiry := int64(3600)
	tr, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: restConfig.Host, CertificateAuthorityData: restConfig.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: name}
	cfg.CurrentContext = "default"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := review.Status.UserInfo.Username, "system:serviceaccount:"+namespace+":"+name; got != want {
		t.Fatalf("kubeconfig authenticates as %q, want %q", got, want)
	}
	return path
}

// scrape reads one series of the metrics endpoint at addr; it is an error
// when the series is absent.
func scrape(addr, series string) (float64, error) {
	code, body, err := httpGet("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("GET /metrics: status %d", code)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			return strconv.ParseFloat(m[1], 64)
		}
	}
	return 0, fmt.Errorf("%s is not in /metrics", series)
}

func grepLines(text, substr string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(strings.ToLower(l), substr) {
			out = append(out, l)
		}
	}
	return out
}
