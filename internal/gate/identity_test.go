package gate_test

import (
	"context"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestLoadChecksChartIdentity (THREATS BND-12): a signed chart whose
// Chart.yaml names another chart than its repository, or another version
// than the tag it was pulled by, is refused with InvalidChart once read;
// the signature itself passes, since it covers the bytes, not where they
// were pushed. So is one whose Helm config blob names another chart or
// version than its Chart.yaml. Each attack has a control twin: the same
// chart pushed where its name and version say, with the config Helm
// writes.
func TestLoadChecksChartIdentity(t *testing.T) {
	tests := []struct {
		name         string
		repo         string // under charts/
		chart        string // Chart.yaml name
		version, tag string // Chart.yaml version; tag pushed under and asked for
		ask          string // version asked for; tag when empty
		config       string // the Helm config blob; as Helm writes it when empty
		wantCode     string
	}{
		{name: "control", repo: "hello", chart: "hello", version: "1.0.0", tag: "1.0.0", wantCode: chartproofv1.ReasonVerified},
		{name: "name differs from the repository", repo: "other", chart: "hello", version: "1.0.0", tag: "1.0.0", wantCode: chartproofv1.ReasonInvalidChart},
		{name: "control: nested repository", repo: "team/hello", chart: "hello", version: "1.0.0", tag: "1.0.0", wantCode: chartproofv1.ReasonVerified},
		{name: "repository named like the chart's directory's parent", repo: "hello/app", chart: "hello", version: "1.0.0", tag: "1.0.0", wantCode: chartproofv1.ReasonInvalidChart},
		{name: "version differs from the tag", repo: "hello", chart: "hello", version: "9.9.9", tag: "1.0.0", wantCode: chartproofv1.ReasonInvalidChart},
		{name: "control: build metadata, '+' tagged as '_'", repo: "hello", chart: "hello", version: "1.0.0+build.1", tag: "1.0.0_build.1", ask: "1.0.0+build.1", wantCode: chartproofv1.ReasonVerified},
		{name: "build metadata differs from the tag", repo: "hello", chart: "hello", version: "1.0.0+build.2", tag: "1.0.0_build.1", ask: "1.0.0+build.1", wantCode: chartproofv1.ReasonInvalidChart},
		{name: "control: range resolved to the tag", repo: "hello", chart: "hello", version: "1.2.0", tag: "1.2.0", ask: ">=1.0.0 <2.0.0", wantCode: chartproofv1.ReasonVerified},
		{name: "range resolved to a tag holding another version", repo: "hello", chart: "hello", version: "1.0.0", tag: "1.2.0", ask: ">=1.0.0 <2.0.0", wantCode: chartproofv1.ReasonInvalidChart},
		{name: "control: by digest, no tag to compare", repo: "hello", chart: "hello", version: "9.9.9", tag: "1.0.0", ask: "digest", wantCode: chartproofv1.ReasonVerified},
		{name: "control: Helm config with every Chart.yaml field", repo: "hello", chart: "hello", version: "1.0.0", tag: "1.0.0",
			config: `{"name":"hello","version":"1.0.0","description":"A chart","apiVersion":"v2","appVersion":"2.53","type":"application"}`, wantCode: chartproofv1.ReasonVerified},
		{name: "Helm config names another chart", repo: "hello", chart: "hello", version: "1.0.0", tag: "1.0.0",
			config: `{"name":"other","version":"1.0.0","apiVersion":"v2"}`, wantCode: chartproofv1.ReasonInvalidChart},
		{name: "Helm config names another version", repo: "hello", chart: "hello", version: "1.0.0", tag: "1.0.0",
			config: `{"name":"hello","version":"6.6.6","apiVersion":"v2"}`, wantCode: chartproofv1.ReasonInvalidChart},
		{name: "Helm config names the chart twice", repo: "hello", chart: "hello", version: "1.0.0", tag: "1.0.0",
			config: `{"name":"hello","name":"other","version":"1.0.0","apiVersion":"v2"}`, wantCode: chartproofv1.ReasonInvalidChart},
		{name: "Helm config is not JSON", repo: "hello", chart: "hello", version: "1.0.0", tag: "1.0.0",
			config: `name: hello`, wantCode: chartproofv1.ReasonInvalidChart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t, true)
			k, _ := testsign.NewKey("p256")
			p, v := compile(t, reg.Host, k)
			repo := "charts/" + tc.repo
			archive, err := testchart.Archive(tc.chart, tc.version)
			if err != nil {
				t.Fatal(err)
			}
			d, err := reg.PushChart(repo, tc.tag, archive, tc.chart, tc.version)
			if tc.config != "" {
				d, err = reg.PushManifest(repo, tc.tag, testsign.Manifest{
					Config: testsign.Blob{MediaType: testsign.HelmConfigMediaType, Data: []byte(tc.config)},
					Layers: []testsign.Blob{{MediaType: testsign.HelmChartMediaType, Data: archive}},
				})
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.SignLegacy(repo, d, d, k); err != nil {
				t.Fatal(err)
			}
			ask := tc.ask
			switch ask {
			case "":
				ask = tc.tag
			case "digest":
				ask = d
			}
			client := oci.NewClient(oci.Options{PlainHTTP: true})
			res := gate.Check(context.Background(), client, nil, gate.Request{URL: "oci://" + reg.Host + "/" + repo, Version: ask, Policy: p, Verifier: v})
			if !res.Verdict.Passed() || res.Digest != d {
				t.Fatalf("Check: %s; want the signature to pass on %s", res.Verdict.Message(), d)
			}
			res = gate.Load(context.Background(), client, nil, res)
			if got := res.Verdict.Code(); got != tc.wantCode {
				t.Fatalf("Load: code %s (%s), want %s", got, res.Verdict.Message(), tc.wantCode)
			}
			if tc.wantCode == chartproofv1.ReasonVerified {
				if res.Chart == nil {
					t.Fatal("control: verified, but no chart loaded")
				}
				return
			}
			if res.Verdict.Allowed() || res.Chart != nil || res.Verdict.Inconclusive {
				t.Fatalf("Load: allowed %v, chart loaded %v, inconclusive %v; want denied, no chart, not inconclusive", res.Verdict.Allowed(), res.Chart != nil, res.Verdict.Inconclusive)
			}
			if msg := res.Verdict.Message(); !strings.Contains(msg, "chart identity") && !strings.Contains(msg, "helm config") {
				t.Errorf("Load: message %q does not say the chart identity differs, or what is wrong with the Helm config", msg)
			}
		})
	}
}
