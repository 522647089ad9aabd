package release

import (
	"errors"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restClientGetter is the genericclioptions.RESTClientGetter Helm's kube
// client and action.Configuration are built over. Everything it hands out
// comes from memory: the Manager's rest.Config, its shared discovery cache and
// REST mapper, and the namespace of the call. It reads no kubeconfig file and
// no environment variable.
type restClientGetter struct {
	config    *rest.Config
	namespace string
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.ResettableRESTMapper
}

// ToRESTConfig returns a copy of the config: kubectl's factory sets defaults
// on the config it is given.
func (g *restClientGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.config), nil
}

func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	return g.mapper, nil
}

func (g *restClientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientConfig{config: g.config, namespace: g.namespace}
}

// clientConfig answers kubectl's and Helm's questions about "the kubeconfig"
// from memory. Helm asks it only for the namespace.
type clientConfig struct {
	config    *rest.Config
	namespace string
}

var errNoKubeconfig = errors.New("release: built from an in-memory rest.Config, there is no kubeconfig")

func (c clientConfig) RawConfig() (clientcmdapi.Config, error) {
	return clientcmdapi.Config{}, errNoKubeconfig
}

func (c clientConfig) ClientConfig() (*rest.Config, error) {
	return rest.CopyConfig(c.config), nil
}

// Namespace returns the namespace of the call, reported as set explicitly.
func (c clientConfig) Namespace() (string, bool, error) {
	return c.namespace, true, nil
}

// ConfigAccess returns nil, as client-go's own DirectClientConfig does when
// it was not loaded from files.
func (c clientConfig) ConfigAccess() clientcmd.ConfigAccess {
	return nil
}
