// Package cloudauth logs in to cloud registries (Amazon ECR, Azure ACR,
// Google Artifact Registry and GCR) with the manager's own cloud identity,
// through the Flux project's github.com/fluxcd/pkg/auth, as Flux's
// OCIRepository does (`provider: aws | azure | gcp`). Only the manager
// imports it: the CLI reads the Docker config, as cosign does, and stays
// small.
package cloudauth

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/auth"
	_ "github.com/fluxcd/pkg/auth/aws"   // registers the aws provider
	_ "github.com/fluxcd/pkg/auth/azure" // registers the azure provider
	_ "github.com/fluxcd/pkg/auth/gcp"   // registers the gcp provider
	authutils "github.com/fluxcd/pkg/auth/utils"
	"github.com/fluxcd/pkg/cache"
	"github.com/google/go-containerregistry/pkg/authn"
)

// Providers are the cloud providers Keychain knows.
var Providers = []string{"aws", "azure", "gcp"}

// Cache keeps registry credentials until they expire, so a reconcile does
// not ask the cloud for a token each time (ECR rate-limits its token API).
type Cache struct {
	tokens *cache.TokenCache
}

// NewCache returns a cache of at most capacity credentials.
func NewCache(capacity int) (*Cache, error) {
	tc, err := cache.NewTokenCache(capacity)
	if err != nil {
		return nil, err
	}
	return &Cache{tokens: tc}, nil
}

// Keychain returns the credentials provider issues to the process's cloud
// identity for the registry of repository (host[:port]/path), as a keychain
// that answers for that registry host only: they are never sent to another
// host. The credentials are fetched when first used, with ctx. A
// repository whose host is not one of provider's is refused here. cache may
// be nil; owner names the object the credentials are fetched for, in the
// cache's metrics.
func Keychain(ctx context.Context, provider, repository string, c *Cache, owner cache.InvolvedObject) (authn.Keychain, error) {
	p, err := authutils.ProviderByName[auth.ArtifactRegistryCredentialsProvider](provider)
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", provider, err)
	}
	if _, err := p.ParseArtifactRepository(repository); err != nil {
		return nil, fmt.Errorf("provider %s: %w", provider, err)
	}
	host, err := auth.GetRegistryFromArtifactRepository(repository)
	if err != nil {
		return nil, err
	}
	var opts []auth.Option
	if c != nil {
		opts = append(opts, auth.WithCache(*c.tokens, owner))
	}
	a, err := authutils.GetArtifactRegistryCredentials(ctx, provider, repository, opts...)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", provider, err)
	}
	return hostKeychain{host: host, auth: a}, nil
}

// hostKeychain answers with auth for one registry host, anonymous for any
// other.
type hostKeychain struct {
	host string
	auth authn.Authenticator
}

func (k hostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() != k.host {
		return authn.Anonymous, nil
	}
	return k.auth, nil
}
