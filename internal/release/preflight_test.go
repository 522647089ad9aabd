package release

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// preflightChart renders a ServiceAccount, a ConfigMap, a ClusterRole
// named clusterRole, and a List of the Services svc-a and svc-b.
func preflightChart(clusterRole string) *chart.Chart {
	return &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: "v2", Name: "preflight", Version: "1.0.0"},
		Templates: []*chart.File{
			{Name: "templates/sa.yaml", Data: []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n")},
			{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n")},
			{Name: "templates/cr.yaml", Data: []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: " + clusterRole + "\nrules: []\n")},
			{Name: "templates/svc.yaml", Data: []byte(`apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata:
    name: svc-a
  spec:
    ports: [{port: 80}]
- apiVersion: v1
  kind: Service
  metadata:
    name: svc-b
  spec:
    ports: [{port: 80}]
`)},
		},
	}
}

// TestPreflight: Apply, as an account that may do all a release does to
// ConfigMaps, create Services but read, patch and delete only svc-a, and
// nothing on ServiceAccounts or ClusterRoles, refuses with a
// MissingPermissionsError listing exactly what it lacks (the Services in
// the List included, the ClusterRole cluster-wide), and writes nothing:
// no record, no object. The control twin, the same account given the
// rights, installs.
func TestPreflight(t *testing.T) {
	ctx := testContext(t)
	c := testClient(t)
	ns := testNamespace(t)
	clusterRole := "preflight-" + ns
	t.Cleanup(func() { _ = c.Delete(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: clusterRole}}) })
	user := "system:serviceaccount:" + ns + ":tenant"
	lifecycle := []string{"get", "create", "patch", "delete"}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"*"}}, // Helm's records
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: lifecycle},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{"svc-a"}, Verbs: []string{"get", "patch", "delete"}},
		},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "tenant"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The API server authorizes from its own watch of RBAC objects.
	waitAllowed(t, c, user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "services", Name: "svc-a"})

	cfg := rest.CopyConfig(testCluster(t))
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	m := NewManager(cfg, Options{})
	_, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: preflightChart(clusterRole), Stamp: stampFor(digestV1)})
	var missing *MissingPermissionsError
	if !errors.As(err, &missing) || !errors.Is(err, ErrPermissionsMissing) {
		t.Fatalf("Apply() error = %v; want a MissingPermissionsError", err)
	}
	want := []string{
		"create serviceaccounts in " + ns,
		"get serviceaccounts sa in " + ns,
		"patch serviceaccounts sa in " + ns,
		"delete serviceaccounts sa in " + ns,
		"create clusterroles.rbac.authorization.k8s.io (cluster-wide)",
		"get clusterroles.rbac.authorization.k8s.io " + clusterRole + " (cluster-wide)",
		"patch clusterroles.rbac.authorization.k8s.io " + clusterRole + " (cluster-wide)",
		"delete clusterroles.rbac.authorization.k8s.io " + clusterRole + " (cluster-wide)",
		"get services svc-b in " + ns,
		"patch services svc-b in " + ns,
		"delete services svc-b in " + ns,
	}
	var got []string
	for _, p := range missing.Missing {
		got = append(got, p.String())
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("missing permissions (-want +got):\n%s", diff)
	}
	if s := missing.Summary(3); !strings.HasPrefix(s, "11 permissions missing: ") || !strings.HasSuffix(s, "; and 8 more") {
		t.Errorf("Summary(3) = %q; want the count, 3 of them, and 8 more", s)
	}
	if rels := listReleases(t, ns); len(rels) != 0 {
		t.Errorf("%d release records written; want none", len(rels))
	}
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "svc-a"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: clusterRole}},
	} {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
			t.Errorf("reading %T %s: error %v; want NotFound: nothing written", o, o.GetName(), err)
		}
	}

	// The control twin: every right given.
	role.Rules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"*"}, Verbs: []string{"*"}}}
	if err := c.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	grant := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-" + ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"*"}}},
	}
	grantBinding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: grant.Name},
		Subjects:   binding.Subjects,
	}
	for _, o := range []client.Object{grant, grantBinding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, o) })
	}
	waitAllowed(t, c, user, authorizationv1.ResourceAttributes{Verb: "delete", Group: rbacv1.GroupName, Resource: "clusterroles", Name: clusterRole})
	waitAllowed(t, c, user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "delete", Resource: "serviceaccounts", Name: "sa"})
	if _, err := m.Apply(ctx, Request{Namespace: ns, Name: "demo", Chart: preflightChart(clusterRole), Stamp: stampFor(digestV1)}); err != nil {
		t.Fatalf("control: Apply() error = %v", err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "svc-b"}}
	if err := c.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Errorf("control: reading Service svc-b: %v", err)
	}
}

// waitAllowed waits until the API server says user may do what attrs say.
func waitAllowed(t *testing.T, c client.Client, user string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &attrs}}
		if err := c.Create(ctx, review); err != nil {
			return false, err
		}
		return review.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("waiting until %s may %s %s %s: %v", user, attrs.Verb, attrs.Resource, attrs.Name, err)
	}
}
