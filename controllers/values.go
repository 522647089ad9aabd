package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/limits"
)

// values merges valuesFrom in order, then spec.values, and returns them with
// their digest. reader reads as the release's ServiceAccount: a release
// cannot render what its account may not read. A missing object or key is an error unless marked optional.
func (r *VerifiedHelmReleaseReconciler) values(ctx context.Context, reader client.Reader, obj *chartproofv1.VerifiedHelmRelease) (map[string]any, string, error) {
	out := map[string]any{}
	for _, ref := range obj.Spec.ValuesFrom {
		key := ref.Key
		if key == "" {
			key = "values.yaml"
		}
		data, found, err := valuesData(ctx, reader, obj.Namespace, ref.Kind, ref.Name, key)
		if err != nil {
			return nil, "", err
		}
		if !found {
			if ref.Optional {
				continue
			}
			return nil, "", fmt.Errorf("valuesFrom %s %s/%s has no key %q", ref.Kind, obj.Namespace, ref.Name, key)
		}
		if len(data) > limits.MaxValuesBytes {
			return nil, "", fmt.Errorf("valuesFrom %s %s/%s key %q: %d bytes exceed the limit of %d", ref.Kind, obj.Namespace, ref.Name, key, len(data), limits.MaxValuesBytes)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, "", fmt.Errorf("valuesFrom %s %s/%s key %q: %w", ref.Kind, obj.Namespace, ref.Name, key, err)
		}
		out = mergeValues(out, m)
	}
	if obj.Spec.Values != nil && len(obj.Spec.Values.Raw) > 0 {
		var m map[string]any
		if err := json.Unmarshal(obj.Spec.Values.Raw, &m); err != nil {
			return nil, "", fmt.Errorf("spec.values: %w", err)
		}
		out = mergeValues(out, m)
	}
	digest, err := configDigestOf(out)
	if err != nil {
		return nil, "", err
	}
	return out, digest, nil
}

func valuesData(ctx context.Context, reader client.Reader, namespace, kind, name, key string) ([]byte, bool, error) {
	nn := types.NamespacedName{Namespace: namespace, Name: name}
	switch kind {
	case "ConfigMap":
		var cm corev1.ConfigMap
		if err := reader.Get(ctx, nn, &cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, false, nil
			}
			return nil, false, err
		}
		if v, ok := cm.Data[key]; ok {
			return []byte(v), true, nil
		}
		v, ok := cm.BinaryData[key]
		return v, ok, nil
	case "Secret":
		var s corev1.Secret
		if err := reader.Get(ctx, nn, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, false, nil
			}
			return nil, false, err
		}
		v, ok := s.Data[key]
		return v, ok, nil
	default:
		return nil, false, fmt.Errorf("valuesFrom kind %q is neither ConfigMap nor Secret", kind)
	}
}

// mergeValues deep-merges src over dst, as `helm -f a.yaml -f b.yaml` does:
// maps merge key by key, anything else is replaced.
func mergeValues(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}
