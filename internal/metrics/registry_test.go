package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEndpoint(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/":                                 EndpointPing,
		"/v2":                                  EndpointPing,
		"/v2/charts/hello/manifests/1.0.0":     EndpointManifest,
		"/v2/charts/hello/manifests/sha256:ab": EndpointManifest,
		"/v2/charts/hello/blobs/sha256:ab":     EndpointBlob,
		"/v2/charts/hello/tags/list":           EndpointTags,
		"/v2/charts/hello/referrers/sha256:ab": EndpointReferrers,
		"/token":                               EndpointToken,
		"/oauth2/token":                        EndpointToken,
		"/v2/charts/manifests/blobs/tags/list": EndpointTags,
		"/v2/charts/blobs/hello/manifests/1.0": EndpointManifest,
		"/v2/charts/hello/something/else":      EndpointToken,
	} {
		if got := Endpoint(path); got != want {
			t.Errorf("Endpoint(%q) = %s, want %s", path, got, want)
		}
	}
}

// TestRegistryRoundTripper: each request is counted once under the
// registry its client is for, by endpoint and status (an uncommon one by its
// class, "error" without a response), and timed once; a request to another
// host (a token server, a redirect) is "elsewhere". Past MaxRegistryLabels
// registries, new ones are "other" while the known ones keep their label.
func TestRegistryRoundTripper(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewRegistry(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.WriteHeader(http.StatusNotFound)
		case strings.Contains(r.URL.Path, "/tags/"):
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer tokens.Close()
	down := httptest.NewServer(nil)
	down.Close()
	host, downHost := strings.TrimPrefix(srv.URL, "http://"), strings.TrimPrefix(down.URL, "http://")
	get := func(registry, url string) {
		t.Helper()
		resp, err := (&http.Client{Transport: m.RoundTripper(registry, http.DefaultTransport)}).Get(url)
		if err == nil {
			resp.Body.Close()
		}
	}
	get(host, srv.URL+"/v2/")
	get(host, srv.URL+"/v2/charts/hello/manifests/1.0.0")
	get(host, srv.URL+"/v2/charts/hello/manifests/2.0.0")
	get(host, srv.URL+"/v2/charts/hello/tags/list")
	get(host, tokens.URL+"/token?scope=repository:charts/hello:pull")
	get(downHost, down.URL+"/v2/")
	for _, c := range []struct {
		host, endpoint, code string
		want                 float64
	}{
		{host, EndpointPing, "200", 1},
		{host, EndpointManifest, "404", 2},
		{host, EndpointTags, "4xx", 1},
		{host, EndpointElsewhere, "200", 1},
		{downHost, EndpointPing, CodeError, 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.host, c.endpoint, c.code)); got != c.want {
			t.Errorf("requests{%s,%s,%s} = %v, want %v", c.host, c.endpoint, c.code, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 5 {
		t.Errorf("%d request series, want 5", n)
	}
	if n := testutil.CollectAndCount(m.duration); n != 5 {
		t.Errorf("%d duration series, want 5 (registry and endpoint)", n)
	}

	// Two hosts are known; the cap leaves room for MaxRegistryLabels-2 more.
	own := 0
	for i := range MaxRegistryLabels {
		if name := fmt.Sprintf("registry-%d.example", i); m.host(name) == name {
			own++
		}
	}
	if own != MaxRegistryLabels-2 {
		t.Errorf("%d new hosts labelled by name, want %d", own, MaxRegistryLabels-2)
	}
	if got := m.host("registry-0.example"); got != "registry-0.example" {
		t.Errorf("a host seen before the cap is labelled %s, want itself", got)
	}
	if got := m.host(host); got != host {
		t.Errorf("a host seen before the cap is labelled %s, want itself", got)
	}
}
