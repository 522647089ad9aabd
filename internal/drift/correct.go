package drift

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ssajsondiff "github.com/fluxcd/pkg/ssa/jsondiff"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Correct restores each drifted object Detect returned: it removes the
// fields other writers added, by an update of the live object guarded by
// its resourceVersion (a concurrent write fails it with a conflict, and
// nothing is removed), then applies the desired object server-side with
// force under opts.FieldManager, which recreates a deleted object and takes
// back every field the chart sets. Nothing read from the cluster is written
// back but the live object minus the added fields. The objects are
// corrected in order; one that fails does not stop the others. It returns
// those it corrected.
func Correct(ctx context.Context, c client.Client, drifted []Object, opts Options) ([]Object, error) {
	if opts.FieldManager == "" {
		return nil, errors.New("drift: no field manager")
	}
	var (
		done []Object
		errs []error
	)
	for _, o := range drifted {
		if err := correct(ctx, c, o, opts); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.ID(), err))
			continue
		}
		done = append(done, o)
	}
	return done, errors.Join(errs...)
}

func correct(ctx context.Context, c client.Client, o Object, opts Options) error {
	if len(o.added) > 0 {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.Desired.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o.Desired), live); err != nil {
			return err
		}
		removed := false
		// List items are found by their keys, not by index: one removal
		// leaves the others' paths valid.
		for _, p := range o.added {
			removed = remove(live.Object, p) || removed
		}
		if removed {
			if err := c.Update(ctx, live, client.FieldOwner(opts.FieldManager)); err != nil {
				return fmt.Errorf("removing fields other writers added: %w", err)
			}
		}
	}
	// Ignored fields are another controller's: the apply leaves them out,
	// so it neither sets them nor takes them.
	apply := o.Desired.DeepCopy()
	if ignore := opts.ignored(apply); len(ignore) > 0 {
		// A Secret's data key may come from the chart's stringData.
		if gvk := apply.GroupVersionKind(); gvk.Group == "" && gvk.Kind == "Secret" {
			for _, p := range ignore {
				if rest, ok := strings.CutPrefix(p, "/data/"); ok {
					ignore = append(ignore, "/stringData/"+rest)
				}
			}
		}
		if err := ssajsondiff.ApplyPatchToUnstructured(apply, ssajsondiff.GenerateRemovePatch(ignore...)); err != nil {
			return err
		}
	}
	if err := c.Patch(ctx, apply, client.Apply, client.ForceOwnership, client.FieldOwner(opts.FieldManager)); err != nil { //nolint:staticcheck // unstructured objects have no apply configuration
		return fmt.Errorf("server-side apply: %w", err)
	}
	return nil
}
