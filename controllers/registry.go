package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/oci"
)

// RegistryFactory builds the registry client of a release from its chart
// source: plain HTTP only when asked, its CA bundle, its credentials.
type RegistryFactory struct {
	// Reader reads the referenced Secrets (uncached).
	Reader client.Reader
	// Transport is the base transport; zero means http.DefaultTransport.
	Transport *http.Transport
}

// Client returns a registry client for obj's chart source.
func (f *RegistryFactory) Client(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease) (*oci.Client, error) {
	src := obj.Spec.Chart
	opts := oci.Options{PlainHTTP: src.Insecure}
	base := f.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	transport := base.Clone()
	if src.CertSecretRef != nil {
		s, err := f.secret(ctx, obj.Namespace, src.CertSecretRef.Name)
		if err != nil {
			return nil, fmt.Errorf("chart.certSecretRef: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(s.Data["ca.crt"]) {
			return nil, fmt.Errorf("chart.certSecretRef: secret %s has no PEM certificate under ca.crt", src.CertSecretRef.Name)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	opts.Transport = transport
	if src.SecretRef != nil {
		s, err := f.secret(ctx, obj.Namespace, src.SecretRef.Name)
		if err != nil {
			return nil, fmt.Errorf("chart.secretRef: %w", err)
		}
		data, ok := s.Data[corev1.DockerConfigJsonKey]
		if !ok {
			return nil, fmt.Errorf("chart.secretRef: secret %s has no %s", src.SecretRef.Name, corev1.DockerConfigJsonKey)
		}
		kc, err := oci.KeychainFromDockerConfig(data)
		if err != nil {
			return nil, fmt.Errorf("chart.secretRef: %w", err)
		}
		opts.Keychain = kc
	}
	return oci.NewClient(opts), nil
}

func (f *RegistryFactory) secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := f.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
