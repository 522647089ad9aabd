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
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// Created keeps what the API server creates from each desired object
	// (its defaults), so it is asked once per object, not per check. Nil
	// asks every time.
	Created *CreatedCache
}

// ignored are the ignored paths of u, deepest and, within a list, highest
// index first, so that removing them one after the other leaves the
// others' indices valid.
func (o Options) ignored(u *unstructured.Unstructured) []string {
	var paths []string
	for _, r := range o.Ignore {
		if r.selects(u) {
			paths = append(paths, r.Paths...)
		}
	}
	slices.SortFunc(paths, func(a, b string) int { return comparePointers(b, a) })
	return slices.Compact(paths)
}

// comparePointers orders JSON pointers token by token, numbers by value.
func comparePointers(a, b string) int {
	at, bt := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(at) && i < len(bt); i++ {
		if at[i] == bt[i] {
			continue
		}
		an, aerr := strconv.Atoi(at[i])
		bn, berr := strconv.Atoi(bt[i])
		if aerr == nil && berr == nil {
			return an - bn
		}
		return strings.Compare(at[i], bt[i])
	}
	return len(at) - len(bt)
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

// detect compares one object. The dry run is made against the very
// resourceVersion read, so that the live object and the dry-run result are
// one state of the object: a write in between (the change being looked
// for, often) fails it with a conflict, and the object is read again.
func detect(ctx context.Context, c client.Client, desired *unstructured.Unstructured, opts Options) (Object, error) {
	for attempt := 1; ; attempt++ {
		o, err := detectOnce(ctx, c, desired, opts)
		if !apierrors.IsConflict(err) || attempt == 3 {
			return o, err
		}
	}
}

func detectOnce(ctx context.Context, c client.Client, desired *unstructured.Unstructured, opts Options) (Object, error) {
	o := Object{Desired: desired}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(desired.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
		if apierrors.IsNotFound(err) {
			if finishedJob(desired) {
				return o, nil
			}
			o.Changes = []Change{{Type: Missing}}
			return o, nil
		}
		return o, err
	}

	ignore := opts.ignored(desired)
	// What the API server would create from the chart's object: a field
	// another writer owns is not drift when it holds exactly that (a
	// default an adopted release's `helm` wrote, an operator writing a
	// default back).
	created := opts.Created.get(ctx, c, desired, opts.FieldManager)
	dry := desired.DeepCopy()
	dry.SetResourceVersion(live.GetResourceVersion())
	if err := c.Patch(ctx, dry, client.Apply, client.DryRunAll, client.ForceOwnership, client.FieldOwner(opts.FieldManager)); err != nil { //nolint:staticcheck // unstructured objects have no apply configuration
		if apierrors.IsInvalid(err) {
			// What others wrote cannot be merged with the chart's fields
			// (privileged: true beside the chart's
			// allowPrivilegeEscalation: false): judge from the live object.
			return unmergeable(o, live, created, ignore, opts)
		}
		return o, fmt.Errorf("server-side apply dry run: %w", err)
	}

	// What other writers added: fields the dry-run result still gives them.
	foreign, err := foreignFields(dry, opts.FieldManager, false)
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
		if !ok || covered(ptr, ignore) || notDrift(live, created, f, opts.FieldManager) {
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

// finishedJob reports whether desired is a Job the TTL controller deletes
// once it finished (spec.ttlSecondsAfterFinished): its absence is its
// normal end, and recreating it would run it again.
func finishedJob(desired *unstructured.Unstructured) bool {
	gvk := desired.GroupVersionKind()
	_, ttl, _ := unstructured.NestedFieldNoCopy(desired.Object, "spec", "ttlSecondsAfterFinished")
	return gvk.Group == "batch" && gvk.Kind == "Job" && ttl
}

// notDrift reports whether a field another manager owns in live is
// legitimately there: filled in by the API server or a controller on every
// object of its kind (serverOwned), or holding exactly what the API server
// creates from the chart's object (a default). When what it creates is
// unknown (the dry-run create was refused), Helm's own writes, made under
// chartproof's field manager, are taken as the chart's.
func notDrift(live, created *unstructured.Unstructured, f ownedField, fm string) bool {
	if serverOwned(live, f.path) {
		return true
	}
	if created == nil {
		return f.manager == fm
	}
	want, ok := valueAt(created.Object, f.path)
	if !ok {
		return false
	}
	got, _ := valueAt(live.Object, f.path)
	return equality.Semantic.DeepEqual(want, got)
}

// valueAt is the value of the field p selects in obj.
func valueAt(obj map[string]any, p fieldpath.Path) (any, bool) {
	var cur any = obj
	for _, pe := range p {
		next, _, ok := step(cur, pe)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// unmergeable reports the drift of an object the desired one cannot be
// applied to: every field another writer owns in the live object (outside
// metadata, status, injected fields and ignored paths) is drift, Changed
// when the chart sets it and Added otherwise, and is removed by Correct
// before the chart's object is applied again. A field of the chart that was
// removed is not reported; the apply restores it.
func unmergeable(o Object, live, created *unstructured.Unstructured, ignore []string, opts Options) (Object, error) {
	foreign, err := foreignFields(live, opts.FieldManager, true)
	if err != nil {
		return o, err
	}
	explained := false
	for _, f := range foreign {
		ptr, ok := pointer(live.Object, f.path)
		if !ok || notDrift(live, created, f, opts.FieldManager) {
			continue
		}
		// An ignored field (or one left to another writer) explains the
		// refusal, but is neither reported nor removed.
		explained = true
		if covered(ptr, ignore) {
			continue
		}
		o.added = append(o.added, f.path)
		ch := Change{Type: Added, Path: ptr, Manager: f.manager}
		if _, set := pointer(o.Desired.Object, f.path); set {
			ch = Change{Type: Changed, Path: ptr, Manager: f.manager}
		}
		o.Changes = append(o.Changes, ch)
	}
	if !explained {
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

var stringData = "stringData"

// ownedField is a field a manager owns.
type ownedField struct {
	path    fieldpath.Path
	manager string
}

// foreignFields are the fields of obj that chartproof's apply (fm's Apply
// entry) does not own and another entry does, outside the top-level
// metadata and status, and outside subresources (an HPA writes replicas
// through /scale: ignore it by a rule if the chart sets replicas). Only the
// topmost are returned: a container another writer added is one field, not
// one per leaf.
//
// trustUpdates also counts fm's Update entries as the chart's: only where
// no apply tells what the chart sets (the unmergeable case).
func foreignFields(obj *unstructured.Unstructured, fm string, trustUpdates bool) ([]ownedField, error) {
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
		// Only chartproof's apply says what the chart sets (after the
		// forced dry run, exactly that). Its Update entries (Helm's
		// writes, which hold the defaults of the objects it created) are
		// judged like anyone's: a field manager is a name any writer may
		// give, and `kubectl patch --field-manager=chartproof` must not
		// hide a sidecar.
		if mf.Manager == fm && (mf.Operation == metav1.ManagedFieldsOperationApply || trustUpdates) {
			ours = ours.Union(set)
			continue
		}
		others = append(others, entry{mf.Manager, set})
	}
	// A Secret's stringData becomes its data: the keys the chart sets
	// through one are the chart's in the other.
	if obj.GroupVersionKind().Group == "" && obj.GetKind() == "Secret" {
		for p := range ours.WithPrefix(fieldpath.PathElement{FieldName: &stringData}).All() {
			ours.Insert(append(fieldpath.MakePathOrDie("data"), p...))
		}
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
			// A map or list the chart also sets fields in is shared: it is
			// not another writer's addition (an Update entry lists the
			// maps it created as members of their own), whatever it holds
			// of theirs is.
			if seen.Has(p) || within(ours, p) {
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

// within reports whether set holds a path below p.
func within(set *fieldpath.Set, p fieldpath.Path) bool {
	for _, pe := range p {
		set = set.WithPrefix(pe)
	}
	return !set.Empty()
}

// serverOwned reports whether p is a field the API server or a controller
// fills in on every object of its kind, whoever created it:
//   - a caBundle a CA injector writes: a clientConfig's (webhooks, CRD
//     conversion), an APIService's spec.caBundle;
//   - what a Service's allocators assign: clusterIP(s), node ports, the
//     health check node port;
//   - a PersistentVolumeClaim's spec.volumeName (the volume binder);
//   - the data of a ServiceAccount token Secret (the token controller);
//   - the rules of a ClusterRole with an aggregationRule (the aggregator);
//   - the restartedAt annotation `kubectl rollout restart` puts on a pod
//     template.
func serverOwned(u *unstructured.Unstructured, p fieldpath.Path) bool {
	n := len(p)
	name := func(i int) string {
		if i < 0 || i >= n || p[i].FieldName == nil {
			return ""
		}
		return *p[i].FieldName
	}
	gvk := u.GroupVersionKind()
	switch {
	case name(n-1) == "caBundle" && (name(n-2) == "clientConfig" || (gvk.Kind == "APIService" && n == 2 && name(0) == "spec")):
		return true
	case gvk.Group == "" && gvk.Kind == "Service" && name(0) == "spec":
		switch name(1) {
		case "clusterIP", "clusterIPs", "healthCheckNodePort":
			return n == 2
		case "ports":
			return name(n-1) == "nodePort"
		}
	case gvk.Group == "" && gvk.Kind == "PersistentVolumeClaim":
		return n == 2 && name(0) == "spec" && name(1) == "volumeName"
	case gvk.Group == "" && gvk.Kind == "Secret":
		t, _, _ := unstructured.NestedString(u.Object, "type")
		return t == "kubernetes.io/service-account-token" && name(0) == "data"
	case gvk.Group == "rbac.authorization.k8s.io" && gvk.Kind == "ClusterRole":
		_, aggregated := u.Object["aggregationRule"]
		return aggregated && name(0) == "rules"
	}
	return name(n-1) == "kubectl.kubernetes.io/restartedAt" && name(n-2) == "annotations" && name(n-3) == "metadata" && name(n-4) == "template"
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
// it. A list item is removed by rebuilding the list in its holder.
func remove(obj map[string]any, p fieldpath.Path) bool {
	if len(p) == 0 {
		return false
	}
	parent, ok := valueAt(obj, p[:len(p)-1])
	if !ok {
		return false
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
	list, ok := parent.([]any)
	if !ok {
		return false
	}
	_, token, ok := step(list, last)
	if !ok {
		return false
	}
	i, _ := strconv.Atoi(token)
	shorter := slices.Delete(slices.Clone(list), i, i+1)
	// The list's holder: a map (by field name) or a list (by its item).
	holder, _ := valueAt(obj, p[:len(p)-2])
	switch h := holder.(type) {
	case map[string]any:
		if name := p[len(p)-2].FieldName; name != nil {
			h[*name] = shorter
			return true
		}
	case []any:
		if _, token, ok := step(h, p[len(p)-2]); ok {
			j, _ := strconv.Atoi(token)
			h[j] = shorter
			return true
		}
	}
	return false
}
