package drift

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Helm's ownership metadata, which its install and upgrade add to every
// object they write (and which the manifest of a release does not hold).
const (
	helmManagedByLabel   = "app.kubernetes.io/managed-by"
	helmReleaseName      = "meta.helm.sh/release-name"
	helmReleaseNamespace = "meta.helm.sh/release-namespace"
	maxObjects           = 10000
)

// Desired builds the objects a release's manifest (the rendered, post-
// rendered chart Helm records, hooks aside) makes Helm write: each document
// an object, a list's items each an object, the release namespace given to
// namespaced objects that name none, and Helm's ownership label and
// annotations added. namespaced says whether an object is namespaced (a
// RESTMapper's answer).
func Desired(manifest, releaseName, releaseNamespace string, namespaced func(*unstructured.Unstructured) (bool, error)) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", n, err)
		}
		// Integers stay int64, as the API machinery decodes them.
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", n, err)
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(js, &obj); err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", n, err)
		}
		if obj == nil {
			continue
		}
		items := []map[string]any{obj}
		if list, ok := obj["items"].([]any); ok {
			items = items[:0]
			for _, it := range list {
				m, ok := it.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("manifest document %d: a list item is not an object", n)
				}
				items = append(items, m)
			}
		}
		for _, it := range items {
			u := &unstructured.Unstructured{Object: it}
			if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
				return nil, fmt.Errorf("manifest document %d: an object without apiVersion, kind or name", n)
			}
			ns, err := namespaced(u)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ID(u), err)
			}
			if ns && u.GetNamespace() == "" {
				u.SetNamespace(releaseNamespace)
			}
			if !ns {
				u.SetNamespace("")
			}
			labels := u.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels[helmManagedByLabel] = "Helm"
			u.SetLabels(labels)
			annotations := u.GetAnnotations()
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[helmReleaseName] = releaseName
			annotations[helmReleaseNamespace] = releaseNamespace
			u.SetAnnotations(annotations)
			out = append(out, u)
			if len(out) > maxObjects {
				return nil, fmt.Errorf("manifest holds more than %d objects", maxObjects)
			}
		}
	}
}
