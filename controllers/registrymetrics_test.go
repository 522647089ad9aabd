package controllers_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestRegistryRequestsCounted: every request a release's verification and
// install send to a registry is counted by host, endpoint and status and
// timed; a registry that answers 503 and one where nothing listens are
// counted with their status and "error". Each registry here has a host of
// its own, so the counts are this test's alone.
func TestRegistryRequestsCounted(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	f := newFixture(t)
	f.useRegistry(testsign.Registry{Host: host})
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "", host+"/**")
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	for _, endpoint := range []string{"ping", "manifest", "blob"} {
		if n := registryRequests(t, host, endpoint, "200"); n < 1 {
			t.Errorf("%s requests to %s answered 200: %v, want >= 1", endpoint, host, n)
		}
	}
	if n := registryRequests(t, host, "", ""); n != registryTimed(t, host) {
		t.Errorf("%v requests to %s counted but %v timed", n, host, registryTimed(t, host))
	}

	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(unavailable.Close)
	down := httptest.NewServer(nil)
	down.Close() // nothing listens there any more
	for _, c := range []struct{ name, host, code string }{
		{"unavailable", strings.TrimPrefix(unavailable.URL, "http://"), "503"},
		{"down", strings.TrimPrefix(down.URL, "http://"), "error"},
	} {
		f.policy(c.name, f.key, "", c.host+"/**")
		f.release(c.name, "1.0.0", c.name, func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Chart.URL = "oci://" + c.host + "/charts/hello"
		})
		f.waitCondition(c.name, chartproofv1.ConditionVerified, metav1.ConditionUnknown, chartproofv1.ReasonRegistryUnavailable)
		if n := registryRequests(t, c.host, "ping", c.code); n < 1 {
			t.Errorf("%s: pings of %s counted with code %s: %v, want >= 1", c.name, c.host, c.code, n)
		}
		if n, all := registryRequests(t, c.host, "", c.code), registryRequests(t, c.host, "", ""); n != all {
			t.Errorf("%s: %v of %v requests to %s counted with code %s, want all", c.name, n, all, c.host, c.code)
		}
	}
}

// registryRequests sums chartproof_registry_requests_total for host, and
// endpoint and code where they are not empty.
func registryRequests(t *testing.T, host, endpoint, code string) float64 {
	t.Helper()
	return sumSeries(t, "chartproof_registry_requests_total", func(m *dto.Metric) float64 {
		if label(m, "registry") != host || endpoint != "" && label(m, "endpoint") != endpoint || code != "" && label(m, "code") != code {
			return 0
		}
		return m.GetCounter().GetValue()
	})
}

// registryTimed is the number of requests to host
// chartproof_registry_request_duration_seconds observed.
func registryTimed(t *testing.T, host string) float64 {
	t.Helper()
	return sumSeries(t, "chartproof_registry_request_duration_seconds", func(m *dto.Metric) float64 {
		if label(m, "registry") != host {
			return 0
		}
		return float64(m.GetHistogram().GetSampleCount())
	})
}

// sumSeries sums value over the series of the metric name in the suite's
// registry.
func sumSeries(t *testing.T, name string, value func(*dto.Metric) float64) float64 {
	t.Helper()
	mfs, err := promReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += value(m)
			}
		}
	}
	return n
}
