package drift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	ssajsondiff "github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/fluxcd/pkg/ssa/normalize"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// ChangeType says how a live object differs from the desired one.
type ChangeType string

const (
	// Missing: the object does not exist.
	Missing ChangeType = "Missing"
	// Changed: a field the chart sets has another value, or is gone.
	Changed ChangeType = "Changed"
	// Added: another writer added a field the chart does not set.
	Added ChangeType = "Added"
)

// Change is one difference. It never holds a value.
type Change struct {
	Type ChangeType
	// Path is a JSON pointer into the object; empty when it is Missing.
	Path string
	// Manager is the field manager that owns an Added field.
	Manager string
}

// Object is a desired object and how the live one differs from it.
type Object struct {
	Desired *unstructured.Unstructured
	Changes []Change

	// added are the Added fields, as field paths, for Correct.
	added []fieldpath.Path
}

// ID names the object: Kind namespace/name, or Kind name.
func (o Object) ID() string {
	return ID(o.Desired)
}

// ID names an object: Kind namespace/name, or Kind name.
func ID(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetKind() + " " + u.GetName()
	}
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

// Rule ignores Paths (JSON pointers, each covering what is below it) of the
// objects it selects. Empty selector fields match any object; Group nil
// matches any group.
type Rule struct {
	Paths                 []string
	Group                 *string
	Kind, Name, Namespace string
}

func (r Rule) selects(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return (r.Group == nil || *r.Group == "*" || *r.Group == gvk.Group) &&
		(r.Kind == "" || r.Kind == gvk.Kind) &&
		(r.Name == "" || r.Name == u.GetName()) &&
		(r.Namespace == "" || r.Namespace == u.GetNamespace())
}

// Options configure Detect and Correct.
type Options struct {
	// FieldManager is chartproof's field manager: the dry run and the
	// correction apply under it, and the fields it owns are the chart's.
	// Required.
	FieldManager string
	// Ignore lists the fields neither reported nor corrected.
	Ignore []Rule
}

func (o Options) ignored(u *unstructured.Unstructured) []string {
	var paths []string
	for _, r := range o.Ignore {
		if r.selects(u) {
			paths = append(paths, r.Paths...)
		}
	}
	return paths
}

// Detect compares each desired object with the live one and returns those
// that differ, in the order given. An object that cannot be compared (the
// client may not read it, the dry run fails) is an error; the others are
// still compared and returned.
func Detect(ctx context.Context, c client.Client, desired []*unstructured.Unstructured, opts Options) ([]Object, error) {
	if opts.FieldManager == "" {
		return nil, errors.New("drift: no field manager")
	}
	var (
		drifted []Object
		errs    []error
	)
	for _, d := range desired {
		o, err := detect(ctx, c, d, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ID(d), err))
			continue
		}
		if len(o.Changes) > 0 {
			drifted = append(drifted, o)
		}
	}
	return drifted, errors.Join(errs...)
}

func detect(ctx context.Context, c client.Client, desired *unstructured.Unstructured, opts Options) (Object, error) {
	o := Object{Desired: desired}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(desired.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
		if apierrors.IsNotFound(err) {
			o.Changes = []Change{{Type: Missing}}
			return o, nil
		}
		return o, err
	}

	ignore := opts.ignored(desired)
	dry := desired.DeepCopy()
	if err := c.Patch(ctx, dry, client.Apply, client.DryRunAll, client.ForceOwnership, client.FieldOwner(opts.FieldManager)); err != nil { //nolint:staticcheck // unstructured objects have no apply configuration
		if apierrors.IsInvalid(err) {
			// What others wrote cannot be merged with the chart's fields
			// (privileged: true beside the chart's
			// allowPrivilegeEscalation: false): judge from the live object.
			return unmergeable(o, live, ignore, opts)
		}
		return o, fmt.Errorf("server-side apply dry run: %w", err)
	}

	// What other writers added: fields the dry-run result still gives them.
	foreign, err := foreignFields(dry, opts.FieldManager)
	if err != nil {
		return o, err
	}
	changed := map[string]bool{}

	// What the chart sets and the live object does not have as set.
	if err := normalize.DryRunUnstructured(dry); err != nil {
		return o, err
	}
	filtered := live.DeepCopy()
	if len(ignore) > 0 {
		patch := ssajsondiff.GenerateRemovePatch(ignore...)
		if err := ssajsondiff.ApplyPatchToUnstructured(dry, patch); err != nil {
			return o, err
		}
		if err := ssajsondiff.ApplyPatchToUnstructured(filtered, patch); err != nil {
			return o, err
		}
	}
	// Who wrote a changed field: the other manager that owns it, or the
	// field above it, in the live object ("" when none does: removed).
	writers, err := writersOf(live, opts.FieldManager)
	if err != nil {
		return o, err
	}
	add := func(p string) {
		if !changed[p] {
			o.Changes = append(o.Changes, Change{Type: Changed, Path: p, Manager: writers.of(p)})
			changed[p] = true
		}
	}
	for _, p := range metadataChanges(filtered, dry) {
		add(p)
	}
	patch, err := ssajsondiff.DiffUnstructured(filtered, dry)
	if err != nil {
		return o, err
	}
	for _, op := range patch {
		add(op.Path)
	}

	for _, f := range foreign {
		ptr, ok := pointer(live.Object, f.path)
		if !ok || covered(ptr, ignore) || injected(desired, f.path) {
			continue
		}
		// A field both changed and owned by another writer (a Secret's
		// data key the chart sets through stringData) is reported once,
		// and removed before the apply writes it again.
		o.added = append(o.added, f.path)
		if !changed[ptr] {
			o.Changes = append(o.Changes, Change{Type: Added, Path: ptr, Manager: f.manager})
		}
	}
	return o, nil
}

// unmergeable reports the drift of an object the desired one cannot be
// applied to: every field another writer owns in the live object (outside
// metadata, status, injected fields and ignored paths) is drift, Changed
// when the chart sets it and Added otherwise, and is removed by Correct
// before the chart's object is applied again. A field of the chart that was
// removed is not reported; the apply restores it.
func unmergeable(o Object, live *unstructured.Unstructured, ignore []string, opts Options) (Object, error) {
	foreign, err := foreignFields(live, opts.FieldManager)
	if err != nil {
		return o, err
	}
	for _, f := range foreign {
		ptr, ok := pointer(live.Object, f.path)
		if !ok || covered(ptr, ignore) || injected(o.Desired, f.path) {
			continue
		}
		o.added = append(o.added, f.path)
		ch := Change{Type: Added, Path: ptr, Manager: f.manager}
		if _, set := pointer(o.Desired.Object, f.path); set {
			ch = Change{Type: Changed, Path: ptr, Manager: f.manager}
		}
		o.Changes = append(o.Changes, ch)
	}
	if len(o.Changes) == 0 {
		// Nothing to remove would make the apply valid: the chart's own
		// object is refused, which is not drift but a broken release.
		return o, errors.New("server-side apply dry run refused, and no other writer's field explains it")
	}
	return o, nil
}

// writers maps the JSON pointers of fields other managers own in an object
// to those managers.
type writers map[string]string

func writersOf(live *unstructured.Unstructured, fm string) (writers, error) {
	w := writers{}
	for _, mf := range live.GetManagedFields() {
		// Subresources count here: an HPA writes replicas through /scale.
		if mf.Manager == fm || mf.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
			return nil, fmt.Errorf("managedFields of %s: %w", mf.Manager, err)
		}
		for p := range set.All() {
			if ptr, ok := pointer(live.Object, p); ok {
				w[ptr] = mf.Manager
			}
		}
	}
	return w, nil
}

// of is the manager of ptr or of the nearest field above it.
func (w writers) of(ptr string) string {
	for p := ptr; p != ""; p = p[:max(strings.LastIndex(p, "/"), 0)] {
		if m, ok := w[p]; ok {
			return m
		}
	}
	return ""
}

// metadataChanges are the labels and annotations of want that have
// another value in got, or that got lacks, as JSON pointers. Labels and
// annotations others add are not compared (controllers add them).
func metadataChanges(got, want *unstructured.Unstructured) []string {
	var out []string
	for _, f := range []struct {
		name      string
		got, want map[string]string
	}{
		{"labels", got.GetLabels(), want.GetLabels()},
		{"annotations", got.GetAnnotations(), want.GetAnnotations()},
	} {
		for k, v := range f.want {
			if g, ok := f.got[k]; !ok || g != v {
				out = append(out, "/metadata/"+f.name+"/"+escape(k))
			}
		}
	}
	slices.Sort(out)
	return out
}

// ownedField is a field a manager owns.
type ownedField struct {
	path    fieldpath.Path
	manager string
}

// foreignFields are the fields of obj that managers other than fm own and
// fm does not, outside the top-level metadata and status, and outside
// subresources (an HPA writes replicas through /scale: ignore it by a rule
// if the chart sets replicas). Only the topmost are returned: a container
// another writer added is one field, not one per leaf.
func foreignFields(obj *unstructured.Unstructured, fm string) ([]ownedField, error) {
	ours := &fieldpath.Set{}
	type entry struct {
		manager string
		set     *fieldpath.Set
	}
	var others []entry
	for _, mf := range obj.GetManagedFields() {
		if mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
			return nil, fmt.Errorf("managedFields of %s: %w", mf.Manager, err)
		}
		if mf.Manager == fm {
			ours = ours.Union(set)
			continue
		}
		others = append(others, entry{mf.Manager, set})
	}
	var out []ownedField
	seen := &fieldpath.Set{}
	for _, e := range others {
		for p := range e.set.Difference(ours).All() {
			if len(p) == 0 || p[0].FieldName == nil {
				continue
			}
			if top := *p[0].FieldName; top == "metadata" || top == "status" || top == "apiVersion" || top == "kind" {
				continue
			}
			if seen.Has(p) {
				continue
			}
			seen.Insert(p)
			out = append(out, ownedField{path: p.Copy(), manager: e.manager})
		}
	}
	// Keep the topmost: drop a path when one of its prefixes is listed.
	top := out[:0]
	for _, f := range out {
		nested := false
		for i := 1; i < len(f.path); i++ {
			if seen.Has(f.path[:i]) {
				nested = true
				break
			}
		}
		if !nested {
			top = append(top, f)
		}
	}
	slices.SortFunc(top, func(a, b ownedField) int { return a.path.Compare(b.path) })
	return top, nil
}

// injected reports whether p is a field webhooks or CA injectors fill in
// on objects that name a service: a clientConfig's caBundle, an
// APIService's spec.caBundle.
func injected(u *unstructured.Unstructured, p fieldpath.Path) bool {
	n := len(p)
	name := func(i int) string {
		if i < 0 || i >= n || p[i].FieldName == nil {
			return ""
		}
		return *p[i].FieldName
	}
	if name(n-1) != "caBundle" {
		return false
	}
	return name(n-2) == "clientConfig" || (u.GetKind() == "APIService" && n == 2 && name(0) == "spec")
}

// covered reports whether ptr is one of the paths or below one.
func covered(ptr string, paths []string) bool {
	for _, p := range paths {
		if ptr == p || strings.HasPrefix(ptr, p+"/") {
			return true
		}
	}
	return false
}

// pointer resolves a field path in obj to a JSON pointer; false when obj
// does not hold it.
func pointer(obj map[string]any, p fieldpath.Path) (string, bool) {
	var b strings.Builder
	var cur any = obj
	for _, pe := range p {
		next, token, ok := step(cur, pe)
		if !ok {
			return "", false
		}
		b.WriteString("/" + escape(token))
		cur = next
	}
	return b.String(), true
}

// step follows one path element from cur: the value it selects and its
// JSON pointer token.
func step(cur any, pe fieldpath.PathElement) (any, string, bool) {
	if pe.FieldName != nil {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, "", false
		}
		v, ok := m[*pe.FieldName]
		return v, *pe.FieldName, ok
	}
	list, ok := cur.([]any)
	if !ok {
		return nil, "", false
	}
	for i, item := range list {
		if matches(item, pe) {
			return item, strconv.Itoa(i), true
		}
		if pe.Index != nil && *pe.Index == i {
			return item, strconv.Itoa(i), true
		}
	}
	return nil, "", false
}

// matches reports whether a list item is the one a Key or Value element
// selects.
func matches(item any, pe fieldpath.PathElement) bool {
	switch {
	case pe.Key != nil:
		m, ok := item.(map[string]any)
		if !ok {
			return false
		}
		for _, f := range *pe.Key {
			v, ok := m[f.Name]
			if !ok || !value.Equals(value.NewValueInterface(v), f.Value) {
				return false
			}
		}
		return true
	case pe.Value != nil:
		return value.Equals(value.NewValueInterface(item), *pe.Value)
	}
	return false
}

// escape escapes a JSON pointer token (RFC 6901).
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// remove deletes the field p selects from obj; false when obj does not hold
// it.
func remove(obj map[string]any, p fieldpath.Path) bool {
	if len(p) == 0 {
		return false
	}
	var parent any = obj
	for _, pe := range p[:len(p)-1] {
		next, _, ok := step(parent, pe)
		if !ok {
			return false
		}
		parent = next
	}
	last := p[len(p)-1]
	if last.FieldName != nil {
		m, ok := parent.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := m[*last.FieldName]; !ok {
			return false
		}
		delete(m, *last.FieldName)
		return true
	}
	// A list item: the list is rebuilt in its parent without it.
	_, token, ok := step(parent, last)
	if !ok {
		return false
	}
	i, _ := strconv.Atoi(token)
	return removeItem(obj, p[:len(p)-1], i)
}

// removeItem deletes item i of the list at path p of obj.
func removeItem(obj map[string]any, p fieldpath.Path, i int) bool {
	var holder any = obj
	for _, pe := range p[:len(p)-1] {
		next, _, ok := step(holder, pe)
		if !ok {
			return false
		}
		holder = next
	}
	last := p[len(p)-1]
	switch h := holder.(type) {
	case map[string]any:
		if last.FieldName == nil {
			return false
		}
		list, ok := h[*last.FieldName].([]any)
		if !ok {
			return false
		}
		h[*last.FieldName] = slices.Delete(slices.Clone(list), i, i+1)
	case []any:
		_, token, ok := step(h, last)
		if !ok {
			return false
		}
		j, _ := strconv.Atoi(token)
		list, ok := h[j].([]any)
		if !ok {
			return false
		}
		h[j] = slices.Delete(slices.Clone(list), i, i+1)
	default:
		return false
	}
	return true
}
