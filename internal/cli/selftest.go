package cli

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/pflag"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/selftest"
	"github.com/chartproof/chartproof/internal/verify"
)

// Exit statuses of `chartproof selftest`.
const (
	SelftestPassed       = 0 // every attack refused, the control allowed
	SelftestFalseAllow   = 1 // at least one attack would have been installed
	SelftestUsage        = 2 // bad flags, an unreadable policy, key or chart
	SelftestNotJudgeable = 3 // the control was refused, or a verdict was inconclusive: nothing measured
)

const selftestUsage = `Usage: chartproof selftest --policy FILE --repository oci://HOST[:PORT]/PATH --key FILE [--untrusted-key FILE]... [--chart FILE] [--output text|json] [--plain-http] [--timeout DURATION]

Measures the false-allow rate of a TrustPolicy or ClusterTrustPolicy in your
own registry. It pushes to the scratch repository --repository/CHART-NAME
(which the policy must cover) a chart signed with --key, the key the policy
is meant to trust: the control, which must be allowed. Then the attacks, each
a variant of that chart: unsigned; signed by a fresh key and by each
--untrusted-key; the control's signature copied onto a changed chart; a signed
version tag moved to a changed, unsigned chart (judged before and after, the
signed one must be allowed); and, signed with --key, the chart under a Helm
config naming another version, a second chart layer, and an archive with a
path leaving the chart. Each is judged by the same code as 'chartproof
verify' and the controller. An attack allowed is a false allow.

Every tag it pushes names the run (control-RUN, VERSION-selftest.RUN, ...):
nothing in the repository is moved or overwritten, and what it pushed stays
there, some of it signed with --key. Use a scratch repository.

Keys are cosign's (cosign generate-key-pair), or PEM private keys; an
encrypted key's password is read from COSIGN_PASSWORD. Signatures are written
in cosign's legacy layout, so a policy that requires a transparency log entry
or keyless signatures refuses the control: the run says so and measures
nothing. Delete what it pushed with your registry's tools.

Exit status: 0 no false allow, 1 at least one, 2 usage, 3 nothing measured
(the control refused, or a registry outage).

Flags:
`

// Selftest runs `chartproof selftest` with args and returns the exit
// status.
func Selftest(ctx context.Context, env Env, args []string) int {
	fs := pflag.NewFlagSet("chartproof selftest", pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	policyFile := fs.String("policy", "", "YAML file with the TrustPolicy or ClusterTrustPolicy to measure, and the Secrets it references")
	repository := fs.String("repository", "", "where to push the control and the attacks (oci://host[:port]/path): the repository PATH/CHART-NAME, which the policy must cover")
	keyFile := fs.String("key", "", "private key the policy trusts (cosign.key or PEM): signs the control and the attacks on signed content")
	untrustedFiles := fs.StringArray("untrusted-key", nil, "private key the policy must not trust, e.g. a staging key (repeatable); a fresh key is always tried")
	chartFile := fs.String("chart", "", "chart archive (.tgz) to sign and tamper with (default: a one-ConfigMap chart)")
	output := fs.String("output", "text", "output format: text or json")
	plainHTTP := fs.Bool("plain-http", false, "talk to the registry over plain HTTP (an explicit opt-in; never a fallback)")
	timeoutFlag := fs.Duration("timeout", 0, "bound the whole run (default 5m)")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, selftestUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return SelftestPassed
		}
		fmt.Fprintf(env.Stderr, "chartproof selftest: %v (see --help)\n", err)
		return SelftestUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(env.Stderr, "chartproof selftest: "+format+"\n", a...)
		return SelftestUsage
	}
	switch {
	case fs.NArg() != 0:
		return usageErr("unexpected arguments %q (see --help)", fs.Args())
	case *policyFile == "" || *repository == "" || *keyFile == "":
		return usageErr("--policy, --repository and --key are required (see --help)")
	case *output != "text" && *output != "json":
		return usageErr("--output must be text or json, not %q", *output)
	case *timeoutFlag < 0:
		return usageErr("--timeout must not be negative, got %s", *timeoutFlag)
	}
	if _, err := oci.ParseRepository(*repository); err != nil || !strings.HasPrefix(*repository, "oci://") {
		return usageErr("--repository %q: want oci://host[:port]/path (%v)", *repository, err)
	}
	pol, err := LoadPolicyFile(*policyFile, &TUFClient{Dir: defaultTUFDir()})
	if err != nil {
		return usageErr("%v", err)
	}
	verifier, err := verify.ForPolicy(pol)
	if err != nil {
		return usageErr("%v", err)
	}
	trusted, err := loadSigner(*keyFile)
	if err != nil {
		return usageErr("--key: %v", err)
	}
	untrusted := map[string]signature.Signer{}
	for _, f := range *untrustedFiles {
		s, err := loadSigner(f)
		if err != nil {
			return usageErr("--untrusted-key: %v", err)
		}
		untrusted[f] = s // by path: cosign names every key cosign.key
	}
	archive, chartName, version, err := selftest.SampleChart()
	if err != nil {
		return usageErr("%v", err)
	}
	if *chartFile != "" {
		if archive, err = os.ReadFile(*chartFile); err != nil {
			return usageErr("--chart: %v", err)
		}
		c, err := loader.LoadArchive(bytes.NewReader(archive))
		if err != nil {
			return usageErr("--chart %s: %v", *chartFile, err)
		}
		chartName, version = c.Metadata.Name, c.Metadata.Version
	}

	keychain := env.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(*timeoutFlag, 5*time.Minute))
	defer cancel()
	report, err := selftest.Run(ctx, selftest.Options{
		Repository: *repository, Policy: pol, Verifier: verifier, Trusted: trusted, Untrusted: untrusted,
		Client:    oci.NewClient(oci.Options{PlainHTTP: *plainHTTP, Keychain: keychain}),
		Remote:    []remote.Option{remote.WithAuthFromKeychain(keychain)},
		PlainHTTP: *plainHTTP,
	}, archive, chartName, version)
	if err != nil {
		fmt.Fprintf(env.Stderr, "chartproof selftest: %v\n", err)
		return SelftestNotJudgeable
	}
	if *output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = writeSelftest(env, pol.Ref.String(), *repository, report)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "chartproof selftest: %v\n", err)
		return SelftestUsage
	}
	switch {
	case !report.Judgeable():
		return SelftestNotJudgeable
	case report.FalseAllows > 0:
		return SelftestFalseAllow
	default:
		return SelftestPassed
	}
}

// loadSigner reads a private key: cosign's encrypted format (password in
// COSIGN_PASSWORD) or a PEM private key.
func loadSigner(path string) (signature.Signer, error) {
	return signature.LoadSignerFromPEMFile(path, crypto.SHA256, cryptoutils.StaticPasswordFunc([]byte(os.Getenv("COSIGN_PASSWORD"))))
}

// writeSelftest prints the report as a table and a summary.
func writeSelftest(env Env, policyRef, repository string, r selftest.Report) error {
	fmt.Fprintf(env.Stdout, "chartproof selftest of %s in %s\n\n", policyRef, repository)
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tVERDICT\tREASON\tWHAT")
	verdict := func(c selftest.Case, control bool) string {
		switch {
		case c.Inconclusive:
			return "inconclusive"
		case c.Allowed && control:
			return "allowed"
		case c.Allowed:
			return "FALSE ALLOW"
		default:
			return "refused"
		}
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Control.Name, verdict(r.Control, true), r.Control.Reason, "the chart signed with --key (must be allowed)")
	if r.MovedTagBefore.Name != "" {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.MovedTagBefore.Name, verdict(r.MovedTagBefore, true), r.MovedTagBefore.Reason, r.MovedTagBefore.Attack)
	}
	for _, c := range r.Attacks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, verdict(c, false), c.Reason, c.Attack)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout)
	switch {
	case !r.Control.Allowed || r.Control.Inconclusive:
		fmt.Fprintf(env.Stdout, "NOT MEASURED: the control was refused (%s: %s); the policy must trust --key for %s with a signature in cosign's legacy layout\n", r.Control.Reason, r.Control.Message, repository)
	case !r.MovedTagBefore.Allowed || r.MovedTagBefore.Inconclusive:
		fmt.Fprintf(env.Stdout, "NOT MEASURED: the moved tag's signed chart was refused before the move (%s: %s)\n", r.MovedTagBefore.Reason, r.MovedTagBefore.Message)
	case !r.Judgeable():
		fmt.Fprintln(env.Stdout, "NOT MEASURED: a verdict was inconclusive (the registry, a trusted root or a revocation status could not be read)")
	default:
		fmt.Fprintf(env.Stdout, "false allows: %d of %d attacks (%.1f%%)\n", r.FalseAllows, len(r.Attacks), 100*float64(r.FalseAllows)/float64(len(r.Attacks)))
	}
	return nil
}
