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
// were pushed. Each attack has a control twin: the same chart pushed where
// its name and version say.
func TestLoadChecksChartIdentity(t *testing.T) {
	tests := []struct {
		name         string
		repo         string // under charts/
		chart        string // Chart.yaml name
		version, tag string // Chart.yaml version; tag pushed under and asked for
		ask          string // version asked for; tag when empty
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
			if !strings.Contains(res.Verdict.Message(), "chart identity") {
				t.Errorf("Load: message %q does not say the chart identity differs", res.Verdict.Message())
			}
		})
	}
}
