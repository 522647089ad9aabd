package drift

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

const fm = "chartproof"

// manifest is what a chart rendered: the objects every case installs.
const manifest = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: registry.example/app:1.0
        securityContext:
          allowPrivilegeEscalation: false
          runAsNonRoot: true
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {token: s3cr3t}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
- {kind: ServiceAccount, name: web}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: NAMESPACE-guard}
webhooks:
- name: guard.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  clientConfig:
    service: {name: guard, namespace: NAMESPACE, path: /validate}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps], scope: Namespaced}
  namespaceSelector:
    matchLabels: {never: match}
`

// install creates the manifest's objects in a new namespace the way Helm
// does (a create under chartproof's field manager) and returns them.
func install(t *testing.T, c client.Client) (string, []*unstructured.Unstructured) {
	t.Helper()
	return installAs(t, c, fm)
}

// edit changes one object as another writer would: read it, change it,
// write it back under manager (kubectl edit's is "kubectl-edit").
func edit(t *testing.T, c client.Client, kind, namespace, name, manager string, change func(obj map[string]any)) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkOf(kind))
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: name}, u); err != nil {
		t.Fatalf("reading %s %s: %v", kind, name, err)
	}
	change(u.Object)
	if err := c.Update(t.Context(), u, client.FieldOwner(manager)); err != nil {
		t.Fatalf("editing %s %s: %v", kind, name, err)
	}
}

var kinds = map[string]schema.GroupVersionKind{
	"Deployment":                     {Group: "apps", Version: "v1", Kind: "Deployment"},
	"ConfigMap":                      {Version: "v1", Kind: "ConfigMap"},
	"Secret":                         {Version: "v1", Kind: "Secret"},
	"Role":                           {Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"},
	"RoleBinding":                    {Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
	"ValidatingWebhookConfiguration": {Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"},
}

func gvkOf(kind string) schema.GroupVersionKind {
	return kinds[kind]
}

type summary struct {
	Object, Type, Path, Manager string
}

// inNamespace is want with "NS" in its object names replaced by ns.
func inNamespace(ns string, want ...summary) []summary {
	var out []summary
	for _, w := range want {
		w.Object = strings.ReplaceAll(w.Object, "NS", ns)
		out = append(out, w)
	}
	return out
}

func summarize(objs []Object) []summary {
	var out []summary
	for _, o := range objs {
		for _, ch := range o.Changes {
			out = append(out, summary{o.ID(), string(ch.Type), ch.Path, ch.Manager})
		}
	}
	return out
}

func get(t *testing.T, c client.Client, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkOf(kind))
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("reading %s %s: %v", kind, name, err)
	}
	return u
}

// field reads a field of a live object as JSON-like data.
func field(t *testing.T, c client.Client, kind, ns, name string, path ...string) any {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(get(t, c, kind, ns, name).Object, path...)
	if err != nil {
		t.Fatalf("reading %v of %s %s: %v", path, kind, name, err)
	}
	return v
}

// container is the first container of a Deployment, not a copy.
func container(obj map[string]any) map[string]any {
	list, _, _ := unstructured.NestedFieldNoCopy(obj, "spec", "template", "spec", "containers")
	return list.([]any)[0].(map[string]any)
}

func setContainers(obj map[string]any, f func([]any) []any) {
	list, _, _ := unstructured.NestedSlice(obj, "spec", "template", "spec", "containers")
	_ = unstructured.SetNestedSlice(obj, f(list), "spec", "template", "spec", "containers")
}

// TestDetectAndCorrect makes each change of issue 11's list as another
// writer, checks that Detect reports exactly it, that Correct restores the
// object (read back), and that Detect is then quiet. The first case is the
// control: the installed objects with no change are not drift.
func TestDetectAndCorrect(t *testing.T) {
	c := testClient(t)
	cases := []struct {
		name   string
		change func(t *testing.T, ns string)
		want   []summary
		check  func(t *testing.T, ns string)
	}{
		{name: "no change"},
		{
			name: "sidecar container added",
			change: func(t *testing.T, ns string) {
				edit(t, c, "Deployment", ns, "web", "kubectl-edit", func(o map[string]any) {
					setContainers(o, func(l []any) []any {
						return append(l, map[string]any{"name": "sidecar", "image": "evil.example/miner:latest"})
					})
				})
			},
			want: []summary{{"Deployment NS/web", "Added", "/spec/template/spec/containers/1", "kubectl-edit"}},
			check: func(t *testing.T, ns string) {
				if got := len(field(t, c, "Deployment", ns, "web", "spec", "template", "spec", "containers").([]any)); got != 1 {
					t.Errorf("containers after correction = %d, want 1", got)
				}
			},
		},
		{
			name: "image changed",
			change: func(t *testing.T, ns string) {
				edit(t, c, "Deployment", ns, "web", "kubectl-edit", func(o map[string]any) {
					container(o)["image"] = "evil.example/app:1.0"
				})
			},
			want: []summary{{"Deployment NS/web", "Changed", "/spec/template/spec/containers/0/image", "kubectl-edit"}},
			check: func(t *testing.T, ns string) {
				if got := container(get(t, c, "Deployment", ns, "web").Object)["image"]; got != "registry.example/app:1.0" {
					t.Errorf("image after correction = %v", got)
				}
			},
		},
		{
			name: "env var added",
			change: func(t *testing.T, ns string) {
				edit(t, c, "Deployment", ns, "web", "kubectl-edit", func(o map[string]any) {
					container(o)["env"] = []any{map[string]any{"name": "LD_PRELOAD", "value": "/tmp/x.so"}}
				})
			},
			want: []summary{{"Deployment NS/web", "Added", "/spec/template/spec/containers/0/env", "kubectl-edit"}},
			check: func(t *testing.T, ns string) {
				if env, ok := container(get(t, c, "Deployment", ns, "web").Object)["env"]; ok {
					t.Errorf("env after correction = %v, want none", env)
				}
			},
		},
		{
			name: "securityContext loosened",
			change: func(t *testing.T, ns string) {
				edit(t, c, "Deployment", ns, "web", "kubectl-edit", func(o map[string]any) {
					sc := container(o)["securityContext"].(map[string]any)
					sc["allowPrivilegeEscalation"] = true
					sc["privileged"] = true
				})
			},
			// The API server refuses to merge the chart's fields with
			// these (privileged with no privilege escalation): both are
			// judged from the live object's managers.
			want: []summary{
				{"Deployment NS/web", "Changed", "/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation", "kubectl-edit"},
				{"Deployment NS/web", "Added", "/spec/template/spec/containers/0/securityContext/privileged", "kubectl-edit"},
			},
			check: func(t *testing.T, ns string) {
				sc := container(get(t, c, "Deployment", ns, "web").Object)["securityContext"]
				want := map[string]any{"allowPrivilegeEscalation": false, "runAsNonRoot": true}
				if diff := cmp.Diff(want, sc); diff != "" {
					t.Errorf("securityContext after correction (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "Role rules widened",
			change: func(t *testing.T, ns string) {
				edit(t, c, "Role", ns, "reader", "kubectl-edit", func(o map[string]any) {
					o["rules"] = []any{map[string]any{"apiGroups": []any{"*"}, "resources": []any{"*"}, "verbs": []any{"*"}}}
				})
			},
			want: []summary{
				{"Role NS/reader", "Changed", "/rules/0/apiGroups/0", "kubectl-edit"},
				{"Role NS/reader", "Changed", "/rules/0/resources/0", "kubectl-edit"},
				{"Role NS/reader", "Changed", "/rules/0/verbs/0", "kubectl-edit"},
			},
			check: func(t *testing.T, ns string) {
				want := []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"configmaps"}, "verbs": []any{"get"}}}
				if diff := cmp.Diff(want, field(t, c, "Role", ns, "reader", "rules")); diff != "" {
					t.Errorf("rules after correction (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "RoleBinding subject added",
			change: func(t *testing.T, ns string) {
				edit(t, c, "RoleBinding", ns, "reader", "kubectl-edit", func(o map[string]any) {
					o["subjects"] = append(o["subjects"].([]any), map[string]any{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"})
				})
			},
			want: []summary{{"RoleBinding NS/reader", "Changed", "/subjects/1", "kubectl-edit"}},
			check: func(t *testing.T, ns string) {
				if got := len(field(t, c, "RoleBinding", ns, "reader", "subjects").([]any)); got != 1 {
					t.Errorf("subjects after correction = %d, want 1", got)
				}
			},
		},
		{
			name: "ConfigMap data changed and a key added",
			change: func(t *testing.T, ns string) {
				edit(t, c, "ConfigMap", ns, "settings", "kubectl-edit", func(o map[string]any) {
					o["data"] = map[string]any{"greeting": "pwned", "extra": "x"}
				})
			},
			want: []summary{
				{"ConfigMap NS/settings", "Changed", "/data/greeting", "kubectl-edit"},
				{"ConfigMap NS/settings", "Added", "/data/extra", "kubectl-edit"},
			},
			check: func(t *testing.T, ns string) {
				if diff := cmp.Diff(map[string]any{"greeting": "hello"}, field(t, c, "ConfigMap", ns, "settings", "data")); diff != "" {
					t.Errorf("data after correction (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "Secret data changed",
			change: func(t *testing.T, ns string) {
				edit(t, c, "Secret", ns, "token", "kubectl-edit", func(o map[string]any) {
					o["data"] = map[string]any{"token": base64.StdEncoding.EncodeToString([]byte("stolen"))}
				})
			},
			want: []summary{{"Secret NS/token", "Changed", "/data/token", "kubectl-edit"}},
			check: func(t *testing.T, ns string) {
				want := map[string]any{"token": base64.StdEncoding.EncodeToString([]byte("s3cr3t"))}
				if diff := cmp.Diff(want, field(t, c, "Secret", ns, "token", "data")); diff != "" {
					t.Errorf("data after correction (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "object deleted",
			change: func(t *testing.T, ns string) {
				if err := c.Delete(t.Context(), get(t, c, "ConfigMap", ns, "settings")); err != nil {
					t.Fatal(err)
				}
			},
			want: []summary{{"ConfigMap NS/settings", "Missing", "", ""}},
			check: func(t *testing.T, ns string) {
				if got := field(t, c, "ConfigMap", ns, "settings", "data", "greeting"); got != "hello" {
					t.Errorf("recreated ConfigMap greeting = %v", got)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, objs := install(t, c)
			opts := Options{FieldManager: fm}
			if tc.change != nil {
				tc.change(t, ns)
			}
			drifted, err := Detect(t.Context(), c, objs, opts)
			if err != nil {
				t.Fatalf("Detect() error = %v", err)
			}
			if diff := cmp.Diff(inNamespace(ns, tc.want...), summarize(drifted)); diff != "" {
				t.Fatalf("Detect() (-want +got):\n%s", diff)
			}
			if _, err := Correct(t.Context(), c, drifted, opts); err != nil {
				t.Fatalf("Correct() error = %v", err)
			}
			if tc.check != nil {
				tc.check(t, ns)
			}
			again, err := Detect(t.Context(), c, objs, opts)
			if err != nil {
				t.Fatalf("Detect() after Correct() error = %v", err)
			}
			if got := summarize(again); len(got) > 0 {
				t.Errorf("Detect() after Correct() = %v, want no drift", got)
			}
		})
	}
}

// TestNotDrift is the false-positive corpus: each change another writer
// legitimately makes must not be drift, and each has a twin, a change of
// the same object that is, so the quiet half cannot pass because nothing
// was looked at.
func TestNotDrift(t *testing.T) {
	c := testClient(t)
	hpa := []Rule{{Paths: []string{"/spec/replicas"}, Kind: "Deployment", Group: &[]string{"apps"}[0]}}
	cases := []struct {
		name   string
		ignore []Rule
		change func(t *testing.T, ns string)
		twin   summary
	}{
		{
			name:   "an HPA scales an ignored replicas",
			ignore: hpa,
			change: func(t *testing.T, ns string) { scale(t, c, ns, 5) },
			twin:   summary{"Deployment NS/web", "Changed", "/spec/replicas", "horizontal-pod-autoscaler"},
		},
		{
			name: "a CA injector fills in a webhook's caBundle",
			change: func(t *testing.T, ns string) {
				edit(t, c, "ValidatingWebhookConfiguration", "", ns+"-guard", "cainjector", func(o map[string]any) {
					hooks := o["webhooks"].([]any)
					cc := hooks[0].(map[string]any)["clientConfig"].(map[string]any)
					cc["caBundle"] = base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----"))
				})
			},
			twin: summary{"ValidatingWebhookConfiguration NS-guard", "Changed", "/webhooks/0/failurePolicy", "kubectl-edit"},
		},
		{
			name: "a controller labels and annotates an object",
			change: func(t *testing.T, ns string) {
				edit(t, c, "Deployment", ns, "web", "kube-controller-manager", func(o map[string]any) {
					u := unstructured.Unstructured{Object: o}
					a, l := u.GetAnnotations(), u.GetLabels()
					a["deployment.kubernetes.io/revision"] = "3"
					l["pod-template-hash"] = "abc"
					u.SetAnnotations(a)
					u.SetLabels(l)
					u.SetFinalizers([]string{"example.com/keep"})
				})
			},
			twin: summary{"Deployment NS/web", "Changed", "/metadata/annotations/meta.helm.sh~1release-name", "kubectl-edit"},
		},
	}
	twins := map[string]func(t *testing.T, ns string){
		"an HPA scales an ignored replicas": func(t *testing.T, ns string) { scale(t, c, ns, 5) },
		"a CA injector fills in a webhook's caBundle": func(t *testing.T, ns string) {
			edit(t, c, "ValidatingWebhookConfiguration", "", ns+"-guard", "kubectl-edit", func(o map[string]any) {
				o["webhooks"].([]any)[0].(map[string]any)["failurePolicy"] = "Ignore"
			})
		},
		"a controller labels and annotates an object": func(t *testing.T, ns string) {
			edit(t, c, "Deployment", ns, "web", "kubectl-edit", func(o map[string]any) {
				u := unstructured.Unstructured{Object: o}
				a := u.GetAnnotations()
				a["meta.helm.sh/release-name"] = "other"
				u.SetAnnotations(a)
			})
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, objs := install(t, c)
			opts := Options{FieldManager: fm, Ignore: tc.ignore}
			tc.change(t, ns)
			drifted, err := Detect(t.Context(), c, objs, opts)
			if err != nil {
				t.Fatalf("Detect() error = %v", err)
			}
			if got := summarize(drifted); len(got) > 0 {
				t.Errorf("Detect() = %v, want no drift", got)
			}
		})
		t.Run(tc.name+" (twin)", func(t *testing.T) {
			ns, objs := install(t, c)
			twins[tc.name](t, ns)
			drifted, err := Detect(t.Context(), c, objs, Options{FieldManager: fm})
			if err != nil {
				t.Fatalf("Detect() error = %v", err)
			}
			if diff := cmp.Diff(inNamespace(ns, tc.twin), summarize(drifted)); diff != "" {
				t.Errorf("Detect() (-want +got):\n%s", diff)
			}
		})
	}
}

// scale sets the web Deployment's replicas through its scale subresource,
// as an HPA does.
func scale(t *testing.T, c client.Client, ns string, replicas int32) {
	t.Helper()
	d := get(t, c, "Deployment", ns, "web")
	s := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	if err := c.SubResource("scale").Update(t.Context(), d, client.WithSubResourceBody(s), client.FieldOwner("horizontal-pod-autoscaler")); err != nil {
		t.Fatalf("scaling: %v", err)
	}
}

// installAs creates the manifest's objects like install, under another
// field manager: the `helm` CLI's, for a release chartproof adopted.
func installAs(t *testing.T, c client.Client, manager string) (string, []*unstructured.Unstructured) {
	t.Helper()
	ns := testNamespace(t, c)
	objs, err := Desired(strings.ReplaceAll(manifest, "NAMESPACE", ns), "demo", ns, func(u *unstructured.Unstructured) (bool, error) {
		return c.IsObjectNamespaced(u)
	})
	if err != nil {
		t.Fatalf("Desired() error = %v", err)
	}
	for _, o := range objs {
		if err := c.Create(t.Context(), o.DeepCopy(), client.FieldOwner(manager)); err != nil {
			t.Fatalf("creating %s: %v", ID(o), err)
		}
	}
	t.Cleanup(func() {
		for _, o := range objs {
			if o.GetNamespace() == "" {
				_ = c.Delete(context.Background(), o.DeepCopy())
			}
		}
	})
	return ns, objs
}

// TestFieldManagersAreNotTrusted: a field manager is a name any writer
// gives. Objects the `helm` CLI created (a release chartproof adopted) hold
// the API server's defaults under `helm`: not drift, because they are what
// the API server creates from the chart. A sidecar added under chartproof's
// own manager name (`kubectl patch --field-manager=chartproof`) is drift
// all the same; its twin, the same objects untouched, is quiet (the "no
// change" case of TestDetectAndCorrect).
func TestFieldManagersAreNotTrusted(t *testing.T) {
	c := testClient(t)
	t.Run("objects the helm CLI created", func(t *testing.T) {
		_, objs := installAs(t, c, "helm")
		drifted, err := Detect(t.Context(), c, objs, Options{FieldManager: fm})
		if err != nil {
			t.Fatal(err)
		}
		if got := summarize(drifted); len(got) > 0 {
			t.Errorf("Detect() = %v, want no drift", got)
		}
	})
	t.Run("objects the helm CLI created, then a sidecar", func(t *testing.T) {
		ns, objs := installAs(t, c, "helm")
		edit(t, c, "Deployment", ns, "web", "kubectl-edit", func(o map[string]any) {
			setContainers(o, func(l []any) []any { return append(l, map[string]any{"name": "sidecar", "image": "evil.example/x"}) })
		})
		drifted, err := Detect(t.Context(), c, objs, Options{FieldManager: fm})
		if err != nil {
			t.Fatal(err)
		}
		want := []summary{{"Deployment " + ns + "/web", "Added", "/spec/template/spec/containers/1", "kubectl-edit"}}
		if diff := cmp.Diff(want, summarize(drifted)); diff != "" {
			t.Errorf("Detect() (-want +got):\n%s", diff)
		}
	})
	t.Run("a sidecar under chartproof's name", func(t *testing.T) {
		ns, objs := install(t, c)
		edit(t, c, "Deployment", ns, "web", fm, func(o map[string]any) {
			setContainers(o, func(l []any) []any { return append(l, map[string]any{"name": "sidecar", "image": "evil.example/x"}) })
		})
		opts := Options{FieldManager: fm}
		drifted, err := Detect(t.Context(), c, objs, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := []summary{{"Deployment " + ns + "/web", "Added", "/spec/template/spec/containers/1", fm}}
		if diff := cmp.Diff(want, summarize(drifted)); diff != "" {
			t.Fatalf("Detect() (-want +got):\n%s", diff)
		}
		if _, err := Correct(t.Context(), c, drifted, opts); err != nil {
			t.Fatal(err)
		}
		if got := len(field(t, c, "Deployment", ns, "web", "spec", "template", "spec", "containers").([]any)); got != 1 {
			t.Errorf("containers after correction = %d, want 1", got)
		}
	})
}

// TestFinishedJobIsNotMissing: a Job with ttlSecondsAfterFinished is
// deleted by the TTL controller once it finished; its absence is not drift
// (recreating it would run it again). The twin, a Job without a TTL, is
// Missing once deleted.
func TestFinishedJobIsNotMissing(t *testing.T) {
	c := testClient(t)
	ns := testNamespace(t, c)
	job := func(name string, ttl bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "batch/v1", "kind": "Job",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"restartPolicy": "Never",
				"containers":    []any{map[string]any{"name": "migrate", "image": "registry.example/migrate:1"}},
			}}},
		}}
		if ttl {
			_ = unstructured.SetNestedField(u.Object, int64(60), "spec", "ttlSecondsAfterFinished")
		}
		return u
	}
	drifted, err := Detect(t.Context(), c, []*unstructured.Unstructured{job("with-ttl", true), job("without-ttl", false)}, Options{FieldManager: fm})
	if err != nil {
		t.Fatal(err)
	}
	want := []summary{{"Job " + ns + "/without-ttl", "Missing", "", ""}}
	if diff := cmp.Diff(want, summarize(drifted)); diff != "" {
		t.Errorf("Detect() (-want +got):\n%s", diff)
	}
}

func TestComparePointers(t *testing.T) {
	got := Options{Ignore: []Rule{{Paths: []string{"/a/2", "/a/10", "/a/1/b", "/a/1", "/b", "/a/1"}}}}.ignored(&unstructured.Unstructured{})
	want := []string{"/b", "/a/10", "/a/2", "/a/1/b", "/a/1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ignored() order (-want +got):\n%s", diff)
	}
}

// widgetCRD is a custom resource definition with a defaulted field, a list
// and a status subresource.
const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.drift.example.com}
spec:
  group: drift.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 3}
              tags: {type: array, items: {type: string}}
          status:
            type: object
            properties:
              ready: {type: boolean}
`

// widgetKind waits until the Widget kind is served.
func widgetKind(t *testing.T, c client.Client) {
	t.Helper()
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(widgetCRD), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("drift.example.com/v1")
		list.SetKind("WidgetList")
		err := c.List(t.Context(), list)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Widget kind is not served: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling the API server's discovery of a new kind
	}
}

// TestCustomResourcePatchedIsNotDrift: an operator merge-patches a custom
// resource the chart deployed, writing back the list the chart set and an
// annotation, and writes its status; the chart left a field to the CRD's
// default. None of it is drift. The twin merge-patch, which changes the
// list, is.
func TestCustomResourcePatchedIsNotDrift(t *testing.T) {
	c := testClient(t)
	widgetKind(t, c)
	for _, tc := range []struct {
		name  string
		patch string
		want  []summary
	}{
		{name: "the same list, an annotation", patch: `{"metadata":{"annotations":{"operator.example.com/seen":"yes"}},"spec":{"tags":["a","b"]}}`},
		{name: "another list (twin)", patch: `{"spec":{"tags":["a","b","c"]}}`,
			want: []summary{{"Widget NS/w", "Changed", "/spec/tags/2", "operator"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testNamespace(t, c)
			objs, err := Desired("apiVersion: drift.example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {tags: [a, b]}\n", "demo", ns,
				func(u *unstructured.Unstructured) (bool, error) { return c.IsObjectNamespaced(u) })
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Create(t.Context(), objs[0].DeepCopy(), client.FieldOwner(fm)); err != nil {
				t.Fatal(err)
			}
			w := objs[0].DeepCopy()
			if err := c.Patch(t.Context(), w, client.RawPatch(types.MergePatchType, []byte(tc.patch)), client.FieldOwner("operator")); err != nil {
				t.Fatal(err)
			}
			if err := c.Status().Patch(t.Context(), w, client.RawPatch(types.MergePatchType, []byte(`{"status":{"ready":true}}`)), client.FieldOwner("operator")); err != nil {
				t.Fatal(err)
			}
			drifted, err := Detect(t.Context(), c, objs, Options{FieldManager: fm})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(inNamespace(ns, tc.want...), summarize(drifted)); diff != "" {
				t.Errorf("Detect() (-want +got):\n%s", diff)
			}
		})
	}
}
