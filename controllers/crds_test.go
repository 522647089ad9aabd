package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
)

// crdYAML is a CustomResourceDefinition of kind in group, with a printer
// column per name in columns.
func crdYAML(group, kind string, columns ...string) string {
	plural := strings.ToLower(kind) + "s"
	var cols strings.Builder
	if len(columns) > 0 {
		cols.WriteString("    additionalPrinterColumns:\n")
		for _, c := range columns {
			fmt.Fprintf(&cols, "    - name: %s\n      type: string\n      jsonPath: .spec.%s\n", c, strings.ToLower(c))
		}
	}
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[3]s.%[1]s
spec:
  group: %[1]s
  names:
    kind: %[2]s
    listKind: %[2]sList
    plural: %[3]s
    singular: %[4]s
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
%[5]s    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
`, group, kind, plural, strings.ToLower(kind), cols.String())
}

// pushCRDChart pushes the hello chart at version with CRDs of group: a
// Widget in its crds/ directory (with columns), a Gadget in the crds/ of
// the subchart "extra" (enabled) and a Gizmo in that of "unused" (disabled
// by its condition), and a Widget object in its templates when
// .Values.widget. It returns the digest.
func (f *fixture) pushCRDChart(version, group string, columns ...string) string {
	f.t.Helper()
	files := testchart.Files("hello", version)
	files["Chart.yaml"] += `dependencies:
- name: extra
  version: 0.1.0
  condition: extra.enabled
- name: unused
  version: 0.1.0
  condition: unused.enabled
`
	files["values.yaml"] += "widget: true\nunused:\n  enabled: false\n"
	files["crds/widgets.yaml"] = crdYAML(group, "Widget", columns...)
	files["templates/widget.yaml"] = fmt.Sprintf(`{{- if .Values.widget }}
apiVersion: %s/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
spec:
  size: small
{{- end }}
`, group)
	for sub, kind := range map[string]string{"extra": "Gadget", "unused": "Gizmo"} {
		files["charts/"+sub+"/Chart.yaml"] = "apiVersion: v2\nname: " + sub + "\nversion: 0.1.0\n"
		files["charts/"+sub+"/crds/crd.yaml"] = crdYAML(group, kind, columns...)
	}
	archive, err := testchart.Build(testchart.Entries("hello", files))
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := f.reg.PushChart(f.repo, version, archive, "hello", version)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

var crdKind = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// getCRD returns the CRD named name, nil when there is none.
func getCRD(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(crdKind)
	err := k8s.Get(context.Background(), types.NamespacedName{Name: name}, u)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// crdColumns are the names of the printer columns of a CRD's first version.
func crdColumns(crd *unstructured.Unstructured) []string {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if len(versions) == 0 {
		return nil
	}
	cols, _, _ := unstructured.NestedSlice(versions[0].(map[string]any), "additionalPrinterColumns")
	var names []string
	for _, c := range cols {
		names = append(names, c.(map[string]any)["name"].(string))
	}
	return names
}

// grantCRDs grants the fixture's ServiceAccount every right on
// CustomResourceDefinitions (a ClusterRole, as a platform team would), and
// deletes, when the test ends, the CRDs of group that pushCRDChart holds.
func (f *fixture) grantCRDs(group string) {
	f.t.Helper()
	ctx := context.Background()
	name := "chartproof-test-crds-" + f.ns
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"*"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.ns, Name: testServiceAccount}}}
	for _, o := range []client.Object{role, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { _ = k8s.Delete(context.Background(), o) })
	}
	f.t.Cleanup(func() {
		for _, kind := range []string{"widgets", "gadgets", "gizmos"} {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(crdKind)
			u.SetName(kind + "." + group)
			_ = k8s.Delete(context.Background(), u)
		}
	})
}

// TestCRDs: the CRDs in a chart's crds/ directories (issue 13, item 4).
//   - They are applied as the release's ServiceAccount: without the right
//     on customresourcedefinitions an install with Create (the default) fails
//     and creates none; its twin with install.crds Skip installs (its
//     template's Widget turned off) and creates none either.
//   - Granted the right, the install creates the chart's and the enabled
//     subchart's CRDs, stamped with the owner label and the chart digest,
//     not the disabled subchart's; the chart's Widget is created after them.
//   - An upgrade with upgrade.crds unset (Skip) leaves them as they were; one
//     with CreateReplace replaces them with the new chart's.
//   - Under CreateReplace they are part of drift detection: a printer column
//     removed by hand is put back.
//   - Another release's CreateReplace does not take them over (its install
//     fails naming the owner label).
func TestCRDs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	group := f.ns + ".chartproof.test"
	widgets, gadgets, gizmos := "widgets."+group, "gadgets."+group, "gizmos."+group
	f.signLegacy(f.pushCRDChart("1.0.0", group, "Size"), f.key)
	f.signLegacy(f.pushCRDChart("1.1.0", group, "Size", "Colour"), f.key)
	f.policy("trusted", f.key, "")
	hour := metav1.Duration{Duration: time.Hour}
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Interval = hour })
	f.release("skip", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = hour
		v.Spec.Install = &chartproofv1.Install{CRDs: chartproofv1.CRDsSkip}
		v.Spec.Values = jsonValues(t, `{"widget":false}`)
	})
	vhr := f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonInstallFailed)
	if c := findCondition(vhr, chartproofv1.ConditionReleased); !strings.Contains(c.Message, "customresourcedefinitions") {
		t.Errorf("Released = %q; want the refused CRD named", c.Message)
	}
	f.waitReady("skip", 1, chartproofv1.ReasonInstallSucceeded)
	for _, name := range []string{widgets, gadgets, gizmos} {
		if getCRD(t, name) != nil {
			t.Fatalf("CRD %s exists while the ServiceAccount may not create it and Skip is set", name)
		}
	}

	// The platform team grants the right; the install's retry creates them.
	f.grantCRDs(group)
	vhr = f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	for _, name := range []string{widgets, gadgets} {
		crd := getCRD(t, name)
		if crd == nil {
			t.Fatalf("CRD %s not created", name)
		}
		if got := crd.GetLabels()[chartproofv1.LabelOwner]; got != string(vhr.UID) {
			t.Errorf("CRD %s owner label %q, want %q", name, got, vhr.UID)
		}
		if got := crd.GetAnnotations()[chartproofv1.AnnotationChartDigest]; got != vhr.Status.Installed.Digest {
			t.Errorf("CRD %s chart digest %q, want %q", name, got, vhr.Status.Installed.Digest)
		}
	}
	if getCRD(t, gizmos) != nil {
		t.Errorf("CRD %s of the disabled subchart was created", gizmos)
	}
	widget := &unstructured.Unstructured{}
	widget.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: "v1", Kind: "Widget"})
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "app-widget"}, widget); err != nil {
		t.Errorf("the chart's Widget: %v", err)
	}

	// Upgrade with upgrade.crds unset: Skip leaves the CRDs.
	setSpec := func(name string, mut func(*chartproofv1.VerifiedHelmRelease)) {
		t.Helper()
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			v := f.get(name)
			mut(v)
			return k8s.Update(ctx, v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	setSpec("app", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Chart.Version = "1.1.0" })
	f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
	for _, name := range []string{widgets, gadgets} {
		if got := crdColumns(getCRD(t, name)); strings.Join(got, ",") != "Size" {
			t.Errorf("CRD %s columns %v after an upgrade with Skip, want [Size] (left as they were)", name, got)
		}
	}

	// Upgrade with CreateReplace: replaced with the chart's.
	setSpec("app", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Upgrade = &chartproofv1.Upgrade{CRDs: chartproofv1.CRDsCreateReplace}
		v.Spec.Values = jsonValues(t, `{"message":"replace"}`)
	})
	f.waitReady("app", 3, chartproofv1.ReasonUpgradeSucceeded)
	for _, name := range []string{widgets, gadgets} {
		if got := crdColumns(getCRD(t, name)); strings.Join(got, ",") != "Size,Colour" {
			t.Errorf("CRD %s columns %v after an upgrade with CreateReplace, want [Size Colour]", name, got)
		}
	}

	// Drift: a column removed by hand, from the subchart's CRD (which
	// the record keeps only because CreateReplace put it there), is put
	// back.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		crd := getCRD(t, gadgets)
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		v0 := versions[0].(map[string]any)
		v0["additionalPrinterColumns"] = v0["additionalPrinterColumns"].([]any)[:1]
		if err := unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"); err != nil {
			return err
		}
		return k8s.Update(ctx, crd, client.FieldOwner("kubectl-edit"))
	}); err != nil {
		t.Fatal(err)
	}
	f.waitEvent("app", chartproofv1.ReasonDriftCorrected)
	waitFor(t, waitTimeout, "the removed column put back", func() (bool, string) {
		got := crdColumns(getCRD(t, gadgets))
		return strings.Join(got, ",") == "Size,Colour", fmt.Sprintf("columns %v", got)
	})

	// Another release's CreateReplace does not replace them.
	f.release("other", "1.1.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = hour
		v.Spec.Install = &chartproofv1.Install{CRDs: chartproofv1.CRDsCreateReplace}
		v.Spec.Values = jsonValues(t, `{"widget":false}`)
	})
	vhr = f.waitCondition("other", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonInstallFailed)
	if c := findCondition(vhr, chartproofv1.ConditionReleased); !strings.Contains(c.Message, "owner label of another VerifiedHelmRelease") {
		t.Errorf("other: Released = %q; want the CRD's owner named", c.Message)
	}
	if got := getCRD(t, widgets).GetLabels()[chartproofv1.LabelOwner]; got != string(f.get("app").UID) {
		t.Errorf("CRD %s owner label %q after another release's CreateReplace, want app's", widgets, got)
	}

	// Nor does a spec switched to CreateReplace without an action: drift
	// detection holds a release to the CRDs its last action replaced (the
	// record says which: none for "skip", installed with Skip), not to
	// what its spec says now.
	setSpec("skip", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Install = &chartproofv1.Install{CRDs: chartproofv1.CRDsCreateReplace}
	})
	requestReconcile(t, f, "skip")
	if got := getCRD(t, widgets).GetLabels()[chartproofv1.LabelOwner]; got != string(f.get("app").UID) {
		t.Errorf("CRD %s owner label %q after skip's spec named CreateReplace, want app's", widgets, got)
	}
}
