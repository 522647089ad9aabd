package release

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

const (
	digestV1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digestV2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// testChart returns a new in-memory chart with a ConfigMap, a ServiceAccount,
// a Service, a Deployment and a pre-install hook ConfigMap. Helm modifies the
// chart it installs, so every Apply gets a new one.
func testChart() *chart.Chart {
	file := func(name, data string) *chart.File {
		return &chart.File{Name: "templates/" + name, Data: []byte(data)}
	}
	return &chart.Chart{
		Metadata: &chart.Metadata{
			APIVersion: chart.APIVersionV2,
			Name:       "demo",
			Version:    "0.1.0",
			AppVersion: "1.0.0",
			Type:       "application",
		},
		Values: map[string]any{"greeting": "hello"},
		Templates: []*chart.File{
			file("configmap.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  annotations:
    example.com/owner: team-a
data:
  greeting: {{ .Values.greeting | quote }}
`),
			file("serviceaccount.yaml", `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
`),
			file("service.yaml", `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app: {{ .Release.Name }}
  ports:
  - name: http
    port: 80
    targetPort: 8080
`),
			file("deployment.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      serviceAccountName: {{ .Release.Name }}
      containers:
      - name: app
        image: registry.example.com/demo@sha256:3333333333333333333333333333333333333333333333333333333333333333
`),
			file("hook.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-hook
  annotations:
    helm.sh/hook: pre-install
data:
  phase: pre-install
`),
		},
	}
}

// renderedObjects are the non-hook objects testChart renders for release
// name, empty for reading back.
func renderedObjects(namespace, name string) []client.Object {
	key := func(obj client.Object, name string) client.Object {
		obj.SetNamespace(namespace)
		obj.SetName(name)
		return obj
	}
	return []client.Object{
		key(&corev1.ConfigMap{}, name+"-config"),
		key(&corev1.ServiceAccount{}, name),
		key(&corev1.Service{}, name),
		key(&appsv1.Deployment{}, name),
	}
}

// hookObject is the pre-install hook testChart renders, empty for reading
// back.
func hookObject(namespace, name string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{}
	cm.SetNamespace(namespace)
	cm.SetName(name + "-hook")
	return cm
}

// testOwner is the UID of the VerifiedHelmRelease the tests act for.
const testOwner = "0b7d5b5e-6c1f-4a51-9d7e-3a1e4f5c6d7e"

func stampFor(digest string) Stamp {
	return Stamp{Release: "team-a/demo", Digest: digest, Owner: testOwner}
}

// stampOf returns the stamp annotations of obj, "" for a missing one.
func stampOf(obj client.Object) map[string]string {
	return map[string]string{
		chartproofv1.AnnotationRelease:     obj.GetAnnotations()[chartproofv1.AnnotationRelease],
		chartproofv1.AnnotationChartDigest: obj.GetAnnotations()[chartproofv1.AnnotationChartDigest],
	}
}

func wantStamp(s Stamp) map[string]string {
	return map[string]string{
		chartproofv1.AnnotationRelease:     s.Release,
		chartproofv1.AnnotationChartDigest: s.Digest,
	}
}

// checkStamped reads back every non-hook object of the release and checks
// that it carries stamp.
func checkStamped(t *testing.T, c client.Client, namespace, name string, stamp Stamp) {
	t.Helper()
	for _, obj := range renderedObjects(namespace, name) {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Errorf("reading %T %s: %v", obj, obj.GetName(), err)
			continue
		}
		if diff := cmp.Diff(wantStamp(stamp), stampOf(obj)); diff != "" {
			t.Errorf("%T %s: stamp mismatch (-want +got):\n%s", obj, obj.GetName(), diff)
		}
	}
}

// listReleases runs action.List as `helm list` in namespace would.
func listReleases(t *testing.T, namespace string) []*release.Release {
	t.Helper()
	list := action.NewList(helmCLI(t, namespace))
	list.All = true
	rels, err := list.Run()
	if err != nil {
		t.Fatalf("action.List.Run() error = %v", err)
	}
	return rels
}

// summary is what the tests compare of a release record.
type summary struct {
	Namespace, Name string
	Version         int
	Status          release.Status
}

func summarize(rels ...*release.Release) []summary {
	var out []summary
	for _, r := range rels {
		if r == nil {
			out = append(out, summary{})
			continue
		}
		s := summary{Namespace: r.Namespace, Name: r.Name, Version: r.Version}
		if r.Info != nil {
			s.Status = r.Info.Status
		}
		out = append(out, s)
	}
	return out
}

func TestApplyInstallsStampedObjects(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	stamp := stampFor(digestV1)
	rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stamp})
	if err != nil {
		t.Fatalf("Apply() error = %v", err)
	}
	if diff := cmp.Diff(summarize(&release.Release{Namespace: ns, Name: "demo", Version: 1, Info: &release.Info{Status: release.StatusDeployed}}), summarize(rel)); diff != "" {
		t.Errorf("Apply() release mismatch (-want +got):\n%s", diff)
	}

	checkStamped(t, c, ns, "demo", stamp)

	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo-config"}, cm); err != nil {
		t.Fatalf("reading ConfigMap: %v", err)
	}
	if got, want := cm.Annotations["example.com/owner"], "team-a"; got != want {
		t.Errorf("ConfigMap annotation example.com/owner = %q; want %q (the chart's own annotations are kept)", got, want)
	}
	if got, want := cm.Data["greeting"], "hello"; got != want {
		t.Errorf("ConfigMap greeting = %q; want %q", got, want)
	}

	hook := hookObject(ns, "demo")
	if err := c.Get(ctx, client.ObjectKeyFromObject(hook), hook); err != nil {
		t.Fatalf("reading the pre-install hook ConfigMap: %v", err)
	}
	if diff := cmp.Diff(wantStamp(Stamp{}), stampOf(hook)); diff != "" {
		t.Errorf("hook ConfigMap carries a stamp (-want +got):\n%s", diff)
	}
	if got, want := len(rel.Hooks), 1; got != want {
		t.Errorf("release has %d hooks; want %d", got, want)
	}
}

func TestApplyIsListedByHelm(t *testing.T) {
	ctx := testContext(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV1)}); err != nil {
		t.Fatalf("Apply() error = %v", err)
	}

	want := []summary{{Namespace: ns, Name: "demo", Version: 1, Status: release.StatusDeployed}}
	if diff := cmp.Diff(want, summarize(listReleases(t, ns)...)); diff != "" {
		t.Errorf("helm list mismatch (-want +got):\n%s", diff)
	}
}

func TestApplyUpgrades(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: map[string]any{"greeting": "hi"}, Stamp: stampFor(digestV1)}); err != nil {
		t.Fatalf("Apply() install error = %v", err)
	}

	steps := []struct {
		name         string
		values       map[string]any
		stamp        Stamp
		wantGreeting string
	}{
		{name: "new values and digest", values: map[string]any{"greeting": "bonjour"}, stamp: stampFor(digestV2), wantGreeting: "bonjour"},
		{name: "no values: the chart's default, not the last release's", values: nil, stamp: stampFor(digestV2), wantGreeting: "hello"},
	}
	for i, step := range steps {
		wantVersion := i + 2
		rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Values: step.values, Stamp: step.stamp})
		if err != nil {
			t.Fatalf("%s: Apply() error = %v", step.name, err)
		}
		want := []summary{{Namespace: ns, Name: "demo", Version: wantVersion, Status: release.StatusDeployed}}
		if diff := cmp.Diff(want, summarize(rel)); diff != "" {
			t.Errorf("%s: Apply() release mismatch (-want +got):\n%s", step.name, diff)
		}

		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo-config"}, cm); err != nil {
			t.Fatalf("%s: reading ConfigMap: %v", step.name, err)
		}
		if got := cm.Data["greeting"]; got != step.wantGreeting {
			t.Errorf("%s: ConfigMap greeting = %q; want %q", step.name, got, step.wantGreeting)
		}
		checkStamped(t, c, ns, "demo", step.stamp)

		got, err := m.Get(ctx, ns, "demo")
		if err != nil {
			t.Fatalf("%s: Get() error = %v", step.name, err)
		}
		if diff := cmp.Diff(want, summarize(got)); diff != "" {
			t.Errorf("%s: Get() mismatch (-want +got):\n%s", step.name, diff)
		}
	}

	history, err := action.NewHistory(helmCLI(t, ns)).Run("demo")
	if err != nil {
		t.Fatalf("helm history: %v", err)
	}
	wantHistory := []summary{
		{Namespace: ns, Name: "demo", Version: 1, Status: release.StatusSuperseded},
		{Namespace: ns, Name: "demo", Version: 2, Status: release.StatusSuperseded},
		{Namespace: ns, Name: "demo", Version: 3, Status: release.StatusDeployed},
	}
	if diff := cmp.Diff(wantHistory, summarize(history...)); diff != "" {
		t.Errorf("helm history mismatch (-want +got):\n%s", diff)
	}
}

func TestGetMissingRelease(t *testing.T) {
	ctx := testContext(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	rel, err := m.Get(ctx, ns, "missing")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get() = %v, %v; want an error wrapping ErrNotFound", summarize(rel), err)
	}
}

func TestUninstall(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV1)})
	if err != nil {
		t.Fatalf("Apply() error = %v", err)
	}
	d, err := StoredDigest(rel)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Uninstall(ctx, Location{Namespace: ns}, "demo", testOwner, &Trust{Revision: rel.Version, Digest: d}); err != nil {
		t.Fatalf("Uninstall() error = %v", err)
	}

	for _, obj := range renderedObjects(ns, "demo") {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
			t.Errorf("reading %T %s after Uninstall: error = %v; want NotFound", obj, obj.GetName(), err)
		}
	}
	// As with helm uninstall, a hook without a delete policy stays.
	hook := hookObject(ns, "demo")
	if err := c.Get(ctx, client.ObjectKeyFromObject(hook), hook); err != nil {
		t.Errorf("reading the hook ConfigMap after Uninstall: %v; want it kept", err)
	}
	if rel, err := m.Get(ctx, ns, "demo"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get() after Uninstall = %v, %v; want an error wrapping ErrNotFound", summarize(rel), err)
	}
	if rels := listReleases(t, ns); len(rels) != 0 {
		t.Errorf("helm list after Uninstall = %v; want none", summarize(rels...))
	}

	if err := m.Uninstall(ctx, Location{Namespace: ns}, "demo", testOwner, nil); err != nil {
		t.Errorf("Uninstall() of a missing release error = %v; want nil", err)
	}
}

func TestApplyRefusesPendingRelease(t *testing.T) {
	for _, status := range []release.Status{
		release.StatusPendingInstall,
		release.StatusPendingUpgrade,
		release.StatusPendingRollback,
		release.StatusUninstalling,
	} {
		t.Run(status.String(), func(t *testing.T) {
			ctx := testContext(t)
			c := testClient(t)
			ns := testNamespace(t)
			m := NewManager(testCluster(t), Options{})

			// The record an interrupted helm operation leaves behind.
			pending := &release.Release{
				Name:      "demo",
				Namespace: ns,
				Version:   1,
				Chart:     testChart(),
				Info:      &release.Info{Status: status, Description: "interrupted"},
				Labels:    ownerLabels(testOwner),
			}
			if err := helmCLI(t, ns).Releases.Create(pending); err != nil {
				t.Fatalf("storing a %s release: %v", status, err)
			}

			rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV1)})
			if !errors.Is(err, ErrPending) {
				t.Fatalf("Apply() = %v, %v; want an error wrapping ErrPending", summarize(rel), err)
			}

			got, err := m.Get(ctx, ns, "demo")
			if err != nil {
				t.Fatalf("Get() error = %v", err)
			}
			if diff := cmp.Diff(summarize(pending), summarize(got)); diff != "" {
				t.Errorf("release changed by a refused Apply (-want +got):\n%s", diff)
			}
			cm := &corev1.ConfigMap{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo-config"}, cm); !apierrors.IsNotFound(err) {
				t.Errorf("reading ConfigMap after a refused Apply: error = %v; want NotFound", err)
			}
		})
	}
}

func TestApplyReinstallsReleaseUninstalledWithHistory(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV1)}); err != nil {
		t.Fatalf("Apply() error = %v", err)
	}
	uninstall := action.NewUninstall(helmCLI(t, ns))
	uninstall.KeepHistory = true
	if _, err := uninstall.Run("demo"); err != nil {
		t.Fatalf("helm uninstall --keep-history: %v", err)
	}

	rel, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV2)})
	if err != nil {
		t.Fatalf("Apply() after uninstall error = %v", err)
	}
	want := []summary{{Namespace: ns, Name: "demo", Version: 2, Status: release.StatusDeployed}}
	if diff := cmp.Diff(want, summarize(rel)); diff != "" {
		t.Errorf("Apply() release mismatch (-want +got):\n%s", diff)
	}
	checkStamped(t, c, ns, "demo", stampFor(digestV2))
}

func TestApplyDoesNotCreateNamespace(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	m := NewManager(testCluster(t), Options{})

	const ns = "release-test-missing"
	if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV1)}); err == nil {
		t.Fatal("Apply() into a missing namespace error = nil; want an error")
	}
	if err := c.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("reading namespace %s after Apply: error = %v; want NotFound", ns, err)
	}
}

// TestApplyConcurrently installs releases in several namespaces at once
// through one Manager, which shares its discovery cache between calls.
func TestApplyConcurrently(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	m := NewManager(testCluster(t), Options{})

	namespaces := []string{testNamespace(t), testNamespace(t), testNamespace(t)}
	errs := make([]error, len(namespaces))
	var wg sync.WaitGroup
	for i, ns := range namespaces {
		wg.Go(func() {
			_, errs[i] = m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV1)})
		})
	}
	wg.Wait()
	for i, ns := range namespaces {
		if errs[i] != nil {
			t.Errorf("Apply() in %s error = %v", ns, errs[i])
			continue
		}
		checkStamped(t, c, ns, "demo", stampFor(digestV1))
	}
}

func TestApplyRefusesBadRequest(t *testing.T) {
	ctx := testContext(t)
	ns := testNamespace(t)
	m := NewManager(testCluster(t), Options{})

	good := func() Request {
		return Request{Namespace: ns, Name: "demo", Chart: testChart(), Stamp: stampFor(digestV1)}
	}
	tests := []struct {
		name   string
		modify func(*Request)
	}{
		{"no namespace", func(r *Request) { r.Namespace = "" }},
		{"no name", func(r *Request) { r.Name = "" }},
		{"no chart", func(r *Request) { r.Chart = nil }},
		{"chart without metadata", func(r *Request) { r.Chart.Metadata = nil }},
		{"no digest", func(r *Request) { r.Stamp.Digest = "" }},
		{"no release in stamp", func(r *Request) { r.Stamp.Release = "" }},
		{"stamp release without namespace", func(r *Request) { r.Stamp.Release = "demo" }},
		{"stamp release with empty name", func(r *Request) { r.Stamp.Release = "team-a/" }},
		{"stamp release with two slashes", func(r *Request) { r.Stamp.Release = "team-a/demo/x" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := good()
			tc.modify(&req)
			if rel, err := m.Apply(ctx, req); err == nil {
				t.Errorf("Apply() = %v, nil; want an error", summarize(rel))
			}
			if rel, err := m.Get(ctx, ns, "demo"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get() after a refused Apply = %v, %v; want an error wrapping ErrNotFound", summarize(rel), err)
			}
		})
	}
}
