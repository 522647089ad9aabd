package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

// hostileRepo is the repository every hostile case reads.
const hostileRepo = "charts/hello"

// hostileFixture is what the real registry behind every proxy holds, and
// the hostile manifests the proxies serve in place of the honest ones.
type hostileFixture struct {
	reg *distribution
	key *testsign.Key

	// signed is hello 1.0.0 at tag 1.0.0, signed by key (legacy layout).
	signed, signedManifest string
	// unsigned is hello 6.6.6 at tag 6.6.6, signed by no one.
	unsigned, unsignedManifest string
	// chartLayer and sigLayer are the blobs of signed's chart archive and of
	// its signature payload.
	chartLayer, sigLayer string
	// hostile are manifests no honest registry serves for the tag, each
	// signed by key under its own digest, so only the shape or content
	// checks can refuse them: by name.
	hostile map[string]string
}

// Paths of the registry API the proxies intercept.
func manifestPath(ref string) string { return "/v2/" + hostileRepo + "/manifests/" + ref }
func blobPath(digest string) string  { return "/v2/" + hostileRepo + "/blobs/" + digest }

const tagsPath = "/v2/" + hostileRepo + "/tags/list"

// newHostileFixture starts a distribution registry and fills it.
func newHostileFixture(t *testing.T) *hostileFixture {
	t.Helper()
	f := &hostileFixture{reg: startRegistry(t), hostile: map[string]string{}}
	r := testsign.Registry{Host: f.reg.Host}
	var err error
	if f.key, err = testsign.NewKey("p256"); err != nil {
		t.Fatal(err)
	}
	f.signed = pushChart(t, f.reg.Host, hostileRepo, "1.0.0")
	if err := r.SignLegacy(hostileRepo, f.signed, f.signed, f.key); err != nil {
		t.Fatal(err)
	}
	f.unsigned = pushChart(t, f.reg.Host, hostileRepo, "6.6.6")
	if f.signedManifest, err = r.RawManifest(hostileRepo, f.signed); err != nil {
		t.Fatal(err)
	}
	if f.unsignedManifest, err = r.RawManifest(hostileRepo, f.unsigned); err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal([]byte(f.signedManifest), &m); err != nil {
		t.Fatal(err)
	}
	f.chartLayer = m.Layers[0].Digest.String()
	sigManifest, err := r.RawManifest(hostileRepo, strings.Replace(f.signed, ":", "-", 1)+".sig")
	if err != nil {
		t.Fatal(err)
	}
	var sm v1.Manifest
	if err := json.Unmarshal([]byte(sigManifest), &sm); err != nil {
		t.Fatal(err)
	}
	f.sigLayer = sm.Layers[0].Digest.String()

	// A second chart archive, pushed as a blob: what an attacker wants
	// installed. Same name and version, other values.
	files := testchart.Files("hello", "1.0.0")
	files["values.yaml"] = strings.Replace(files["values.yaml"], "hello", "evil", 1)
	evilArchive, err := testchart.Build(testchart.Entries("hello", files))
	if err != nil {
		t.Fatal(err)
	}
	evil, err := r.PushBlob(hostileRepo, testsign.Blob{MediaType: testsign.HelmChartMediaType, Data: evilArchive})
	if err != nil {
		t.Fatal(err)
	}
	legacyEvil := evil
	legacyEvil.MediaType = "application/tar+gzip"

	// Each hostile manifest is A's, edited; each is signed by the trusted
	// key, as an attacker holding a signing key (or a careless signer)
	// would.
	edit := func(name string, change func(doc map[string]any)) {
		var doc map[string]any
		if err := json.Unmarshal([]byte(f.signedManifest), &doc); err != nil {
			t.Fatal(err)
		}
		change(doc)
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		f.hostile[name] = string(raw)
	}
	edit("two chart layers", func(doc map[string]any) {
		doc["layers"] = append(doc["layers"].([]any), evil)
	})
	edit("legacy and new chart layers", func(doc map[string]any) {
		doc["layers"] = append(doc["layers"].([]any), legacyEvil)
	})
	edit("docker manifest", func(doc map[string]any) {
		doc["mediaType"] = string(types.DockerManifestSchema2)
	})
	edit("chart layer size one byte over", func(doc map[string]any) {
		layer := doc["layers"].([]any)[0].(map[string]any)
		layer["size"] = layer["size"].(float64) + 1
	})
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
		{MediaType: types.OCIManifestSchema1, Size: int64(len(f.signedManifest)), Digest: mustHash(t, f.signed)},
		{MediaType: types.OCIManifestSchema1, Size: int64(len(f.unsignedManifest)), Digest: mustHash(t, f.unsigned)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.hostile["index"] = string(index)
	for _, raw := range f.hostile {
		d := sha256Digest([]byte(raw))
		if err := r.SignLegacy(hostileRepo, d, d, f.key); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hostileOutput is verifyOutput with the chart `chartproof verify` loaded.
type hostileOutput struct {
	verifyOutput
	Chart string `json:"chart"`
}

// verifyThrough runs the real `chartproof verify --output json` on
// hello@version through proxy p, under a policy trusting key for the
// proxy's repository, and returns how long it took.
func verifyThrough(t *testing.T, p *hostileProxy, key *testsign.Key, version, timeout string) (result, hostileOutput, time.Duration) {
	t.Helper()
	ref := "oci://" + p.Host + "/" + hostileRepo + ":" + version
	if strings.HasPrefix(version, "sha256:") {
		ref = "oci://" + p.Host + "/" + hostileRepo + "@" + version
	}
	policyFile := writePolicyFile(t, p.Host+"/"+hostileRepo, key.PublicPEM())
	// The CLI build only: a hostile registry may answer each run differently.
	cmd := exec.Command(cliBin, "verify", ref, "--policy", policyFile, "--plain-http", "--output", "json", "--timeout", timeout)
	cmd.Env = isolatedEnv(t)
	start := time.Now()
	res := runCommand(t, cmd)
	took := time.Since(start)
	var out hostileOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("chartproof verify %s: output is not JSON: %v\n%s", ref, err, res)
	}
	return res, out, took
}

// TestHostileRegistryVerify runs the real `chartproof verify` against a proxy in
// front of the real distribution registry that lies, swaps, loops, floods,
// stalls and fails (THREATS.md REG-01…06, REG-08 d, BND-11, DOS-01, DOS-03).
// Each case asserts the exit code and the reason code; its control twin
// reads the same version through the same proxy passing everything through,
// and must be allowed. Where the registry serves content other than the
// signed chart, the verdict must be a refusal and no chart may be loaded:
// nothing partially read is used.
func TestHostileRegistryVerify(t *testing.T) {
	f := newHostileFixture(t)
	serve := func(raw string, header ...string) behaviour {
		return serveManifest(string(types.OCIManifestSchema1), []byte(raw), header...)
	}
	flipLast := func(_ http.Header, b []byte) []byte {
		b[len(b)-1] ^= 1
		return b
	}

	type want struct {
		code         string // reason code; "" means allowed
		inconclusive bool
		digest       string // the digest reported; "" means not checked
	}
	cases := []struct {
		name string
		// version is what is verified: a tag, a range or a digest. Its
		// honest answer is always the signed chart.
		version    string
		behaviours func() map[string]behaviour
		timeout    string // --timeout; zero: 30s
		want       want
		// also checks the proxy's record, when set.
		also func(t *testing.T, p *hostileProxy, took time.Duration)
	}{
		{
			name:    "REG-01 tag re-pointed to the unsigned chart after the first resolution",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): firstThen(passThrough, serve(f.unsignedManifest))}
			},
			// Allowed, and what was verified is what was read: the signed
			// digest and its chart, the tag asked once.
			want: want{digest: f.signed},
			also: tagReadOnce,
		},
		{
			name:    "REG-01 tag re-pointed to the signed chart after the first resolution",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): firstThen(serve(f.unsignedManifest), passThrough)}
			},
			want: want{code: chartproofv1.ReasonNoSignature, digest: f.unsigned},
			also: tagReadOnce,
		},
		{
			name:    "REG-02 Docker-Content-Digest names another manifest, body honest",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): rewrite(func(h http.Header, b []byte) []byte {
					h.Set("Docker-Content-Digest", f.unsigned)
					return b
				})}
			},
			want: want{digest: f.signed},
		},
		{
			name:    "REG-02 the unsigned manifest served for the tag, Docker-Content-Digest naming the signed one",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): serve(f.unsignedManifest, "Docker-Content-Digest", f.signed)}
			},
			want: want{code: chartproofv1.ReasonNoSignature, digest: f.unsigned},
		},
		{
			name:    "REG-02 the unsigned manifest served for the signed digest, Docker-Content-Digest naming it",
			version: f.signed,
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath(f.signed): serve(f.unsignedManifest, "Docker-Content-Digest", f.signed)}
			},
			want: want{code: chartproofv1.ReasonDigestMismatch},
		},
		{
			name:    "REG-03 one byte of the manifest flipped, fetched by digest",
			version: f.signed,
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath(f.signed): rewrite(flipLast)}
			},
			want: want{code: chartproofv1.ReasonDigestMismatch},
		},
		{
			name:    "REG-04a chart layer with one byte flipped",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{blobPath(f.chartLayer): rewrite(flipLast)}
			},
			want: want{code: chartproofv1.ReasonDigestMismatch, digest: f.signed},
		},
		{
			name:    "REG-04b chart layer truncated by one byte",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{blobPath(f.chartLayer): rewrite(func(_ http.Header, b []byte) []byte { return b[:len(b)-1] })}
			},
			want: want{code: chartproofv1.ReasonDigestMismatch, digest: f.signed},
		},
		{
			name:    "REG-04c chart layer with one byte appended",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{blobPath(f.chartLayer): rewrite(func(_ http.Header, b []byte) []byte { return append(b, 0) })}
			},
			want: want{code: chartproofv1.ReasonDigestMismatch, digest: f.signed},
		},
		{
			name:    "REG-04d signed manifest whose chart layer size is one byte over",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): serve(f.hostile["chart layer size one byte over"])}
			},
			want: want{code: chartproofv1.ReasonDigestMismatch, digest: sha256Digest([]byte(f.hostile["chart layer size one byte over"]))},
		},
		{
			name:    "REG-05 signed manifest with two chart layers",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): serve(f.hostile["two chart layers"])}
			},
			want: want{code: chartproofv1.ReasonInvalidManifest, digest: sha256Digest([]byte(f.hostile["two chart layers"]))},
		},
		{
			name:    "REG-05 signed manifest with a Helm and a legacy chart layer",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): serve(f.hostile["legacy and new chart layers"])}
			},
			want: want{code: chartproofv1.ReasonInvalidManifest, digest: sha256Digest([]byte(f.hostile["legacy and new chart layers"]))},
		},
		{
			name:    "REG-06 signed index of the signed and the unsigned chart",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): serveManifest(string(types.OCIImageIndex), []byte(f.hostile["index"]))}
			},
			want: want{code: chartproofv1.ReasonInvalidManifest, digest: sha256Digest([]byte(f.hostile["index"]))},
		},
		{
			name:    "REG-06 signed Docker v2 manifest",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): serveManifest(string(types.DockerManifestSchema2), []byte(f.hostile["docker manifest"]))}
			},
			want: want{code: chartproofv1.ReasonInvalidManifest, digest: sha256Digest([]byte(f.hostile["docker manifest"]))},
		},
		{
			name:    "REG-08d tag list whose Link header loops",
			version: "^1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{tagsPath: linkLoop}
			},
			want: want{code: chartproofv1.ReasonLimitExceeded},
			also: func(t *testing.T, p *hostileProxy, _ time.Duration) {
				if got := p.requests(tagsPath); got != limits.MaxTagListPages {
					t.Errorf("tag list pages read: got %d, want %d (limits.MaxTagListPages)", got, limits.MaxTagListPages)
				}
			},
		},
		{
			name:    "DOS-01 endless manifest for the tag",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): endless}
			},
			want: want{code: chartproofv1.ReasonLimitExceeded},
			also: quickly,
		},
		{
			name:    "DOS-01 endless tag list page",
			version: "^1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{tagsPath: endless}
			},
			want: want{code: chartproofv1.ReasonLimitExceeded},
			also: quickly,
		},
		{
			// Reading stops at the descriptor's size plus one byte: more
			// than the signed manifest promised is a mismatch.
			name:    "DOS-01 endless chart layer",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{blobPath(f.chartLayer): endless}
			},
			want: want{code: chartproofv1.ReasonDigestMismatch, digest: f.signed},
			also: quickly,
		},
		{
			name:    "DOS-01 endless signature payload",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{blobPath(f.sigLayer): endless}
			},
			want: want{code: chartproofv1.ReasonMalformedSignature, digest: f.signed},
			also: quickly,
		},
		{
			name:    "DOS-03 registry stalls on the tag",
			version: "1.0.0",
			timeout: "2s",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): stall}
			},
			want: want{code: chartproofv1.ReasonRegistryUnavailable, inconclusive: true},
			also: withinTimeout(2 * time.Second),
		},
		{
			name:    "DOS-03 registry drips the chart layer one byte at a time",
			version: "1.0.0",
			timeout: "2s",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{blobPath(f.chartLayer): drip}
			},
			want: want{code: chartproofv1.ReasonRegistryUnavailable, inconclusive: true, digest: f.signed},
			also: withinTimeout(2 * time.Second),
		},
		{
			name:    "5xx on the tag",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath("1.0.0"): status(http.StatusServiceUnavailable)}
			},
			want: want{code: chartproofv1.ReasonRegistryUnavailable, inconclusive: true},
		},
		{
			name:    "BND-11 5xx on the signature lookup",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{manifestPath(strings.Replace(f.signed, ":", "-", 1) + ".sig"): status(http.StatusInternalServerError)}
			},
			want: want{code: chartproofv1.ReasonRegistryUnavailable, inconclusive: true, digest: f.signed},
		},
		{
			name:    "5xx on the chart layer",
			version: "1.0.0",
			behaviours: func() map[string]behaviour {
				return map[string]behaviour{blobPath(f.chartLayer): status(http.StatusBadGateway)}
			},
			want: want{code: chartproofv1.ReasonRegistryUnavailable, inconclusive: true, digest: f.signed},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			timeout := tc.timeout
			if timeout == "" {
				timeout = "30s"
			}
			t.Run("control", func(t *testing.T) {
				p := startHostileProxy(t, f.reg.Host, nil)
				res, out, _ := verifyThrough(t, p, f.key, tc.version, timeout)
				if res.code != 0 || !out.Allowed || out.Digest != f.signed || out.Chart != "hello 1.0.0" {
					t.Fatalf("through a pass-through proxy: got exit %d, allowed %v, digest %s, chart %q, reasons %v; want exit 0, allowed, digest %s, chart \"hello 1.0.0\"\n%s",
						res.code, out.Allowed, out.Digest, out.Chart, out.codes(), f.signed, res)
				}
			})
			t.Run("attack", func(t *testing.T) {
				p := startHostileProxy(t, f.reg.Host, tc.behaviours())
				res, out, took := verifyThrough(t, p, f.key, tc.version, timeout)
				if tc.want.code == "" {
					if res.code != 0 || !out.Allowed || out.Chart != "hello 1.0.0" {
						t.Errorf("got exit %d, allowed %v, chart %q, reasons %v; want exit 0, allowed, chart \"hello 1.0.0\"\n%s",
							res.code, out.Allowed, out.Chart, out.codes(), res)
					}
				} else {
					wantExit := 1 // refused
					if tc.want.inconclusive {
						wantExit = 3 // an outage
					}
					if res.code != wantExit || out.Allowed || out.Passed || out.Chart != "" {
						t.Errorf("got exit %d, allowed %v, passed %v, chart %q; want exit %d, refused, no chart loaded\n%s",
							res.code, out.Allowed, out.Passed, out.Chart, wantExit, res)
					}
					if got := out.codes(); !slices.Equal(got, []string{tc.want.code}) {
						t.Errorf("reason codes: got %v, want [%s]\n%s", got, tc.want.code, res)
					}
					if out.Inconclusive != tc.want.inconclusive {
						t.Errorf("inconclusive: got %v, want %v\n%s", out.Inconclusive, tc.want.inconclusive, res)
					}
				}
				if tc.want.digest != "" && out.Digest != tc.want.digest {
					t.Errorf("digest: got %q, want %s", out.Digest, tc.want.digest)
				}
				if tc.also != nil {
					tc.also(t, p, took)
				}
			})
		})
	}
}

// tagReadOnce checks that the tag was resolved exactly once: everything
// after is read by digest.
func tagReadOnce(t *testing.T, p *hostileProxy, _ time.Duration) {
	t.Helper()
	if got := p.requests(manifestPath("1.0.0")); got != 1 {
		t.Errorf("requests for the tag: got %d, want 1 (resolve once, then use the digest)", got)
	}
}

// quickly checks that an endless answer was given up on at its cap, long
// before the --timeout of 30s.
func quickly(t *testing.T, _ *hostileProxy, took time.Duration) {
	t.Helper()
	if took > 15*time.Second {
		t.Errorf("chartproof verify took %s; want it to stop at the cap, not the timeout", took)
	}
}

// withinTimeout checks that a stalled verification ended at the --timeout,
// with some slack for starting the process.
func withinTimeout(timeout time.Duration) func(*testing.T, *hostileProxy, time.Duration) {
	return func(t *testing.T, _ *hostileProxy, took time.Duration) {
		t.Helper()
		if took < timeout || took > timeout+8*time.Second {
			t.Errorf("chartproof verify took %s; want it to give up at --timeout %s", took, timeout)
		}
	}
}
