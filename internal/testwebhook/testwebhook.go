// Package testwebhook loads the webhook configuration chartproof ships
// (config/webhook/manifests.yaml) for tests and benchmarks, whose API
// server reaches the webhook on loopback: there is no Service to call.
package testwebhook

import (
	"fmt"
	"os"
	"path/filepath"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// Loopback returns config/webhook's configuration, read under the
// repository root, with each webhook calling https://127.0.0.1:port at its
// path, and no CA bundle: the manager writes its own.
func Loopback(root string, port int) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	data, err := os.ReadFile(filepath.Join(root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		return nil, err
	}
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("config/webhook/manifests.yaml: %w", err)
	}
	if err := PointAt(&cfg, port); err != nil {
		return nil, fmt.Errorf("config/webhook/manifests.yaml: %w", err)
	}
	return &cfg, nil
}

// PointAt makes each webhook of cfg call https://127.0.0.1:port at the path
// its Service names, without a CA bundle.
func PointAt(cfg *admissionregistrationv1.ValidatingWebhookConfiguration, port int) error {
	for i := range cfg.Webhooks {
		w := &cfg.Webhooks[i]
		if w.ClientConfig.Service == nil || w.ClientConfig.Service.Path == nil {
			return fmt.Errorf("webhook %s calls no Service path", w.Name)
		}
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, *w.ClientConfig.Service.Path)
		w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	}
	return nil
}
