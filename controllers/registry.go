package controllers

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/fluxcd/pkg/cache"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/cloudauth"
	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/oci"
)

// RegistryFactory builds the registry client of a release from its chart
// source: plain HTTP only when asked, its CA bundle, its credentials.
//
// Clients share HTTP transports, one per CA bundle, so connections to a
// registry are reused across reconciles rather than opened anew (and left
// idle) by each. Credentials are never part of a transport: each client
// authenticates its own session.
type RegistryFactory struct {
	// Transport is the base transport; zero means http.DefaultTransport.
	Transport *http.Transport
	// AllowControllerCloudIdentity lets a release with a cloud provider
	// (spec.chart.provider aws, azure or gcp) log in with the manager's own
	// cloud identity (--allow-controller-cloud-identity). Without it such a
	// release is refused: any tenant could read what that identity may.
	AllowControllerCloudIdentity bool
	// CloudCache keeps cloud registry credentials until they expire; nil
	// fetches them anew for each client.
	CloudCache *cloudauth.Cache
	// Metrics counts and times every request to a registry; nil counts
	// nothing.
	Metrics *metrics.Registry

	mu         sync.Mutex
	transports map[string]*http.Transport // by sha256 of the CA bundle; "" for the system roots
}

// maxTransports bounds the transports kept, one per distinct CA bundle; past
// it they are all dropped (idle connections closed) and built again.
const maxTransports = 64

// maxIdleConnsPerRegistry is how many idle connections a shared transport
// keeps to one registry host.
const maxIdleConnsPerRegistry = 32

// transport returns the shared transport trusting caPEM (nil: the system
// roots), building it the first time.
func (f *RegistryFactory) transport(caPEM []byte) (*http.Transport, error) {
	key := ""
	if caPEM != nil {
		sum := sha256.Sum256(caPEM)
		key = hex.EncodeToString(sum[:])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.transports[key]; ok {
		return t, nil
	}
	if f.transports == nil || len(f.transports) >= maxTransports {
		for _, t := range f.transports {
			t.CloseIdleConnections()
		}
		f.transports = map[string]*http.Transport{}
	}
	base := f.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	t := base.Clone()
	// Reconciles run --concurrent at a time against the same registries:
	// keep enough idle connections per host for all of them (the default
	// keeps two, closing the rest after each use).
	t.MaxIdleConnsPerHost = maxIdleConnsPerRegistry
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("no PEM certificate under ca.crt")
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	f.transports[key] = t
	return t, nil
}

// Client returns a registry client for obj's chart source. reader reads the
// Secrets the source names (credentials, CA bundle) as the release's
// ServiceAccount, uncached: a release cannot use credentials its account
// may not read.
func (f *RegistryFactory) Client(ctx context.Context, reader client.Reader, obj *chartproofv1.VerifiedHelmRelease) (*oci.Client, error) {
	src := obj.Spec.Chart
	opts := oci.Options{PlainHTTP: src.Insecure}
	var caPEM []byte
	if src.CertSecretRef != nil {
		s, err := secret(ctx, reader, obj.Namespace, src.CertSecretRef.Name)
		if err != nil {
			return nil, fmt.Errorf("chart.certSecretRef: %w", err)
		}
		if caPEM = s.Data["ca.crt"]; len(caPEM) == 0 {
			return nil, fmt.Errorf("chart.certSecretRef: secret %s has no PEM certificate under ca.crt", src.CertSecretRef.Name)
		}
	}
	transport, err := f.transport(caPEM)
	if err != nil {
		return nil, fmt.Errorf("chart.certSecretRef: secret %s: %w", src.CertSecretRef.Name, err)
	}
	registry := ""
	if repo, err := oci.ParseRepository(src.URL); err == nil {
		registry = repo.Registry
	}
	opts.Transport = f.Metrics.RoundTripper(registry, transport)
	if src.Provider != "" && src.Provider != "generic" {
		if src.Insecure {
			return nil, fmt.Errorf("chart.provider %s sends a cloud token, never over plain HTTP (chart.insecure)", src.Provider)
		}
		if !f.AllowControllerCloudIdentity {
			return nil, fmt.Errorf("chart.provider %s logs in with the manager's own cloud identity, which this manager does not lend to releases (--allow-controller-cloud-identity)", src.Provider)
		}
		kc, err := cloudauth.Keychain(ctx, src.Provider, strings.TrimPrefix(src.URL, "oci://"), f.CloudCache,
			cache.InvolvedObject{Kind: "VerifiedHelmRelease", Name: obj.Name, Namespace: obj.Namespace, Operation: "pull"})
		if err != nil {
			return nil, fmt.Errorf("chart.provider: %w", err)
		}
		opts.Keychain = kc
	}
	if src.SecretRef != nil {
		s, err := secret(ctx, reader, obj.Namespace, src.SecretRef.Name)
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

func secret(ctx context.Context, reader client.Reader, namespace, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
