package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/tufroot"
)

// LoadPolicyFile reads a YAML file holding exactly one TrustPolicy or
// ClusterTrustPolicy and any Secrets it references, and compiles the policy.
// A Secret reference that does not resolve to a document of the file is an
// error, as is any document of another kind, or an unknown field.
// A trusted root read from a TUF repository (trustedRoot.tuf) is read with
// tuf; nil reads none (ErrTrustedRootUnavailable).
func LoadPolicyFile(path string, tuf *TUFClient) (*policy.Policy, error) {
	data, err := readFileCapped(path, limits.MaxPolicyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	return parsePolicy(data, tuf)
}

// ParsePolicy is LoadPolicyFile on bytes, reading no TUF repository.
func ParsePolicy(data []byte) (*policy.Policy, error) {
	return parsePolicy(data, nil)
}

func parsePolicy(data []byte, tuf *TUFClient) (*policy.Policy, error) {
	var (
		ref     policy.Ref
		spec    *chartproofv1.TrustPolicySpec
		objects = fileObjects{secrets: map[string]map[string][]byte{}, configMaps: map[string]map[string][]byte{}, tuf: tuf}
	)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("policy file: document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var meta *struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("policy file: document %d: %w", i, err)
		}
		if meta == nil {
			continue // comments only
		}
		switch {
		case meta.APIVersion == chartproofv1.GroupVersion.String() && (meta.Kind == "TrustPolicy" || meta.Kind == "ClusterTrustPolicy"):
			if spec != nil {
				return nil, fmt.Errorf("policy file: document %d: a second policy; the file must hold exactly one", i)
			}
			var tp chartproofv1.TrustPolicy // the two kinds share metadata and spec
			if err := unmarshalStrict(doc, &tp); err != nil {
				return nil, fmt.Errorf("policy file: document %d (%s): %w", i, meta.Kind, err)
			}
			if tp.Name == "" {
				return nil, fmt.Errorf("policy file: document %d: %s has no metadata.name", i, meta.Kind)
			}
			ref = policy.Ref{Kind: meta.Kind, Name: tp.Name, UID: string(tp.UID)}
			if meta.Kind == "TrustPolicy" {
				ref.Namespace = tp.Namespace
				if ref.Namespace == "" {
					ref.Namespace = "default"
				}
			}
			spec = &tp.Spec
		case meta.APIVersion == "v1" && meta.Kind == "Secret":
			var s corev1.Secret
			if err := unmarshalStrict(doc, &s); err != nil {
				return nil, fmt.Errorf("policy file: document %d (Secret): %w", i, err)
			}
			objects.secrets[objectKey(s.Namespace, s.Name)] = merge(s.Data, s.StringData)
		case meta.APIVersion == "v1" && meta.Kind == "ConfigMap":
			var cm corev1.ConfigMap
			if err := unmarshalStrict(doc, &cm); err != nil {
				return nil, fmt.Errorf("policy file: document %d (ConfigMap): %w", i, err)
			}
			objects.configMaps[objectKey(cm.Namespace, cm.Name)] = merge(cm.BinaryData, cm.Data)
		default:
			return nil, fmt.Errorf("policy file: document %d: %s %s is neither a %s TrustPolicy or ClusterTrustPolicy nor a v1 Secret or ConfigMap",
				i, meta.APIVersion, meta.Kind, chartproofv1.GroupVersion)
		}
	}
	if spec == nil {
		return nil, errors.New("policy file: no TrustPolicy or ClusterTrustPolicy")
	}
	return policy.Compile(ref, *spec, objects)
}

// objectKey is "namespace/name", the namespace defaulting as kubectl's does.
func objectKey(namespace, name string) string {
	if namespace == "" {
		namespace = "default"
	}
	return namespace + "/" + name
}

// merge is a Secret's data and stringData (or a ConfigMap's binaryData and
// data) as one map of bytes; a string key wins, as the API server does for
// stringData.
func merge(binary map[string][]byte, text map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(binary)+len(text))
	for k, v := range binary {
		out[k] = v
	}
	for k, v := range text {
		out[k] = []byte(v)
	}
	return out
}

// fileObjects are the Secrets and ConfigMaps of a policy file, by
// "namespace/name": the only ones a policy read from a file may reference.
type fileObjects struct {
	secrets, configMaps map[string]map[string][]byte
	tuf                 *TUFClient
}

// TUFTrustedRoot reads a TUF repository's trusted root with the command's
// TUF client.
func (f fileObjects) TUFTrustedRoot(repo policy.TUFRepository) (policy.TUFTrustedRoot, error) {
	if f.tuf == nil {
		return policy.TUFTrustedRoot{}, fmt.Errorf("%w: tuf repository %s: no TUF repository can be read here", policy.ErrTrustedRootUnavailable, repo.Location)
	}
	return f.tuf.TrustedRoot(repo)
}

// TUFClient reads TUF repositories for the command line, keeping the
// metadata it verified in Dir (what a rollback is checked against between
// runs). The directory is made at the first read: a policy without tuf
// references writes nothing.
type TUFClient struct {
	Dir   string
	once  sync.Once
	store *tufroot.Store
	err   error
}

// TrustedRoot reads repo with a tufroot.Store in c.Dir.
func (c *TUFClient) TrustedRoot(repo policy.TUFRepository) (policy.TUFTrustedRoot, error) {
	c.once.Do(func() { c.store, c.err = tufroot.NewStore(c.Dir, nil) })
	if c.err != nil {
		return policy.TUFTrustedRoot{}, fmt.Errorf("%w: %w", policy.ErrTrustedRootUnavailable, c.err)
	}
	return c.store.TrustedRoot(repo)
}

var _ policy.Reader = fileObjects{}

// Secret returns one key of a Secret document of the file.
func (f fileObjects) Secret(ref chartproofv1.SecretKeyReference) ([]byte, error) {
	return lookup(f.secrets, "secret", ref.Namespace, ref.Name, ref.Key)
}

// ConfigMap returns one key of a ConfigMap document of the file.
func (f fileObjects) ConfigMap(namespace, name, key string) ([]byte, error) {
	return lookup(f.configMaps, "configmap", namespace, name, key)
}

func lookup(objects map[string]map[string][]byte, kind, namespace, name, key string) ([]byte, error) {
	o, ok := objects[namespace+"/"+name]
	if !ok {
		return nil, fmt.Errorf("%s %s/%s is not in the policy file", kind, namespace, name)
	}
	v, ok := o[key]
	if !ok {
		return nil, fmt.Errorf("%s %s/%s has no key %q", kind, namespace, name, key)
	}
	return v, nil
}

// unmarshalStrict decodes one YAML document as the API server does: field
// names match case-sensitively, and unknown or duplicate fields are errors.
// (sigs.k8s.io/yaml's UnmarshalStrict matches field names case-insensitively,
// so "publickey" would pass for "publicKey".)
func unmarshalStrict(doc []byte, into any) error {
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(data, into)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}
