package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestCosignCertificateChain signs a chart the bring-your-own-PKI way,
// `cosign sign --key K --certificate C --certificate-chain CH` with the
// real cosign v2 and v3 CLIs (legacy layout, no log; and cosign v3's new
// bundle format, a v0.3 bundle carrying the chain), C a code-signing
// leaf of a root -> intermediate PKI made in Go for K's public key. cosign
// v2 verifies it under the chain; the real `chartproof verify` accepts it under an x509 authority trusting the
// root and naming the leaf's email, the intermediate coming from the
// chain the signature carries; and refuses it under the same authority
// trusting another root (UntrustedSigner) or naming another signer
// (IdentityMismatch).
func TestCosignCertificateChain(t *testing.T) {
	for _, variant := range []struct {
		name       string
		v3, bundle bool
	}{{"v2", false, false}, {"v3", true, false}, {"v3/bundle", true, true}} {
		v3 := variant.v3
		t.Run(variant.name, func(t *testing.T) {
			t.Parallel()
			host := startRegistry(t).Host
			digest := pushChart(t, host, chartRepo, chartVersion)
			ref := host + "/" + chartRepo + "@" + digest
			bin := tools.cosignV2
			if v3 {
				bin = tools.cosignV3
			}
			c := newCosign(t, bin, v3)
			key, pub := c.generateKeyPair("signer")

			root, err := testsign.NewRootCA("chartproof e2e root", nil)
			if err != nil {
				t.Fatal(err)
			}
			inter, err := root.NewIntermediate("chartproof e2e intermediate", nil)
			if err != nil {
				t.Fatal(err)
			}
			other, err := testsign.NewRootCA("another root", nil)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := inter.IssueFor(parsePublicKey(t, pub), "release@chartproof.test", nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			certFile, chainFile := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "chain.pem")
			for f, text := range map[string]string{certFile: testsign.PEM(leaf), chainFile: testsign.PEM(inter.Cert, root.Cert)} {
				if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"sign", "--key", key, "--certificate", certFile, "--certificate-chain", chainFile, "--tlog-upload=false"}
			switch {
			case variant.bundle:
				args = append(args, "--use-signing-config=false", "--new-bundle-format=true", "--trusted-root", c.trustedRoot)
			case v3:
				args = append(args, "--use-signing-config=false", "--new-bundle-format=false", "--trusted-root", c.trustedRoot)
			}
			c.mustRun(append(args, "--allow-http-registry", "--yes", ref)...)
			where := legacyTag
			if variant.bundle {
				where = referrersTag
			}
			sigManifest := assertSignatureLocation(t, host, digest, where)
			// cosign agrees: the signature verifies under the chain, for the
			// leaf's email (the leaf names no OIDC issuer). cosign v2 checks
			// both: v3 deprecates --certificate-chain for a trusted root,
			// which holds Fulcio authorities, not a PKI's.
			if !variant.bundle {
				newCosign(t, tools.cosignV2, false).mustRun("verify", "--certificate-chain", chainFile,
					"--certificate-identity", "release@chartproof.test", "--certificate-oidc-issuer-regexp", ".*",
					"--insecure-ignore-sct", "--insecure-ignore-tlog=true", "--allow-http-registry", ref)
			}

			repository := host + "/" + chartRepo
			policyFor := func(rootPEM, identity string) string {
				return writePolicyFileWith(t, repository, "", func(s *chartproofv1.TrustPolicySpec) {
					s.Authorities = []chartproofv1.Authority{{Name: "pki", X509: &chartproofv1.X509Authority{
						Roots:      chartproofv1.CertificatesSource{Certificates: rootPEM},
						Identities: []chartproofv1.X509Identity{{SubjectAlternativeName: identity}},
					}}}
				})
			}
			res, out := chartproofVerify(t, "oci://"+ref, policyFor(testsign.PEM(root.Cert), "release@chartproof.test"))
			if res.code != 0 || !out.Allowed || !out.Passed || len(out.Accepted) != 1 || out.Accepted[0].Authority != "pki" || out.Accepted[0].Signature != sigManifest {
				t.Errorf("chartproof verify under the PKI: got exit %d allowed=%t passed=%t accepted %+v, want exit 0 and authority pki accepting %s\n%s",
					res.code, out.Allowed, out.Passed, out.Accepted, sigManifest, res)
			}
			for _, tc := range []struct {
				name, rootPEM, identity, want string
			}{
				{"another root", testsign.PEM(other.Cert), "release@chartproof.test", chartproofv1.ReasonUntrustedSigner},
				{"another signer", testsign.PEM(root.Cert), "other@chartproof.test", chartproofv1.ReasonIdentityMismatch},
			} {
				res, out := chartproofVerify(t, "oci://"+ref, policyFor(tc.rootPEM, tc.identity))
				if res.code != 1 || out.Allowed || !slices.Equal(out.codes(), []string{tc.want}) {
					t.Errorf("chartproof verify, %s: got exit %d allowed=%t reasons %v, want exit 1, denied, [%s]\n%s",
						tc.name, res.code, out.Allowed, out.codes(), tc.want, res)
				}
			}
		})
	}
}

// parsePublicKey reads a cosign.pub.
func parsePublicKey(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s is not PEM", path)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
