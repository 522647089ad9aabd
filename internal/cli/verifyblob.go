package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/verify"
)

// BlobRepository is the repository scope of the policy verify-blob builds,
// and the repository of its evidence. A blob has no repository, but a
// policy.Policy always has a scope and Evaluate always checks it first; so
// the in-memory policy covers exactly this one name, under the reserved
// .invalid domain (RFC 2606): it names no registry, and no chart can ever be
// evaluated under it.
const BlobRepository = "verify-blob.chartproof.invalid/artifact"

// blobPolicy is the Ref of the in-memory policy verify-blob builds from its
// flags, as verdicts and output name it.
var blobPolicy = policy.Ref{Kind: "CommandLine", Name: "verify-blob"}

const verifyBlobUsage = `Usage: chartproof verify-blob --bundle FILE (--key FILE | IDENTITY) [--trusted-root FILE] [--output text|json] (ARTIFACT | sha256:HEX)

Verifies a Sigstore bundle (v0.1 to v0.3, JSON: a DSSE envelope of cosign's
signing statement naming the artifact's sha256, or a message signature over
it) against one authority given by flags, with the verifier and the policy
evaluation chartproof verify and the controller use. It is for debugging a
signature outside a chart; the artifact is a file (hashed with sha256) or
its digest.

The authority is a key (--key, a PEM public key) or keyless: a certificate
identity, which needs both
  --certificate-identity or --certificate-identity-regexp  (the subject, SAN)
  --certificate-oidc-issuer or --certificate-oidc-issuer-regexp
There is no "any signer". Regular expressions are RE2 and anchored: the whole
value must match (cosign matches them unanchored; write .* for a prefix).
Keyless bundles verify against --trusted-root (trusted_root.json) or, without
it, the Sigstore public-good root embedded in chartproof; nothing is fetched.
With --key, --trusted-root makes the transparency log required: the key's
signature counts only when a log of that root records it (a policy's
requireTransparencyLog); without it, the key alone decides.

The flags build a policy of one authority with threshold 1, whose repository
scope is the reserved name ` + BlobRepository + `.

Exit status: 0 allowed, 1 denied, 2 usage or configuration error, 3 inconclusive
(as chartproof verify).

Flags:
`

// VerifyBlob runs `chartproof verify-blob` with args (without the subcommand
// name) and returns the exit code. It does no network I/O.
func VerifyBlob(env Env, args []string) int {
	const cmd = "chartproof verify-blob"
	fs := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	bundleFile := fs.String("bundle", "", "Sigstore bundle (JSON) to verify")
	keyFile := fs.String("key", "", "PEM public key (PKIX \"PUBLIC KEY\") of a key authority")
	identity := fs.String("certificate-identity", "", "keyless: the exact subject (Subject Alternative Name) of the certificate")
	identityRe := fs.String("certificate-identity-regexp", "", "keyless: an anchored RE2 expression the whole subject must match")
	issuer := fs.String("certificate-oidc-issuer", "", "keyless: the exact OIDC issuer of the certificate")
	issuerRe := fs.String("certificate-oidc-issuer-regexp", "", "keyless: an anchored RE2 expression the whole OIDC issuer must match")
	rootFile := fs.String("trusted-root", "", "Sigstore trusted_root.json: keyless, the root to verify against (default: the embedded public-good root); with --key, the log the signature must be in")
	outputFlag := fs.String("output", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, verifyBlobUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return ExitAllowed
		}
		fmt.Fprintf(env.Stderr, "%s: %v (see --help)\n", cmd, err)
		return ExitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(env.Stderr, cmd+": "+format+"\n", a...)
		return ExitUsage
	}
	keyless := *identity != "" || *identityRe != "" || *issuer != "" || *issuerRe != ""
	switch {
	case fs.NArg() != 1:
		return usageErr("want exactly one artifact path or sha256:HEX digest, got %d (see --help)", fs.NArg())
	case *outputFlag != "text" && *outputFlag != "json":
		return usageErr("--output must be text or json, not %q", *outputFlag)
	case *bundleFile == "":
		return usageErr("--bundle is required")
	case *keyFile != "" && keyless:
		return usageErr("--key cannot be combined with --certificate-*: the authority is a key or a certificate identity, not both")
	case *keyFile == "" && !keyless:
		return usageErr("want --key, or a certificate identity (--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp])")
	case *keyFile == "" && *identity == "" && *identityRe == "":
		return usageErr("keyless verification needs --certificate-identity or --certificate-identity-regexp: there is no \"any signer\"")
	case *keyFile == "" && *issuer == "" && *issuerRe == "":
		return usageErr("keyless verification needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp: there is no \"any signer\"")
	case *identity != "" && *identityRe != "":
		return usageErr("set one of --certificate-identity and --certificate-identity-regexp, not both")
	case *issuer != "" && *issuerRe != "":
		return usageErr("set one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp, not both")
	}
	artifact := fs.Arg(0)
	digest, err := artifactDigest(artifact)
	if err != nil {
		return usageErr("%v", err)
	}
	bundleJSON, err := readFileCapped(*bundleFile, limits.MaxSignatureLayerBytes)
	if err != nil {
		return usageErr("--bundle: %v", err)
	}

	// One authority, threshold 1, compiled by policy.Compile like a policy
	// file: the same checks of keys, trusted roots and identities.
	spec := chartproofv1.TrustPolicySpec{Repositories: []string{BlobRepository}, Threshold: 1, Mode: chartproofv1.ModeEnforce}
	var (
		read     blobFiles
		rootFrom *chartproofv1.TrustedRootReference
	)
	if *rootFile != "" {
		if read.root, err = readFileCapped(*rootFile, limits.MaxPolicyFileBytes); err != nil {
			return usageErr("--trusted-root: %v", err)
		}
		rootFrom = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{
			Namespace: "file", Name: "trusted-root", Key: policy.DefaultTrustedRootKey,
		}}
	}
	if *keyFile != "" {
		pemBytes, err := readFileCapped(*keyFile, limits.MaxPolicyFileBytes)
		if err != nil {
			return usageErr("--key: %v", err)
		}
		// With --trusted-root, the key's signature must be in its log.
		spec.Authorities = []chartproofv1.Authority{{Name: "key", Key: &chartproofv1.KeyAuthority{
			PublicKey: string(pemBytes), RequireTransparencyLog: rootFrom != nil, TrustedRoot: rootFrom,
		}}}
	} else {
		spec.Authorities = []chartproofv1.Authority{{Name: "keyless", Keyless: &chartproofv1.KeylessAuthority{
			TrustedRoot: rootFrom,
			Identities: []chartproofv1.Identity{{
				Issuer: *issuer, IssuerRegExp: *issuerRe, Subject: *identity, SubjectRegExp: *identityRe,
			}},
		}}}
	}
	pol, err := policy.Compile(blobPolicy, spec, read)
	if err != nil {
		return usageErr("%v", err)
	}
	tr := pol.Authorities[0].Log // the trusted root, for messages: a key's log, or the keyless one
	if k := pol.Authorities[0].Keyless; k != nil {
		tr = &k.TrustRoot
	}
	if tr != nil && tr.RootDigest != "" {
		tr.RootSource = fmt.Sprintf("--trusted-root %s (%s)", *rootFile, tr.RootDigest)
	}
	verifier, err := verify.ForPolicy(pol)
	if err != nil {
		return usageErr("%v", err)
	}

	// The same verification as a chart's bundle: internal/verify
	// establishes what the bundle names and who signed it, and
	// internal/policy decides whether that is the artifact's digest and an
	// authority of the policy.
	// A conformant Sigstore verifier: an in-toto attestation of any
	// predicate type is verified like a signature of its subjects, and
	// reported with its predicate type.
	ev := policy.Evidence{Repository: BlobRepository, Digest: digest}
	sig := verifier.Blob(bundleJSON)
	sum := sha256.Sum256(bundleJSON)
	sig.Layout, sig.Ref = policy.LayoutSigstoreBundle, "sha256:"+hex.EncodeToString(sum[:])
	ev.Signatures = append(ev.Signatures, sig)
	res := gate.Result{Repository: BlobRepository, Digest: digest, Verdict: policy.Evaluate(pol, ev)}

	if *outputFlag == "json" {
		out := output(res)
		out.Artifact = artifact
		err = encodeJSON(env.Stdout, out)
	} else {
		target := artifact
		if artifact != digest {
			target += " (" + digest + ")"
		}
		err = writeVerdictText(env.Stdout, target, res)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", cmd, err)
		return ExitUsage
	}
	return exitCode(res.Verdict)
}

// artifactDigest is arg when it is a sha256:HEX digest, or else the sha256
// of the file arg names, read as a stream (it is hashed, never held).
func artifactDigest(arg string) (string, error) {
	if strings.HasPrefix(arg, "sha256:") {
		if !policy.CanonicalDigest(arg) {
			return "", fmt.Errorf("artifact %q is not a sha256 digest (sha256:<64 lowercase hex>)", arg)
		}
		return arg, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// blobFiles answers policy.Compile's reads with the --trusted-root file:
// the in-memory policy references nothing else.
type blobFiles struct{ root []byte }

var _ policy.Reader = blobFiles{}

func (b blobFiles) Secret(ref chartproofv1.SecretKeyReference) ([]byte, error) {
	return nil, fmt.Errorf("secret %s/%s: verify-blob reads no Secrets", ref.Namespace, ref.Name)
}

func (b blobFiles) ConfigMap(namespace, name, key string) ([]byte, error) {
	if b.root == nil {
		return nil, fmt.Errorf("configMap %s/%s: verify-blob reads no ConfigMaps", namespace, name)
	}
	return b.root, nil
}
