package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/strvals"

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
		if ref.TargetPath != "" {
			if err := setPath(out, ref.TargetPath, string(data)); err != nil {
				return nil, "", fmt.Errorf("valuesFrom %s %s/%s key %q: %w", ref.Kind, obj.Namespace, ref.Name, key, err)
			}
			continue
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

// targetSentinel stands for the value while Helm's parser builds the path:
// the parser never sees the value itself, so a comma or an equals sign in
// it cannot set another path.
const targetSentinel = "\x00chartproof-target-path\x00"

// setPath sets values at path (Helm's --set syntax) to content, typed as
// Helm's --set types a value unless quoted (ValuesReference.TargetPath).
func setPath(values map[string]any, path, content string) error {
	if err := strvals.ParseIntoString(path+"="+targetSentinel, values); err != nil {
		return fmt.Errorf("targetPath %q: %w", path, err)
	}
	if n := replaceSentinel(values, typedValue(content)); n != 1 {
		return fmt.Errorf("targetPath %q: set %d times, want once", path, n)
	}
	return nil
}

// replaceSentinel replaces targetSentinel by v wherever it is in tree, and
// returns how many times it did.
func replaceSentinel(tree any, v any) int {
	n := 0
	switch t := tree.(type) {
	case map[string]any:
		for k, e := range t {
			if e == targetSentinel {
				t[k] = v
				n++
				continue
			}
			n += replaceSentinel(e, v)
		}
	case []any:
		for i, e := range t {
			if e == targetSentinel {
				t[i] = v
				n++
				continue
			}
			n += replaceSentinel(e, v)
		}
	}
	return n
}

// typedValue is content as Helm's --set types a value (true, false, null,
// an integer without a leading zero, else a string), or the string inside
// its quotes when it is quoted.
func typedValue(content string) any {
	if len(content) >= 2 && (content[0] == '"' || content[0] == '\'') && content[len(content)-1] == content[0] {
		return content[1 : len(content)-1]
	}
	switch {
	case strings.EqualFold(content, "true"):
		return true
	case strings.EqualFold(content, "false"):
		return false
	case strings.EqualFold(content, "null"):
		return nil
	case content == "0":
		return int64(0)
	}
	if content != "" && content[0] != '0' {
		if i, err := strconv.ParseInt(content, 10, 64); err == nil {
			return i
		}
	}
	return content
}
