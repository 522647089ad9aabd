package oci

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// KeychainFromDockerConfig reads the JSON of a kubernetes.io/dockerconfigjson
// Secret (".dockerconfigjson") into a keychain. Credentials are matched by
// exact registry host, so they are never sent to another host.
func KeychainFromDockerConfig(data []byte) (authn.Keychain, error) {
	var cfg struct {
		Auths map[string]struct {
			Username string `json:"username"`
			Password string `json:"password"`
			Auth     string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("oci: docker config: %w", err)
	}
	k := dockerConfigKeychain{}
	for host, a := range cfg.Auths {
		user, pass := a.Username, a.Password
		if a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("oci: docker config: auth of %s is not base64", host)
			}
			u, p, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("oci: docker config: auth of %s is not user:password", host)
			}
			user, pass = u, p
		}
		k[normalizeHost(host)] = authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	}
	return k, nil
}

type dockerConfigKeychain map[string]authn.Authenticator

func (k dockerConfigKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[normalizeHost(r.RegistryStr())]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}

// normalizeHost strips a scheme and path from a docker config key
// ("https://host/v1/") and lowercases it.
func normalizeHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	return strings.ToLower(h)
}
