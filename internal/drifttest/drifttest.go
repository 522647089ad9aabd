// Package drifttest holds the changes another writer makes to what a
// release deployed, shared by the drift tests and the drift benchmark: a
// chart with one object of each kind, each change, and how to tell the
// object is back as the chart renders it.
package drifttest

import (
	"context"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Templates are a chart's templates with one object of each kind the
// changes touch: a Deployment, a ConfigMap, a Secret from stringData, a
// Role and a RoleBinding, named after the release.
var Templates = map[string]string{
	"templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-settings}
data: {greeting: hello}
`,
	"templates/secret.yaml": `apiVersion: v1
kind: Secret
metadata: {name: {{ .Release.Name }}-token}
stringData: {token: s3cr3t}
`,
	"templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}-web}
spec:
  replicas: 1
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
      - name: app
        image: registry.example/app:1.0
        securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true}
`,
	"templates/rbac.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: {{ .Release.Name }}-reader}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: {{ .Release.Name }}-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: {{ .Release.Name }}-reader}
subjects:
- {kind: ServiceAccount, name: default}
`,
}

// Change is one kind of change another writer makes to a release's
// objects.
type Change struct {
	Name string
	// apply makes the change to release rel's objects in namespace ns.
	Apply func(ctx context.Context, c client.Client, ns, rel string) error
	// restored reports whether the object is back as the chart renders it.
	Restored func(ctx context.Context, c client.Client, ns, rel string) (bool, error)
}

// editAs reads obj, changes it and writes it back under "kubectl-edit",
// again when another writer (a Deployment's status) came in between.
func editAs(ctx context.Context, c client.Client, obj client.Object, change func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return c.Update(ctx, obj, client.FieldOwner("kubectl-edit"))
	})
}

// deploymentOf names release rel's Deployment.
func deploymentOf(ns, rel string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rel + "-web"}}
}

// getDeployment reads release rel's Deployment.
func getDeployment(ctx context.Context, c client.Client, ns, rel string) (*appsv1.Deployment, error) {
	d := deploymentOf(ns, rel)
	return d, c.Get(ctx, client.ObjectKeyFromObject(d), d)
}

// Changes are the changes issue 11 lists, each made as `kubectl edit`
// would (field manager "kubectl-edit") or, for the deletion, as `kubectl
// delete`.
var Changes = []Change{
	{
		Name: "sidecar container added",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			d := deploymentOf(ns, rel)
			return editAs(ctx, c, d, func() {
				d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "miner", Image: "evil.example/miner"})
			})
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			d, err := getDeployment(ctx, c, ns, rel)
			return err == nil && len(d.Spec.Template.Spec.Containers) == 1, err
		},
	},
	{
		Name: "image changed",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			d := deploymentOf(ns, rel)
			return editAs(ctx, c, d, func() { d.Spec.Template.Spec.Containers[0].Image = "evil.example/app:1.0" })
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			d, err := getDeployment(ctx, c, ns, rel)
			return err == nil && d.Spec.Template.Spec.Containers[0].Image == "registry.example/app:1.0", err
		},
	},
	{
		Name: "env var added",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			d := deploymentOf(ns, rel)
			return editAs(ctx, c, d, func() {
				d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LD_PRELOAD", Value: "/tmp/x.so"}}
			})
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			d, err := getDeployment(ctx, c, ns, rel)
			return err == nil && len(d.Spec.Template.Spec.Containers[0].Env) == 0, err
		},
	},
	{
		Name: "securityContext loosened",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			d := deploymentOf(ns, rel)
			return editAs(ctx, c, d, func() {
				yes := true
				sc := d.Spec.Template.Spec.Containers[0].SecurityContext
				sc.AllowPrivilegeEscalation, sc.Privileged = &yes, &yes
			})
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			d, err := getDeployment(ctx, c, ns, rel)
			if err != nil {
				return false, err
			}
			sc := d.Spec.Template.Spec.Containers[0].SecurityContext
			return sc.Privileged == nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, nil
		},
	},
	{
		Name: "Role rules widened",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rel + "-reader"}}
			return editAs(ctx, c, r, func() { r.Rules[0].Verbs = []string{"*"} })
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			r := &rbacv1.Role{}
			err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: rel + "-reader"}, r)
			return err == nil && slices.Equal(r.Rules[0].Verbs, []string{"get"}), err
		},
	},
	{
		Name: "RoleBinding subject added",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rel + "-reader"}}
			return editAs(ctx, c, b, func() {
				b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "system:authenticated"})
			})
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			b := &rbacv1.RoleBinding{}
			err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: rel + "-reader"}, b)
			return err == nil && len(b.Subjects) == 1, err
		},
	},
	{
		Name: "ConfigMap data changed",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rel + "-settings"}}
			return editAs(ctx, c, cm, func() { cm.Data["greeting"] = "pwned" })
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			cm := &corev1.ConfigMap{}
			err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: rel + "-settings"}, cm)
			return err == nil && cm.Data["greeting"] == "hello", err
		},
	},
	{
		Name: "Secret data changed",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rel + "-token"}}
			return editAs(ctx, c, s, func() { s.Data["token"] = []byte("stolen") })
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			s := &corev1.Secret{}
			err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: rel + "-token"}, s)
			return err == nil && string(s.Data["token"]) == "s3cr3t", err
		},
	},
	{
		Name: "object deleted",
		Apply: func(ctx context.Context, c client.Client, ns, rel string) error {
			return c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rel + "-settings"}})
		},
		Restored: func(ctx context.Context, c client.Client, ns, rel string) (bool, error) {
			cm := &corev1.ConfigMap{}
			err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: rel + "-settings"}, cm)
			if client.IgnoreNotFound(err) != nil {
				return false, err
			}
			return err == nil && cm.Data["greeting"] == "hello", nil
		},
	},
}
