package release

import (
	"bytes"
	"fmt"

	"helm.sh/helm/v3/pkg/postrender"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// PostRenderError is a post-renderer of spec.postRenderers that failed.
// Its message can hold what the chart rendered: it goes to the log only.
type PostRenderError struct {
	Index int // in spec.postRenderers
	Err   error
}

func (e *PostRenderError) Error() string {
	return fmt.Sprintf("postRenderers[%d] (kustomize): %v", e.Index, e.Err)
}

func (e *PostRenderError) Unwrap() error { return e.Err }

// postRenderer is what Helm runs on what the chart rendered: the request's
// post-renderers in order, then the stamper, so that nothing they do can
// change or drop the stamp.
func (r Request) postRenderer() renderChain {
	chain := make(renderChain, 0, len(r.PostRenderers)+2)
	for i, p := range r.PostRenderers {
		chain = append(chain, kustomizer{index: i, spec: p.Kustomize})
	}
	return append(chain, stamper{stamp: r.Stamp})
}

// renderChain runs post-renderers one after the other.
type renderChain []postrender.PostRenderer

func (c renderChain) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	for _, r := range c {
		out, err := r.Run(rendered)
		if err != nil {
			return nil, err
		}
		rendered = out
	}
	return rendered, nil
}

// kustomizer applies a kustomization to what the chart rendered, in an
// in-memory file system that holds nothing else, with kustomize's default
// options: no plugins, nothing loaded from outside its root, the objects in
// their order.
type kustomizer struct {
	index int
	spec  chartproofv1.KustomizePostRenderer
}

func (k kustomizer) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	out, err := k.run(rendered.Bytes())
	if err != nil {
		return nil, &PostRenderError{Index: k.index, Err: err}
	}
	return bytes.NewBuffer(out), nil
}

func (k kustomizer) run(rendered []byte) ([]byte, error) {
	const input = "rendered.yaml"
	fs := filesys.MakeFsInMemory()
	if err := fs.WriteFile(input, rendered); err != nil {
		return nil, err
	}
	kust := kustypes.Kustomization{
		TypeMeta:  kustypes.TypeMeta{APIVersion: kustypes.KustomizationVersion, Kind: kustypes.KustomizationKind},
		Resources: []string{input},
	}
	for _, img := range k.spec.Images {
		kust.Images = append(kust.Images, kustypes.Image{Name: img.Name, NewName: img.NewName, NewTag: img.NewTag, Digest: img.Digest})
	}
	for _, p := range k.spec.Patches {
		patch := kustypes.Patch{Patch: p.Patch}
		if t := p.Target; t != nil {
			patch.Target = &kustypes.Selector{
				ResId: resid.ResId{
					Gvk:       resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind},
					Name:      t.Name,
					Namespace: t.Namespace,
				},
				AnnotationSelector: t.AnnotationSelector,
				LabelSelector:      t.LabelSelector,
			}
		}
		kust.Patches = append(kust.Patches, patch)
	}
	data, err := yaml.Marshal(kust)
	if err != nil {
		return nil, err
	}
	if err := fs.WriteFile("kustomization.yaml", data); err != nil {
		return nil, err
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, ".")
	if err != nil {
		return nil, err
	}
	return m.AsYaml()
}
