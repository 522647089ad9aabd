package drift

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// CreatedCache keeps, per desired object (by the hash of its JSON), what
// the API server creates from it: a dry-run create under a generated name,
// so it never meets the live object. Defaults, allocations and mutating
// admission are applied; nothing is stored. It is safe for concurrent use.
type CreatedCache struct {
	max int

	mu      sync.Mutex
	objects map[[32]byte]*unstructured.Unstructured // nil: the create was refused
}

// NewCreatedCache keeps at most max objects; past it, it starts afresh.
func NewCreatedCache(max int) *CreatedCache {
	return &CreatedCache{max: max, objects: map[[32]byte]*unstructured.Unstructured{}}
}

// get returns what the API server creates from desired, or nil when the
// dry-run create is refused (a name the kind constrains, such as a CRD's;
// an admission policy; the client may not create it). c asks.
func (cc *CreatedCache) get(ctx context.Context, c client.Client, desired *unstructured.Unstructured, fm string) *unstructured.Unstructured {
	data, err := json.Marshal(desired.Object)
	if err != nil {
		return nil
	}
	key := sha256.Sum256(data)
	if cc != nil {
		cc.mu.Lock()
		obj, ok := cc.objects[key]
		cc.mu.Unlock()
		if ok {
			return obj
		}
	}
	obj := desired.DeepCopy()
	obj.SetName("")
	obj.SetGenerateName(desired.GetName() + "-")
	if err := c.Create(ctx, obj, client.DryRunAll, client.FieldOwner(fm)); err != nil {
		logf.FromContext(ctx).V(1).Info("dry-run create refused; Helm's writes are taken as the chart's", "object", ID(desired), "error", err.Error())
		if !remembered(err) {
			return nil // asked again next time
		}
		obj = nil
	}
	if cc != nil {
		cc.mu.Lock()
		if len(cc.objects) >= cc.max {
			clear(cc.objects)
		}
		cc.objects[key] = obj
		cc.mu.Unlock()
	}
	return obj
}

// remembered reports whether a refused dry-run create is worth remembering:
// the refusal comes from the object itself (its name or content), not from
// something that may change (rights, an outage, a webhook).
func remembered(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsAlreadyExists(err) || apierrors.IsBadRequest(err) || apierrors.IsMethodNotSupported(err)
}
