package release

import (
	"errors"
	"slices"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// crdChart is a chart "top" with a CRD in crds/, and subcharts "on" and
// "off" (disabled by its condition) with one each.
func crdChart() *chart.Chart {
	file := func(name, crd string) *chart.File {
		return &chart.File{Name: name, Data: []byte("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: " + crd + "\n")}
	}
	top := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: "v2", Name: "top", Version: "1.0.0", Dependencies: []*chart.Dependency{
			{Name: "on", Version: "0.1.0"},
			{Name: "off", Version: "0.1.0", Condition: "off.enabled"},
		}},
		Values: map[string]any{"off": map[string]any{"enabled": false}},
		Files:  []*chart.File{file("crds/top.yaml", "tops.example.test")},
	}
	for _, name := range []string{"on", "off"} {
		sub := &chart.Chart{
			Metadata: &chart.Metadata{APIVersion: "v2", Name: name, Version: "0.1.0"},
			Files:    []*chart.File{file("crds/crd.yaml", name+"s.example.test")},
		}
		top.AddDependency(sub)
	}
	return top
}

func names(t *testing.T, c *chart.Chart) []string {
	t.Helper()
	crds, err := ReplacedCRDs(c, Stamp{Release: "ns/rel", Digest: "sha256:d", Owner: "uid"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range crds {
		out = append(out, u.GetName())
		if u.GetLabels()[chartproofv1.LabelOwner] != "uid" || u.GetAnnotations()[chartproofv1.AnnotationChartDigest] != "sha256:d" {
			t.Errorf("%s not stamped: %v %v", u.GetName(), u.GetLabels(), u.GetAnnotations())
		}
	}
	slices.Sort(out)
	return out
}

// TestCRDFiles: the CRDs an action applies are the chart's and its enabled
// subcharts' (found on a processed copy: the chart given to Helm keeps its
// disabled dependency); keepReplaced puts those an action replaced in the
// chart's files, where a record, which keeps no subchart, holds them, and
// drops whatever the chart itself put there.
func TestCRDFiles(t *testing.T) {
	c := crdChart()
	files, err := crdFiles(Request{Chart: c, Values: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Filename)
	}
	slices.Sort(got)
	if want := []string{"top/charts/on/crds/crd.yaml", "top/crds/top.yaml"}; !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	if len(c.Dependencies()) != 2 || len(c.Metadata.Dependencies) != 2 {
		t.Errorf("the chart given lost dependencies: %d charts, %d in its metadata", len(c.Dependencies()), len(c.Metadata.Dependencies))
	}

	// A record's chart: no subcharts, the kept CRDs in its own files. A
	// file the chart itself put where chartproof keeps them is dropped.
	c.Files = append(c.Files, &chart.File{Name: replacedCRDsDir + "forged.yaml", Data: []byte(
		"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: forged.example.test\n")})
	keepReplaced(c, files)
	keepReplaced(c, files) // idempotent
	record := &chart.Chart{Metadata: c.Metadata, Files: c.Files}
	if got, want := names(t, record), []string{"ons.example.test", "tops.example.test"}; !slices.Equal(got, want) {
		t.Errorf("the record's CRDs %v, want %v", got, want)
	}
	// An action that replaced none (Create, Skip) keeps none.
	keepReplaced(c, nil)
	if got := names(t, &chart.Chart{Metadata: c.Metadata, Files: c.Files}); len(got) != 0 {
		t.Errorf("the record's CRDs after an action that replaced none: %v, want none", got)
	}
}

// TestInvalidCRD: anything but a named CustomResourceDefinition in crds/
// is refused with ErrInvalidCRD; its control twin, a CRD, is not.
func TestInvalidCRD(t *testing.T) {
	for name, doc := range map[string]string{
		"a Namespace":   "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: taken\n",
		"no name":       "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n",
		"not YAML":      "kind: [\n",
		"not an object": "- a\n- b\n",
	} {
		if _, err := parseCRDs([]chart.CRD{{Filename: "top/crds/x.yaml", File: &chart.File{Name: "crds/x.yaml", Data: []byte(doc)}}}, Stamp{}); !errors.Is(err, ErrInvalidCRD) {
			t.Errorf("%s: %v, want ErrInvalidCRD", name, err)
		}
	}
	crds, err := parseCRDs([]chart.CRD{{Filename: "top/crds/x.yaml", File: &chart.File{Name: "crds/x.yaml", Data: []byte(
		"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: xs.example.test\n  namespace: ignored\n")}}}, Stamp{})
	if err != nil || len(crds) != 1 || crds[0].GetNamespace() != "" {
		t.Errorf("a CRD: %v, %v; want it, without a namespace", crds, err)
	}
}
