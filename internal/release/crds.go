package release

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mitchellh/copystructure"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// crdResource is the API resource of CustomResourceDefinitions.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdEstablished bounds the wait for the CRDs an action applied to be
// served, as Helm's own install bounds it.
const crdEstablished = 60 * time.Second

// replacedCRDsDir holds, in the chart of a release record, the CRD files
// the install or upgrade that wrote the record replaced (CreateReplace):
// Helm's record keeps no subcharts, and the spec may have changed since.
// chartproof alone writes there: a chart's own files under it are dropped
// before every action (keepReplaced).
const replacedCRDsDir = ".chartproof/replaced-crds/"

// ReplacedCRDs returns the CustomResourceDefinitions the action that wrote a
// release record replaced with CreateReplace (none for Create or Skip),
// each document an object without a namespace, stamped as the post-renderer
// stamps the rendered objects (stamp's annotations, its owner label): what
// drift detection holds them to.
func ReplacedCRDs(c *chart.Chart, stamp Stamp) ([]*unstructured.Unstructured, error) {
	var files []chart.CRD
	for _, f := range c.Files {
		if name, ok := strings.CutPrefix(f.Name, replacedCRDsDir); ok {
			files = append(files, chart.CRD{Name: name, Filename: f.Name, File: f})
		}
	}
	return parseCRDs(files, stamp)
}

// ErrInvalidCRD is a document in a chart's crds/ directory that is not a
// CustomResourceDefinition chartproof can apply.
var ErrInvalidCRD = errors.New("invalid document in crds/")

// parseCRDs parses and stamps the CRD files of a chart. Anything else than
// a CustomResourceDefinition there is an error: Helm would create it outside
// the release, and never delete it.
func parseCRDs(files []chart.CRD, stamp Stamp) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	s := stamper{stamp: stamp}
	for _, crd := range files {
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(crd.File.Data)))
		for n := 1; ; n++ {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s document %d: %w: %w", crd.Filename, n, ErrInvalidCRD, err)
			}
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("%s document %d: %w: %w", crd.Filename, n, ErrInvalidCRD, err)
			}
			// Integers stay int64, as the API machinery decodes them.
			var obj map[string]any
			if err := utiljson.Unmarshal(js, &obj); err != nil {
				return nil, fmt.Errorf("%s document %d: %w: %w", crd.Filename, n, ErrInvalidCRD, err)
			}
			if obj == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			if gvk := u.GroupVersionKind(); gvk.Group != crdResource.Group || gvk.Kind != "CustomResourceDefinition" || u.GetName() == "" {
				return nil, fmt.Errorf("%s document %d: %w: %s %q, not a named apiextensions.k8s.io CustomResourceDefinition",
					crd.Filename, n, ErrInvalidCRD, u.GetAPIVersion()+" "+u.GetKind(), u.GetName())
			}
			if _, ok := obj["items"]; ok {
				return nil, fmt.Errorf("%s document %d: %w: a CustomResourceDefinition with items", crd.Filename, n, ErrInvalidCRD)
			}
			if err := s.stampObject(obj); err != nil {
				return nil, fmt.Errorf("%s document %d: %w: %w", crd.Filename, n, ErrInvalidCRD, err)
			}
			u.SetNamespace("")
			out = append(out, u)
		}
	}
	return out, nil
}

// crdFiles returns the CRD files an install or upgrade of req applies:
// those of the chart and of the dependencies req.Values enable, found on a
// copy of the chart processed as Helm processes it (Helm processes req.Chart
// itself when it renders: processing it twice would import values twice).
func crdFiles(req Request) ([]chart.CRD, error) {
	cp, err := copyChart(req.Chart)
	if err != nil {
		return nil, err
	}
	if err := chartutil.ProcessDependenciesWithMerge(cp, req.Values); err != nil {
		return nil, fmt.Errorf("processing the chart's dependencies: %w", err)
	}
	return cp.CRDObjects(), nil
}

// keepReplaced makes c's files under replacedCRDsDir exactly replaced (the
// CRD files an action replaced, by their path in the chart; none when it
// replaced none), whatever the chart itself held there: the release record
// then says what the action that wrote it replaced.
func keepReplaced(c *chart.Chart, replaced []chart.CRD) {
	c.Files = slices.DeleteFunc(c.Files, func(f *chart.File) bool { return strings.HasPrefix(f.Name, replacedCRDsDir) })
	for _, f := range replaced {
		c.Files = append(c.Files, &chart.File{Name: replacedCRDsDir + f.Filename, Data: f.File.Data})
	}
}

// copyChart copies what processing the dependencies of c changes: the
// metadata and its dependency list, the values, the tree of charts. Files
// and templates are shared: nothing writes them.
func copyChart(c *chart.Chart) (*chart.Chart, error) {
	cp := *c
	if c.Metadata != nil {
		md := *c.Metadata
		md.Dependencies = make([]*chart.Dependency, len(c.Metadata.Dependencies))
		for i, d := range c.Metadata.Dependencies {
			if d == nil {
				continue
			}
			dc := *d
			dc.Tags = append([]string(nil), d.Tags...)
			dc.ImportValues = append([]any(nil), d.ImportValues...)
			md.Dependencies[i] = &dc
		}
		cp.Metadata = &md
	}
	if c.Values != nil {
		v, err := copystructure.Copy(c.Values)
		if err != nil {
			return nil, fmt.Errorf("copying the chart's values: %w", err)
		}
		cp.Values = v.(map[string]any)
	}
	deps := make([]*chart.Chart, 0, len(c.Dependencies()))
	for _, d := range c.Dependencies() {
		dc, err := copyChart(d)
		if err != nil {
			return nil, err
		}
		deps = append(deps, dc)
	}
	cp.SetDependencies(deps...)
	return &cp, nil
}

// applyCRDs applies the CRDs of req's chart as policy says, as the Manager's
// identity (the release's ServiceAccount), before its install or upgrade
// renders the chart: Create creates those that do not exist, CreateReplace
// also replaces existing ones with the chart's (and keeps them in the
// record: keepReplaced), Skip (or "") does nothing. A
// CRD that carries the owner label of another release is not replaced: the
// action fails. It waits for the CRDs it wrote to be established, then
// forgets the discovered API, so the rendering's capabilities and the kinds
// of the chart's objects include them.
func (m *Manager) applyCRDs(ctx context.Context, req Request, policy chartproofv1.CRDsPolicy) error {
	keepReplaced(req.Chart, nil)
	if policy == "" || policy == chartproofv1.CRDsSkip {
		return nil
	}
	files, err := crdFiles(req)
	if err != nil {
		return fmt.Errorf("crds: %w", err)
	}
	crds, err := parseCRDs(files, req.Stamp)
	if err != nil {
		return fmt.Errorf("crds: %w", err)
	}
	if len(crds) == 0 {
		return nil
	}
	c, err := m.sharedClients()
	if err != nil {
		return err
	}
	client := c.dynamic.Resource(crdResource)
	var written []string
	for _, crd := range crds {
		_, err := client.Create(ctx, crd, metav1.CreateOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
		case apierrors.IsAlreadyExists(err) && policy == chartproofv1.CRDsCreateReplace:
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				return replaceCRD(ctx, client, crd)
			})
		case apierrors.IsAlreadyExists(err):
			continue // Create: an existing one is left as it is
		}
		var owned *CRDOwnedError
		if err != nil && !errors.As(err, &owned) {
			err = fmt.Errorf("CustomResourceDefinition %s: %w", crd.GetName(), err)
		}
		if err != nil {
			return err
		}
		written = append(written, crd.GetName())
	}
	if len(written) == 0 {
		return nil
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, min(crdEstablished, m.actionTimeout(req)), true,
		func(ctx context.Context) (bool, error) {
			for _, name := range written {
				live, err := client.Get(ctx, name, metav1.GetOptions{})
				if err != nil || !established(live) {
					return false, nil
				}
			}
			return true, nil
		}); err != nil {
		return fmt.Errorf("waiting for the CustomResourceDefinitions %v to be established: %w", written, err)
	}
	c.discovery.Invalidate()
	c.mapper.Reset()
	if policy == chartproofv1.CRDsCreateReplace {
		keepReplaced(req.Chart, files)
	}
	return nil
}

// replaceCRD replaces the live CRD named as crd with crd, unless another
// release's owner label is on it.
func replaceCRD(ctx context.Context, client dynamic.ResourceInterface, crd *unstructured.Unstructured) error {
	live, err := client.Get(ctx, crd.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	owner, want := live.GetLabels()[chartproofv1.LabelOwner], crd.GetLabels()[chartproofv1.LabelOwner]
	if owner != "" && owner != want {
		return &CRDOwnedError{Name: crd.GetName(), Owner: owner}
	}
	replacement := crd.DeepCopy()
	replacement.SetResourceVersion(live.GetResourceVersion())
	_, err = client.Update(ctx, replacement, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// CRDOwnedError is CreateReplace refused: the CRD carries the owner label
// of another release (chartproofv1.LabelOwner), which keeps it.
type CRDOwnedError struct {
	Name, Owner string
}

func (e *CRDOwnedError) Error() string {
	return fmt.Sprintf("CustomResourceDefinition %s carries the owner label of another VerifiedHelmRelease (UID %s): not replaced", e.Name, e.Owner)
}

// established reports whether a CRD's Established condition is True.
func established(crd *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
