package release

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// stamper is the Helm post-renderer that writes a Stamp on every rendered
// object. It implements helm.sh/helm/v3/pkg/postrender.PostRenderer.
type stamper struct {
	stamp Stamp
}

// Run stamps every object of the multi-document YAML stream rendered. It
// splits the stream the way Helm's kube client does when it builds the
// objects (k8s.io/apimachinery's YAML reader), keeps the comment lines that
// open each document (Helm's "# Source: <template>"), drops documents that
// hold no object, and writes each object back as YAML with its keys sorted.
func (s stamper) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	out := new(bytes.Buffer)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(rendered))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("post-render: document %d: %w", n, err)
		}
		stamped, err := s.stampDocument(doc)
		if err != nil {
			return nil, fmt.Errorf("post-render: document %d%s: %w", n, source(doc), err)
		}
		if stamped == nil {
			continue
		}
		out.WriteString("---\n")
		for _, line := range leadingComments(doc) {
			out.WriteString(line)
			out.WriteByte('\n')
		}
		out.Write(stamped)
	}
}

// stampDocument returns the stamped YAML of one document, or nil when the
// document holds no object (it is empty or only comments).
func (s stamper) stampDocument(doc []byte) ([]byte, error) {
	// Numbers are kept as json.Number so integers of any size survive the
	// round trip unchanged.
	var obj any
	if err := yaml.Unmarshal(doc, &obj, func(d *json.Decoder) *json.Decoder {
		d.UseNumber()
		return d
	}); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, nil
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not an object but %T", obj)
	}
	if err := s.stampObject(m); err != nil {
		return nil, err
	}
	return yaml.Marshal(m)
}

// stampObject writes the stamp into obj's metadata.annotations and its owner
// into metadata.labels (chartproofv1.LabelOwner), or, when obj
// is a list, into each of its items. Like the unstructured decoder that Helm's
// kube client uses to build the objects, it takes any object with an "items"
// field for a list: the list itself is never created, its items are.
func (s stamper) stampObject(obj map[string]any) error {
	if items, ok := obj["items"]; ok && items != nil {
		list, ok := items.([]any)
		if !ok {
			return fmt.Errorf("items: not a list but %T", items)
		}
		for i, item := range list {
			m, ok := item.(map[string]any)
			if !ok {
				return fmt.Errorf("items[%d]: not an object but %T", i, item)
			}
			if err := s.stampObject(m); err != nil {
				return fmt.Errorf("items[%d]: %w", i, err)
			}
		}
		return nil
	}
	metadata, err := field(obj, "metadata")
	if err != nil {
		return err
	}
	annotations, err := field(metadata, "annotations")
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	annotations[chartproofv1.AnnotationRelease] = s.stamp.Release
	annotations[chartproofv1.AnnotationChartDigest] = s.stamp.Digest
	// The label lets the manager watch, by a label selector the API server
	// evaluates, only what releases deployed (annotations cannot be
	// selected on).
	labels, err := field(metadata, "labels")
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	labels[chartproofv1.LabelOwner] = s.stamp.Owner
	return nil
}

// field returns obj[key] as an object, adding an empty one when the key is
// missing or null.
func field(obj map[string]any, key string) (map[string]any, error) {
	switch v := obj[key].(type) {
	case map[string]any:
		return v, nil
	case nil:
		m := map[string]any{}
		obj[key] = m
		return m, nil
	default:
		return nil, fmt.Errorf("%s: not an object but %T", key, v)
	}
}

// leadingComments returns the comment lines before the first line of content
// of doc, without their line endings. The YAML reader leaves the "---" that
// opens a stream in the first document; it is skipped.
func leadingComments(doc []byte) []string {
	var lines []string
	for line := range strings.Lines(string(doc)) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed == "---" {
			continue
		}
		if !strings.HasPrefix(trimmed, "#") {
			break
		}
		lines = append(lines, trimmed)
	}
	return lines
}

// source names the template a document came from, from Helm's "# Source:"
// comment, for error messages; it is empty when there is none.
func source(doc []byte) string {
	for _, line := range leadingComments(doc) {
		if name, ok := strings.CutPrefix(line, "# Source: "); ok {
			return " (" + name + ")"
		}
	}
	return ""
}
