package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/pflag"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/verify"
)

// Exit codes of chartproof verify.
const (
	ExitAllowed      = 0
	ExitDenied       = 1 // refused: the chart or its signatures are not what the policy asks
	ExitUsage        = 2 // bad flags, unreadable or invalid policy file
	ExitInconclusive = 3 // an outage: nothing could be decided (not installed in a cluster either)
)

// exitCode is the exit status of a verdict.
func exitCode(v policy.Verdict) int {
	switch {
	case v.Allowed():
		return ExitAllowed
	case v.Inconclusive:
		return ExitInconclusive
	}
	return ExitDenied
}

const verifyUsage = `Usage: chartproof verify oci://HOST[:PORT]/PATH/NAME(:TAG|@sha256:DIGEST) --policy FILE [--mandatory-policy FILE]... [--require-cluster-policy] [--output text|json] [--plain-http] [--timeout DURATION]

Verifies a chart in an OCI registry against a TrustPolicy or ClusterTrustPolicy,
with the same code the controller runs. FILE holds the policy and, as further
YAML documents, any Secret it references. Each --mandatory-policy is a
ClusterTrustPolicy that judges the chart too, as one whose namespaceSelector
selects the release's namespace does in the cluster (the selector itself is not
evaluated here: there is no namespace); --require-cluster-policy is the
manager's flag of that name. Registry credentials come from the
Docker config file (~/.docker/config.json, or $DOCKER_CONFIG).

Exit status: 0 allowed; 1 denied; 2 usage or configuration error; 3 inconclusive:
an outage (the registry unreachable or failing, a trusted root its TUF
repository could not give, a revocation status unknown), so CI can tell an
outage, to retry, from a refusal, to investigate, without reading the output.

Flags:
`

// Env is what the command reads and writes, passed in so tests need no
// process of their own.
type Env struct {
	Stdout, Stderr io.Writer
	// Keychain supplies registry credentials; zero means the Docker config
	// file, as crane and cosign read it.
	Keychain authn.Keychain
	// Timeout bounds the whole verification when --timeout is not given;
	// zero means 2 minutes.
	Timeout time.Duration
}

// defaultTUFDir is chartproof's directory in the user's cache directory.
func defaultTUFDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "chartproof", "tuf")
}

// trustedRootFailure is the reason code of a policy whose trusted root could
// not be had from its TUF repository; "" for any other error.
func trustedRootFailure(err error) string {
	switch {
	case errors.Is(err, policy.ErrTrustedRootRefused):
		return chartproofv1.ReasonTrustedRootRefused
	case errors.Is(err, policy.ErrTrustedRootUnavailable):
		return chartproofv1.ReasonTrustedRootUnavailable
	}
	return ""
}

// Verify runs `chartproof verify` with args (without the subcommand name)
// and returns the exit code.
func Verify(ctx context.Context, env Env, args []string) int {
	fs := pflag.NewFlagSet("chartproof verify", pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	policyFile := fs.String("policy", "", "YAML file with a TrustPolicy or ClusterTrustPolicy, and the Secrets it references")
	mandatoryFiles := fs.StringArray("mandatory-policy", nil, "YAML file with a ClusterTrustPolicy that judges the chart too, as a mandatory policy binding the release would (repeatable)")
	requireCluster := fs.Bool("require-cluster-policy", false, "deny when no ClusterTrustPolicy judges the chart (NoClusterPolicy), as the manager's flag does")
	output := fs.String("output", "text", "output format: text or json")
	plainHTTP := fs.Bool("plain-http", false, "talk to the registry over plain HTTP (an explicit opt-in; never a fallback)")
	sigRepo := fs.String("signature-repository", "", "read the chart's cosign signatures from this repository (oci://host[:port]/path), as cosign's COSIGN_REPOSITORY stores them")
	tufDir := fs.String("tuf-cache-dir", defaultTUFDir(), "where the TUF client keeps the metadata it verified of the repositories a policy's trustedRoot.tuf names")
	timeoutFlag := fs.Duration("timeout", 0, "bound the whole verification, every registry request included; when it runs out the verdict is RegistryUnavailable (inconclusive) (default 2m)")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, verifyUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return ExitAllowed
		}
		// With ContinueOnError, pflag prints nothing itself.
		fmt.Fprintf(env.Stderr, "chartproof verify: %v (see --help)\n", err)
		return ExitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(env.Stderr, "chartproof verify: "+format+"\n", a...)
		return ExitUsage
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one chart reference, got %d (see --help)", fs.NArg())
	}
	if *output != "text" && *output != "json" {
		return usageErr("--output must be text or json, not %q", *output)
	}
	if *policyFile == "" {
		return usageErr("--policy is required")
	}
	if *timeoutFlag < 0 {
		return usageErr("--timeout must not be negative, got %s", *timeoutFlag)
	}
	if *sigRepo != "" {
		if _, err := oci.ParseRepository(*sigRepo); err != nil {
			return usageErr("--signature-repository: %v", err)
		}
	}
	url, version, err := splitReference(fs.Arg(0))
	if err != nil {
		return usageErr("%v", err)
	}
	tuf := &TUFClient{Dir: *tufDir}
	pol, err := LoadPolicyFile(*policyFile, tuf)
	if code := trustedRootFailure(err); code != "" {
		// Not the file's fault: the trusted root could not be had, as a
		// release would be told in a cluster.
		fmt.Fprintf(env.Stderr, "chartproof verify: %s: %v\n", code, err)
		return trustedRootExit(code)
	}
	if err != nil {
		return usageErr("%v", err)
	}
	verifier, err := verify.ForPolicy(pol)
	if err != nil {
		return usageErr("%v", err)
	}
	var mandatory []gate.Judge
	for _, file := range *mandatoryFiles {
		p, err := LoadPolicyFile(file, tuf)
		if code := trustedRootFailure(err); code != "" {
			fmt.Fprintf(env.Stderr, "chartproof verify: --mandatory-policy %s: %s: %v\n", file, code, err)
			return trustedRootExit(code)
		}
		if err != nil {
			return usageErr("%v", err)
		}
		if p.Ref.Kind != "ClusterTrustPolicy" {
			return usageErr("--mandatory-policy %s: only a ClusterTrustPolicy can be mandatory, not a %s", file, p.Ref.Kind)
		}
		v, err := verify.ForPolicy(p)
		if err != nil {
			return usageErr("%v", err)
		}
		mandatory = append(mandatory, gate.Judge{Policy: p, Verifier: v})
	}

	keychain := env.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	timeout := cmp.Or(*timeoutFlag, env.Timeout, 2*time.Minute)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reg := oci.NewClient(oci.Options{PlainHTTP: *plainHTTP, Keychain: keychain})
	// The same two steps as the controller's install: verify the digest,
	// then read the chart by that digest and check the archive, so a signed
	// chart that could not be installed safely is refused here too.
	res := gate.Check(ctx, reg, nil, gate.Request{URL: url, Version: version, SignatureRepository: *sigRepo, Policy: pol, Verifier: verifier,
		Mandatory: mandatory, RequireClusterPolicy: *requireCluster})
	res = gate.Load(ctx, reg, nil, res)

	if *output == "json" {
		err = writeJSON(env.Stdout, res)
	} else {
		err = writeText(env.Stdout, url, version, res)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "chartproof verify: %v\n", err)
		return ExitUsage
	}
	return exitCode(res.Verdict)
}

// trustedRootExit is the exit status of a trusted root that could not be
// had: an outage is inconclusive; metadata refused (expired, rolled back,
// badly signed) is a refusal.
func trustedRootExit(code string) int {
	if code == chartproofv1.ReasonTrustedRootUnavailable {
		return ExitInconclusive
	}
	return ExitDenied
}

// splitReference splits oci://host/path/name:tag or ...@sha256:hex into the
// repository URL and the version. A reference that is neither is a usage
// error, not a verdict.
func splitReference(ref string) (url, version string, err error) {
	if !strings.HasPrefix(ref, "oci://") {
		return "", "", fmt.Errorf("reference %q must start with oci://", ref)
	}
	if repo, digest, ok := strings.Cut(ref, "@"); ok {
		if !policy.CanonicalDigest(digest) {
			return "", "", fmt.Errorf("reference %q: %q is not a sha256 digest (sha256:<64 lowercase hex>)", ref, digest)
		}
		url, version = repo, digest
	} else {
		slash := strings.LastIndex(ref, "/")
		colon := strings.LastIndex(ref, ":")
		if colon <= slash || colon == len(ref)-1 {
			return "", "", fmt.Errorf("reference %q has no :TAG or @sha256:DIGEST", ref)
		}
		url, version = ref[:colon], ref[colon+1:]
	}
	if _, err := oci.ParseRepository(url); err != nil {
		return "", "", fmt.Errorf("reference %q: %w", ref, err)
	}
	return url, version, nil
}

// Output is the JSON document `--output json` prints.
type Output struct {
	Allowed      bool   `json:"allowed"`
	Passed       bool   `json:"passed"`
	Inconclusive bool   `json:"inconclusive"`
	Mode         string `json:"mode,omitempty"`
	Repository   string `json:"repository"`
	Tag          string `json:"tag,omitempty"`
	Digest       string `json:"digest"`
	Chart        string `json:"chart,omitempty"`
	Policy       string `json:"policy"`
	// Mandatory are the mandatory ClusterTrustPolicies that judged the
	// chart too (--mandatory-policy, those covering its repository).
	Mandatory []string `json:"mandatory,omitempty"`
	// Artifact is what `chartproof verify-blob` was asked about: the file
	// path or the sha256:HEX digest given. Empty for a chart.
	Artifact string              `json:"artifact,omitempty"`
	Reasons  []policy.Reason     `json:"reasons"`
	Accepted []policy.Acceptance `json:"accepted"`
	// Attestations are the policy's attestation requirements that held.
	Attestations []policy.HeldAttestation `json:"attestations,omitempty"`
}

func output(res gate.Result) Output {
	v := res.Verdict
	out := Output{
		Allowed: v.Allowed(), Passed: v.Passed(), Inconclusive: v.Inconclusive, Mode: string(v.Mode),
		Repository: res.Repository, Tag: res.Tag, Digest: res.Digest, Policy: v.Policy.String(),
		Reasons: v.Reasons, Accepted: v.Accepted, Attestations: v.Attestations,
	}
	for _, m := range v.Mandatory {
		out.Mandatory = append(out.Mandatory, m.String())
	}
	if res.Chart != nil {
		out.Chart = res.Chart.Metadata.Name + " " + res.Chart.Metadata.Version
	}
	if out.Reasons == nil {
		out.Reasons = []policy.Reason{}
	}
	if out.Accepted == nil {
		out.Accepted = []policy.Acceptance{}
	}
	return out
}

func writeJSON(w io.Writer, res gate.Result) error {
	return encodeJSON(w, output(res))
}

func encodeJSON(w io.Writer, out Output) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeText(w io.Writer, url, version string, res gate.Result) error {
	target := url + ":" + version
	if strings.HasPrefix(version, "sha256:") {
		target = url + "@" + version
	}
	if res.Digest != "" {
		target = "oci://" + res.Repository + "@" + res.Digest
	}
	return writeVerdictText(w, target, res)
}

// writeVerdictText prints the verdict on target (a chart reference, or
// verify-blob's artifact) as text.
func writeVerdictText(w io.Writer, target string, res gate.Result) error {
	var b bytes.Buffer
	v := res.Verdict
	// mandatory lists the mandatory policies that judged, after "policy:".
	mandatory := func() {
		for _, m := range v.Mandatory {
			fmt.Fprintf(&b, "  mandatory policy: %s\n", m)
		}
	}
	switch {
	case v.Passed():
		fmt.Fprintf(&b, "ALLOWED %s\n  policy: %s\n", target, v.Policy)
		mandatory()
		if res.Chart != nil {
			fmt.Fprintf(&b, "  chart: %s %s (archive checked)\n", res.Chart.Metadata.Name, res.Chart.Metadata.Version)
		}
		for _, a := range v.Accepted {
			by := a.Authority
			if a.Policy != "" {
				by += " of " + a.Policy
			}
			if a.PredicateType != "" {
				fmt.Fprintf(&b, "  attestation of predicate type %s\n", a.PredicateType)
			}
			if a.Identity == nil {
				fmt.Fprintf(&b, "  signed by %s (key %s, %s layout)\n", by, shortKey(a.KeyID), a.Layout)
				continue
			}
			fmt.Fprintf(&b, "  signed by %s (signer %s", by, a.Identity)
			if a.Log != nil {
				fmt.Fprintf(&b, ", log index %d", a.Log.Index)
			}
			if a.SignedAt != nil {
				fmt.Fprintf(&b, ", signed %s", a.SignedAt.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(&b, ", %s layout)\n", a.Layout)
		}
		for _, a := range v.Attestations {
			by := a.Authority
			if a.Policy != "" {
				by += " of " + a.Policy
			}
			if a.Identity != nil {
				by += " (signer " + a.Identity.String() + ")"
			}
			fmt.Fprintf(&b, "  attestation %s held: %s, signed by %s (%s layout, %s)\n", a.Name, a.PredicateType, by, a.Layout, a.Signature)
		}
	case v.Audited():
		fmt.Fprintf(&b, "ALLOWED (Audit mode, not verified) %s\n  policy: %s\n", target, v.Policy)
		mandatory()
	case v.Inconclusive:
		fmt.Fprintf(&b, "DENIED (inconclusive) %s\n  policy: %s\n", target, v.Policy)
		mandatory()
	default:
		fmt.Fprintf(&b, "DENIED %s\n  policy: %s\n", target, v.Policy)
		mandatory()
	}
	for _, r := range v.Reasons {
		fmt.Fprintf(&b, "  %s: %s\n", r.Code, r.Message)
		if r.Expected != "" {
			fmt.Fprintf(&b, "    expected: %s\n", r.Expected)
		}
		if r.Found != "" {
			fmt.Fprintf(&b, "    found:    %s\n", r.Found)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func shortKey(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// readFileCapped reads at most max bytes of a file, and fails beyond.
func readFileCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}
