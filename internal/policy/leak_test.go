package policy_test

import (
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
)

// TestCompileErrorsCarryNoSecret: a TrustPolicy's author may point its trust
// material at a Secret of the namespace that they cannot read themselves;
// Compile's error reaches status, so it must not quote what it read (THREATS
// TEN-07). The twin: the valid trusted root of the same Secret compiles.
func TestCompileErrorsCarryNoSecret(t *testing.T) {
	const canary = "Zq9canaryToken"
	rootJSON := trustedRootJSON(t)
	objs := objects{
		"secret:ns/app-credentials/trusted_root.json": []byte(`{"mediaType": ` + canary + `}`),
		"secret:ns/app-credentials/cosign.pub":        []byte("-----BEGIN " + canary + "-----\nAAAA\n-----END " + canary + "-----\n"),
		"secret:ns/sigstore/trusted_root.json":        rootJSON,
	}
	ref := policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}
	keyless := func(secret string) chartproofv1.TrustPolicySpec {
		a := keylessAuthority("ci", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow})
		a.Keyless.TrustedRoot = &chartproofv1.TrustedRootReference{SecretRef: &chartproofv1.TrustedRootKeyReference{Name: secret}}
		return chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{a}}
	}
	key := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{{
		Name: "ci", Key: &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "app-credentials", Key: "cosign.pub"}},
	}}}
	for name, spec := range map[string]chartproofv1.TrustPolicySpec{"trusted root": keyless("app-credentials"), "public key": key} {
		_, err := policy.Compile(ref, spec, objs)
		if err == nil {
			t.Fatalf("%s: Compile() of a Secret that holds no trust material succeeded", name)
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: Compile() error quotes the Secret: %v", name, err)
		}
	}
	if _, err := policy.Compile(ref, keyless("sigstore"), objs); err != nil {
		t.Errorf("Compile() of the valid trusted root: %v", err)
	}
}
