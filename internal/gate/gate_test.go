package gate_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// newRegistry starts go-containerregistry's registry on loopback, with or
// without the OCI referrers API.
func newRegistry(t testing.TB, referrersAPI bool) testsign.Registry {
	t.Helper()
	opts := []registry.Option{registry.Logger(log.New(io.Discard, "", 0))}
	if referrersAPI {
		opts = append(opts, registry.WithReferrersSupport(true))
	}
	srv := httptest.NewServer(registry.New(opts...))
	t.Cleanup(srv.Close)
	return testsign.Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
}

func pushChart(t testing.TB, reg testsign.Registry, repo, version string) string {
	t.Helper()
	archive, err := testchart.Archive("hello", version)
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg.PushChart(repo, version, archive, "hello", version)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func compile(t testing.TB, host string, k *testsign.Key) (*policy.Policy, *verify.Verifier) {
	t.Helper()
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{host + "/charts/**"},
		Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: k.PublicPEM()}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	return p, v
}

func TestCheckBothLayoutsBothDiscoveries(t *testing.T) {
	tests := []struct {
		name         string
		referrersAPI bool
		sign         func(reg testsign.Registry, repo, digest string, k *testsign.Key) error
		wantLayout   policy.Layout
	}{
		{"legacy .sig tag", true, func(reg testsign.Registry, repo, d string, k *testsign.Key) error {
			return reg.SignLegacy(repo, d, d, k)
		}, policy.LayoutCosignLegacy},
		{"bundle via referrers API", true, func(reg testsign.Registry, repo, d string, k *testsign.Key) error {
			return attach(reg, repo, d, k, false)
		}, policy.LayoutSigstoreBundle},
		{"bundle via referrers fallback tag", false, func(reg testsign.Registry, repo, d string, k *testsign.Key) error {
			return attach(reg, repo, d, k, true)
		}, policy.LayoutSigstoreBundle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t, tc.referrersAPI)
			k, _ := testsign.NewKey("p256")
			digest := pushChart(t, reg, "charts/hello", "1.0.0")
			if err := tc.sign(reg, "charts/hello", digest, k); err != nil {
				t.Fatal(err)
			}
			p, v := compile(t, reg.Host, k)
			client := oci.NewClient(oci.Options{PlainHTTP: true})
			res := gate.Check(context.Background(), client, nil, gate.Request{
				URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
			})
			if !res.Verdict.Passed() || res.Digest != digest {
				t.Fatalf("Check: passed %v digest %s reasons %+v; want passed, digest %s", res.Verdict.Passed(), res.Digest, res.Verdict.Reasons, digest)
			}
			if got := res.Verdict.Accepted[0].Layout; got != tc.wantLayout {
				t.Errorf("layout = %s, want %s", got, tc.wantLayout)
			}
			loaded := gate.Load(context.Background(), client, nil, res)
			if loaded.Chart == nil || loaded.Chart.Metadata.Version != "1.0.0" {
				t.Fatalf("Load: chart %v, reasons %+v; want hello 1.0.0", loaded.Chart, loaded.Verdict.Reasons)
			}
		})
	}
}

func attach(reg testsign.Registry, repo, digest string, k *testsign.Key, fallbackTag bool) error {
	b, err := testsign.Bundle(testsign.Statement(reg.Host+"/"+repo, digest), k)
	if err != nil {
		return err
	}
	_, err = reg.AttachBundle(repo, digest, b, fallbackTag)
	return err
}

func TestCheckRegistryDownIsInconclusive(t *testing.T) {
	reg := newRegistry(t, true)
	k, _ := testsign.NewKey("p256")
	p, v := compile(t, reg.Host, k)
	srv := httptest.NewServer(nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more
	p.Repositories = []string{host + "/**"}
	res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
		URL: "oci://" + host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
	})
	if res.Verdict.Allowed() || !res.Verdict.Inconclusive || res.Verdict.Code() != chartproofv1.ReasonRegistryUnavailable {
		t.Fatalf("Check: allowed %v inconclusive %v code %s; want denied, inconclusive, %s", res.Verdict.Allowed(), res.Verdict.Inconclusive, res.Verdict.Code(), chartproofv1.ReasonRegistryUnavailable)
	}
}

// TestLoadRegistryDownIsInconclusive: a verified chart whose archive cannot
// be read (the registry answers 503 for it) is refused as inconclusive,
// like a registry outage during Check, not as a failed check; its twin,
// read from the same registry answering honestly, is loaded.
func TestLoadRegistryDownIsInconclusive(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(map[bool]string{false: "control", true: "blob 503"}[down], func(t *testing.T) {
			handler := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
			var failBlobs atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if failBlobs.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				handler.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			reg := testsign.Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
			k, _ := testsign.NewKey("p256")
			p, v := compile(t, reg.Host, k)
			d := pushChart(t, reg, "charts/hello", "1.0.0")
			if err := reg.SignLegacy("charts/hello", d, d, k); err != nil {
				t.Fatal(err)
			}
			client := oci.NewClient(oci.Options{PlainHTTP: true})
			res := gate.Check(context.Background(), client, nil, gate.Request{
				URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
			})
			if !res.Verdict.Passed() {
				t.Fatalf("Check: %s, want passed", res.Verdict.Message())
			}
			failBlobs.Store(down)
			res = gate.Load(context.Background(), client, nil, res)
			if !down {
				if !res.Verdict.Passed() || res.Chart == nil {
					t.Fatalf("Load: passed %v, chart loaded %v (%s); want passed, loaded", res.Verdict.Passed(), res.Chart != nil, res.Verdict.Message())
				}
				return
			}
			if res.Verdict.Allowed() || res.Chart != nil || !res.Verdict.Inconclusive || res.Verdict.Code() != chartproofv1.ReasonRegistryUnavailable {
				t.Fatalf("Load: allowed %v, chart loaded %v, inconclusive %v, code %s; want denied, no chart, inconclusive, %s",
					res.Verdict.Allowed(), res.Chart != nil, res.Verdict.Inconclusive, res.Verdict.Code(), chartproofv1.ReasonRegistryUnavailable)
			}
		})
	}
}

func TestCheckOutOfScopeMakesNoRequest(t *testing.T) {
	k, _ := testsign.NewKey("p256")
	p, v := compile(t, "elsewhere.example", k)
	// An address that would fail if dialled: scope is decided first.
	res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
		URL: "oci://127.0.0.1:1/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
	})
	if res.Verdict.Code() != chartproofv1.ReasonNoPolicyMatch || res.Verdict.Inconclusive {
		t.Fatalf("code %s inconclusive %v, want %s, not inconclusive", res.Verdict.Code(), res.Verdict.Inconclusive, chartproofv1.ReasonNoPolicyMatch)
	}
}

// TestCheckRefusals: each bad input is refused with its reason code, beside
// its control twin (the same setup, well-formed) that passes.
func TestCheckRefusals(t *testing.T) {
	reg := newRegistry(t, true)
	k, _ := testsign.NewKey("p256")
	p, v := compile(t, reg.Host, k)
	client := oci.NewClient(oci.Options{PlainHTTP: true})
	signedChart := func(repo string, archive []byte) {
		d, err := reg.PushChart(repo, "1.0.0", archive, "hello", "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.SignLegacy(repo, d, d, k); err != nil {
			t.Fatal(err)
		}
	}
	good, err := testchart.Archive("hello", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		setup    func(repo string) (url, version string)
		load     bool // the refusal comes when the chart is read
		wantCode string
	}{
		{"control", func(repo string) (string, string) {
			signedChart(repo, good)
			return "oci://" + reg.Host + "/" + repo, "1.0.0"
		}, true, chartproofv1.ReasonVerified},
		{"URL that is not oci://", func(repo string) (string, string) {
			return "https://" + reg.Host + "/" + repo, "1.0.0"
		}, false, chartproofv1.ReasonInvalidSpec},
		{"tag that does not exist", func(repo string) (string, string) {
			signedChart(repo, good)
			return "oci://" + reg.Host + "/" + repo, "2.0.0"
		}, false, chartproofv1.ReasonVersionNotFound},
		{"range nothing matches", func(repo string) (string, string) {
			signedChart(repo, good)
			return "oci://" + reg.Host + "/" + repo, ">=3.0.0"
		}, false, chartproofv1.ReasonVersionNotFound},
		{"an index where a chart manifest belongs (REG-06)", func(repo string) (string, string) {
			signedChart(repo, good)
			d, err := reg.PushChart(repo, "1.0.0", good, "hello", "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d + `","size":1}]}`
			if err := reg.PutRaw(repo, "idx", "application/vnd.oci.image.index.v1+json", []byte(idx)); err != nil {
				t.Fatal(err)
			}
			return "oci://" + reg.Host + "/" + repo, "idx"
		}, false, chartproofv1.ReasonInvalidManifest},
		{"a signed chart with a symlink (ARC)", func(repo string) (string, string) {
			entries := testchart.Entries("hello", testchart.Files("hello", "1.0.0"))
			entries = append(entries, testchart.Entry{Name: "hello/templates/link.yaml", Typeflag: '2', Linkname: "/etc/passwd"})
			archive, err := testchart.Build(entries)
			if err != nil {
				t.Fatal(err)
			}
			signedChart(repo, archive)
			return "oci://" + reg.Host + "/" + repo, "1.0.0"
		}, true, chartproofv1.ReasonInvalidChart},
		{"a chart layer over the size cap", func(repo string) (string, string) {
			d, err := reg.PushManifest(repo, "1.0.0", testsign.Manifest{
				Config: testsign.Blob{MediaType: testsign.HelmConfigMediaType, Data: []byte(`{}`)},
				Layers: []testsign.Blob{{MediaType: testsign.HelmChartMediaType, Data: good}},
			})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := reg.RawManifest(repo, d)
			if err != nil {
				t.Fatal(err)
			}
			// Claim a size above the cap for the same layer digest.
			raw = strings.Replace(raw, `"size":`+itoa(len(good)), `"size":999999999`, 1)
			if err := reg.PutRaw(repo, "big", "application/vnd.oci.image.manifest.v1+json", []byte(raw)); err != nil {
				t.Fatal(err)
			}
			return "oci://" + reg.Host + "/" + repo, "big"
		}, false, chartproofv1.ReasonLimitExceeded},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, version := tc.setup("charts/case" + itoa(i) + "/hello")
			res := gate.Check(context.Background(), client, nil, gate.Request{URL: url, Version: version, Policy: p, Verifier: v})
			if tc.load {
				res = gate.Load(context.Background(), client, nil, res)
			}
			if got := res.Verdict.Code(); got != tc.wantCode {
				t.Fatalf("code = %s (%s), want %s", got, res.Verdict.Message(), tc.wantCode)
			}
			if tc.wantCode == chartproofv1.ReasonVerified && res.Chart == nil {
				t.Fatal("control: verified, but no chart loaded")
			}
			if tc.wantCode != chartproofv1.ReasonVerified && (res.Verdict.Allowed() || res.Chart != nil) {
				t.Fatalf("refusal allowed %v with chart %v", res.Verdict.Allowed(), res.Chart != nil)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
