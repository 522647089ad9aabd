// Package tenant grants a namespace's releases their ServiceAccount, as a
// platform team would, from config/samples/release-rbac.yaml. The demo and
// the benchmarks run from the repository's root and share it.
package tenant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServiceAccount is the ServiceAccount the sample grants.
const ServiceAccount = "chartproof-release"

// sample is the file, relative to the repository's root.
const sample = "config/samples/release-rbac.yaml"

// Grant creates the sample's ServiceAccount and RoleBinding in namespace
// (and its ClusterRole, once), keeping objects that exist already.
func Grant(ctx context.Context, c client.Client, namespace string) error {
	data, err := os.ReadFile(sample)
	if err != nil {
		return err
	}
	data = bytes.ReplaceAll(data, []byte("namespace: default"), []byte("namespace: "+namespace))
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", sample, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := c.Create(ctx, &u); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: creating %s %s: %w", sample, u.GetKind(), u.GetName(), err)
		}
	}
}
