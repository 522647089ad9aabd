package release

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

var testStamp = Stamp{
	Release: "team-a/demo",
	Digest:  "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	Owner:   "6f1c2a4e-0d9b-4c57-9a53-3d1e2f0a7b18",
}

// stampCases are the post-renderer's cases; they also seed FuzzStamper.
var stampCases = []struct {
	name  string
	input string
	// want is the expected output as YAML documents; they are compared as
	// objects, so key order and formatting do not matter.
	want    string
	wantErr bool
}{
	{
		name: "one object",
		input: `apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
data:
  key: value
`,
		want: `apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
data:
  key: value
`,
	},
	{
		name: "several documents as Helm renders them",
		input: `---
# Source: demo/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: demo
---
# Source: demo/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  labels:
    app: demo
spec:
  replicas: 2
`,
		want: `apiVersion: v1
kind: ServiceAccount
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  labels:
    app: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
spec:
  replicas: 2
`,
	},
	{
		name: "List: its items are stamped, not the List",
		input: `apiVersion: v1
kind: List
metadata: {}
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: one
- apiVersion: v1
  kind: Secret
  metadata:
    name: two
    annotations:
      example.com/keep: "yes"
`,
		want: `apiVersion: v1
kind: List
metadata: {}
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: one
    annotations:
      delivery.chartproof.dev/release: team-a/demo
      delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
- apiVersion: v1
  kind: Secret
  metadata:
    name: two
    annotations:
      example.com/keep: "yes"
      delivery.chartproof.dev/release: team-a/demo
      delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
	},
	{
		name: "typed list kind",
		input: `apiVersion: v1
kind: ConfigMapList
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: one
`,
		want: `apiVersion: v1
kind: ConfigMapList
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: one
    annotations:
      delivery.chartproof.dev/release: team-a/demo
      delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
	},
	{
		name: "existing annotations kept",
		input: `apiVersion: v1
kind: Service
metadata:
  name: demo
  annotations:
    example.com/owner: team-a
    prometheus.io/scrape: "true"
`,
		want: `apiVersion: v1
kind: Service
metadata:
  name: demo
  annotations:
    example.com/owner: team-a
    prometheus.io/scrape: "true"
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
	},
	{
		name: "a stamp written by the chart is replaced",
		input: `apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: other/forged
    delivery.chartproof.dev/chart-digest: sha256:forged
`,
		want: `apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
	},
	{
		name: "null metadata and annotations",
		input: `apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  annotations:
---
apiVersion: v1
kind: Namespace
metadata:
`,
		want: `apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
---
apiVersion: v1
kind: Namespace
metadata:
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
	},
	{
		name: "empty documents dropped",
		input: `---
---
# Source: demo/templates/empty.yaml

---
# Source: demo/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
---
   
---
`,
		want: `apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
	},
	{
		name:  "nothing rendered",
		input: "",
		want:  "",
	},
	{
		name: "numbers and strings survive the round trip",
		input: `apiVersion: example.com/v1
kind: Widget
metadata:
  name: demo
spec:
  big: 9007199254740993
  ratio: 0.25
  port: 8080
  answer: "yes"
  octal: "0755"
  empty: ""
`,
		want: `apiVersion: example.com/v1
kind: Widget
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
spec:
  big: 9007199254740993
  ratio: 0.25
  port: 8080
  answer: "yes"
  octal: "0755"
  empty: ""
`,
	},
	{
		name: "malformed YAML",
		input: `apiVersion: v1
kind: ConfigMap
metadata:
  name: [demo
`,
		wantErr: true,
	},
	{
		name: "bad indentation",
		input: `apiVersion: v1
kind: ConfigMap
 metadata:
  name: demo
`,
		wantErr: true,
	},
	{
		// Helm's kube client decodes documents with the same library and
		// also keeps the last value; the stamped output has one key only.
		name: "duplicate key: the last one wins, as in Helm",
		input: `apiVersion: v1
kind: ConfigMap
kind: Secret
metadata:
  name: demo
`,
		want: `apiVersion: v1
kind: Secret
metadata:
  name: demo
  annotations:
    delivery.chartproof.dev/release: team-a/demo
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
	},
	{
		name:    "text after a document separator",
		input:   "---foo\napiVersion: v1\n",
		wantErr: true,
	},
	{
		name:    "document is a string",
		input:   "just text\n",
		wantErr: true,
	},
	{
		name:    "document is a sequence",
		input:   "- apiVersion: v1\n  kind: ConfigMap\n",
		wantErr: true,
	},
	{
		name:    "metadata is not an object",
		input:   "apiVersion: v1\nkind: ConfigMap\nmetadata: demo\n",
		wantErr: true,
	},
	{
		name:    "annotations are not an object",
		input:   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations: [a, b]\n",
		wantErr: true,
	},
	{
		name:    "items are not a list",
		input:   "apiVersion: v1\nkind: List\nitems: {}\n",
		wantErr: true,
	},
	{
		name:    "an item is not an object",
		input:   "apiVersion: v1\nkind: List\nitems:\n- 42\n",
		wantErr: true,
	},
}

func TestStamperRun(t *testing.T) {
	for _, tc := range stampCases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := stamper{stamp: testStamp}.Run(bytes.NewBufferString(tc.input))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Run() = %q, nil; want an error", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run() error = %v; want nil", err)
			}
			got := decodeDocuments(t, out.String())
			want := decodeDocuments(t, tc.want)
			// Every object also carries the owner label; the cases state
			// the annotations and leave the label to this line.
			for _, doc := range want {
				for _, obj := range objects(doc) {
					meta := obj["metadata"].(map[string]any)
					labels, _ := meta["labels"].(map[string]any)
					if labels == nil {
						labels = map[string]any{}
						meta["labels"] = labels
					}
					labels[chartproofv1.LabelOwner] = testStamp.Owner
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Run() objects mismatch (-want +got):\n%s\ngot YAML:\n%s", diff, out)
			}
		})
	}
}

// TestStamperRunOutput checks the text Helm stores as the release manifest:
// one "---" per object, Helm's "# Source:" comment kept above it.
func TestStamperRunOutput(t *testing.T) {
	input := `---
# Source: demo/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
data:
  key: value
---
# Source: demo/templates/empty.yaml
---
# Source: demo/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: demo
`
	want := `---
# Source: demo/templates/configmap.yaml
apiVersion: v1
data:
  key: value
kind: ConfigMap
metadata:
  annotations:
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    delivery.chartproof.dev/release: team-a/demo
  labels:
    delivery.chartproof.dev/owner-uid: 6f1c2a4e-0d9b-4c57-9a53-3d1e2f0a7b18
  name: demo
---
# Source: demo/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  annotations:
    delivery.chartproof.dev/chart-digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    delivery.chartproof.dev/release: team-a/demo
  labels:
    delivery.chartproof.dev/owner-uid: 6f1c2a4e-0d9b-4c57-9a53-3d1e2f0a7b18
  name: demo
`
	out, err := stamper{stamp: testStamp}.Run(bytes.NewBufferString(input))
	if err != nil {
		t.Fatalf("Run() error = %v; want nil", err)
	}
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("Run() output mismatch (-want +got):\n%s", diff)
	}
}

// TestStamperRunErrorNamesTemplate checks that an error says which template
// rendered the bad document.
func TestStamperRunErrorNamesTemplate(t *testing.T) {
	input := "---\n# Source: demo/templates/ok.yaml\nkind: ConfigMap\n---\n# Source: demo/templates/bad.yaml\nmetadata: [\n"
	_, err := stamper{stamp: testStamp}.Run(bytes.NewBufferString(input))
	if err == nil {
		t.Fatal("Run() error = nil; want an error")
	}
	if got, want := err.Error(), "document 2 (demo/templates/bad.yaml)"; !strings.Contains(got, want) {
		t.Errorf("Run() error = %q; want it to contain %q", got, want)
	}
}

// FuzzStamper checks that the post-renderer never panics, and that whatever
// it accepts comes out as objects that all carry the stamp.
func FuzzStamper(f *testing.F) {
	for _, tc := range stampCases {
		f.Add(tc.input)
	}
	f.Fuzz(func(t *testing.T, input string) {
		out, err := stamper{stamp: testStamp}.Run(bytes.NewBufferString(input))
		if err != nil {
			return
		}
		for i, doc := range decodeDocuments(t, out.String()) {
			for j, obj := range objects(doc) {
				metadata, _ := obj["metadata"].(map[string]any)
				annotations, _ := metadata["annotations"].(map[string]any)
				got := map[string]any{
					chartproofv1.AnnotationRelease:     annotations[chartproofv1.AnnotationRelease],
					chartproofv1.AnnotationChartDigest: annotations[chartproofv1.AnnotationChartDigest],
				}
				want := map[string]any{
					chartproofv1.AnnotationRelease:     testStamp.Release,
					chartproofv1.AnnotationChartDigest: testStamp.Digest,
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("document %d object %d: stamp mismatch (-want +got):\n%s\noutput:\n%s", i+1, j+1, diff, out)
				}
			}
		}
	})
}

// decodeDocuments splits a YAML stream as Helm's kube client does and
// decodes each non-empty document, keeping numbers exact.
func decodeDocuments(t *testing.T, stream string) []map[string]any {
	t.Helper()
	var docs []map[string]any
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("reading YAML stream: %v\n%s", err, stream)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj, func(d *json.Decoder) *json.Decoder {
			d.UseNumber()
			return d
		}); err != nil {
			t.Fatalf("decoding document: %v\n%s", err, doc)
		}
		if obj != nil {
			docs = append(docs, obj)
		}
	}
}

// objects returns the objects a document creates: its items when it is a
// list, itself otherwise.
func objects(doc map[string]any) []map[string]any {
	items, ok := doc["items"].([]any)
	if !ok {
		return []map[string]any{doc}
	}
	var objs []map[string]any
	for _, item := range items {
		objs = append(objs, objects(item.(map[string]any))...)
	}
	return objs
}
