package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestSignBlobReferrerRefused (issue 10, domain separation): the real
// cosign v3 signs the chart manifest's bytes with `sign-blob` (a bare
// message-signature bundle), and the real oras attaches that bundle to the
// chart as a referrer of the Sigstore bundle type. It names the chart's
// digest and the trusted key made it, but it signs bytes, not "this
// artifact": cosign verify refuses it, and chartproof verify refuses it
// as MalformedSignature. The twin, `cosign sign` with the same key, is
// accepted by both.
func TestSignBlobReferrerRefused(t *testing.T) {
	for _, signBlob := range []bool{true, false} {
		t.Run(map[bool]string{true: "sign-blob bundle attached with oras", false: "control: cosign sign"}[signBlob], func(t *testing.T) {
			t.Parallel()
			host := startReferrersRegistry(t)
			digest := pushChart(t, host, chartRepo, chartVersion)
			ref := host + "/" + chartRepo + "@" + digest
			cosign := newCosign(t, tools.cosignV3, true)
			key, pub := cosign.generateKeyPair("signer")

			if signBlob {
				raw, err := (testsign.Registry{Host: host}).RawManifest(chartRepo, digest)
				if err != nil {
					t.Fatal(err)
				}
				manifest, bundle := filepath.Join(cosign.dir, "manifest.json"), filepath.Join(cosign.dir, "bundle.json")
				if err := os.WriteFile(manifest, []byte(raw), 0o600); err != nil {
					t.Fatal(err)
				}
				cosign.mustRun("sign-blob", "--key", key, "--tlog-upload=false", "--use-signing-config=false", "--trusted-root", cosign.trustedRoot,
					"--bundle", bundle, "--yes", manifest)
				attach := exec.Command(tools.oras, "attach", "--plain-http", "--disable-path-validation",
					"--artifact-type", testsign.BundleMediaType, ref, bundle+":"+testsign.BundleMediaType)
				attach.Dir, attach.Env = cosign.dir, isolatedEnv(t)
				if res := runCommand(t, attach); res.code != 0 {
					t.Fatalf("oras attach: %s", res)
				}
			} else {
				cosign.mustRun("sign", "--key", key, "--signing-config", cosign.signingConfig, "--trusted-root", cosign.trustedRoot,
					"--allow-http-registry", "--yes", ref)
			}

			res := cosign.run("verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", "--trusted-root", cosign.trustedRoot, ref)
			if (res.code == 0) == signBlob {
				t.Errorf("cosign verify: %s; want it to accept only the control", res)
			}
			pemText, _ := readPublicKey(t, pub)
			cp, out := chartproofVerify(t, "oci://"+ref, writePolicyFile(t, host+"/"+chartRepo, pemText))
			switch {
			case signBlob && (cp.code != 1 || len(out.codes()) == 0 || out.codes()[0] != chartproofv1.ReasonMalformedSignature):
				t.Errorf("chartproof verify of the sign-blob referrer: %s; want exit 1, MalformedSignature", cp)
			case !signBlob && (cp.code != 0 || !out.Passed):
				t.Errorf("chartproof verify of cosign's signature: %s; want allowed", cp)
			}
		})
	}
}
