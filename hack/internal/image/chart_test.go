package image

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestChartIsCurrent: charts/chartproof's generated files are what
// hack/genchart writes from config/default now (run `make generate`).
func TestChartIsCurrent(t *testing.T) {
	files, err := ChartFiles(module)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(module, ChartDir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/%s is not what config/default generates (%v): run `make generate`", ChartDir, name, err)
		}
	}
	crds, err := filepath.Glob(filepath.Join(module, ChartDir, "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range crds {
		if _, ok := files["crds/"+filepath.Base(path)]; !ok {
			t.Errorf("%s: not in config/default: run `make generate`", path)
		}
	}
}

// TestChartInstallsConfigDefault: the chart packaged as `make image` does
// (reproducibly), rendered by Helm's engine into a namespace, gives exactly config/default's
// objects (but its Namespace) in that namespace with the built image by
// digest, and config/default's CRDs.
func TestChartInstallsConfigDefault(t *testing.T) {
	const (
		namespace  = "platform"
		repository = "registry.example/chartproof"
		digest     = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	archive, err := PackageChart(module, "1.2.3", repository, digest, created)
	if err != nil {
		t.Fatal(err)
	}
	// Reproducible: packaged again at the same time, the same bytes; at
	// another, others (the time is in the archive).
	if again, err := PackageChart(module, "1.2.3", repository, digest, created); err != nil || !bytes.Equal(again, archive) {
		t.Errorf("packaged twice at one time: different archives (%v)", err)
	}
	if later, err := PackageChart(module, "1.2.3", repository, digest, created.Add(time.Second)); err != nil || bytes.Equal(later, archive) {
		t.Errorf("packaged at another time: the same archive (%v)", err)
	}
	c, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Version != "1.2.3" || c.Metadata.AppVersion != "1.2.3" {
		t.Errorf("packaged version %s, appVersion %s; want 1.2.3", c.Metadata.Version, c.Metadata.AppVersion)
	}
	values, err := chartutil.ToRenderValues(c, nil, chartutil.ReleaseOptions{Name: "chartproof", Namespace: namespace, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := engine.Render(c, values)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for name, text := range rendered {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(text, "\n---\n") {
			addObject(t, got, doc)
		}
	}

	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(module, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{}
	var wantCRDs []string
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		switch r.GetKind() {
		case "Namespace":
			continue
		case "CustomResourceDefinition":
			wantCRDs = append(wantCRDs, string(y))
			continue
		}
		text := strings.ReplaceAll(string(y), "namespace: chartproof-system", "namespace: "+namespace)
		text = strings.ReplaceAll(text, "image: chartproof:latest", "image: "+repository+"@"+digest)
		text = strings.ReplaceAll(text, "system:serviceaccount:chartproof-system:", "system:serviceaccount:"+namespace+":")
		addObject(t, want, text)
	}
	if len(want) < 10 {
		t.Fatalf("config/default has %d objects besides its CRDs and Namespace: the comparison proves little", len(want))
	}
	for key, obj := range want {
		if !reflect.DeepEqual(got[key], obj) {
			g, _ := yaml.Marshal(got[key])
			w, _ := yaml.Marshal(obj)
			t.Errorf("%s: the chart renders\n%s\nconfig/default has\n%s", key, g, w)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("%s: rendered by the chart, not in config/default", key)
		}
	}
	var gotCRDs []string
	for _, f := range c.CRDObjects() {
		gotCRDs = append(gotCRDs, string(f.File.Data))
	}
	slices.Sort(gotCRDs)
	slices.Sort(wantCRDs)
	if !slices.Equal(gotCRDs, wantCRDs) {
		t.Errorf("the chart has %d CRDs, config/default %d, or they differ", len(gotCRDs), len(wantCRDs))
	}
}

// addObject parses one YAML document into objects by kind, namespace and
// name; an empty document adds nothing.
func addObject(t *testing.T, objects map[string]any, doc string) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	if obj == nil {
		return
	}
	meta, _ := obj["metadata"].(map[string]any)
	key := obj["kind"].(string) + " " + strings.TrimSpace(stringOf(meta["namespace"])+"/"+stringOf(meta["name"]))
	if _, dup := objects[key]; dup {
		t.Fatalf("%s twice", key)
	}
	objects[key] = obj
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}
