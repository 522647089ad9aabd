package main

// The scale scenario: the real manager binary against a local kube-apiserver
// and etcd (envtest) and the distribution registry behind a counting proxy,
// with 1,000 VerifiedHelmReleases over 20 signed charts.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chartproof/chartproof/hack/internal/loopback"
	"github.com/chartproof/chartproof/hack/internal/tenant"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/testworkload"
)

// scaleOptions shape the scale scenario.
type scaleOptions struct {
	releases   int           // VerifiedHelmReleases
	charts     int           // distinct signed charts they share
	namespaces int           // namespaces they are spread over
	interval   time.Duration // spec.interval of every release
	intervals  int           // length of the steady-state window, in intervals
	timeout    time.Duration // give up waiting for all Ready after this long
	runs       []scaleSpec

	driftReleases    int           // VerifiedHelmReleases of the drift scenario
	driftQuiet       time.Duration // its window with no change
	revokeReleases   int           // VerifiedHelmReleases of the revocation scenario
	revokeConcurrent []int         // the manager's --concurrent values in it, one run each
	admissionProfile string        // when set, a directory for CPU profiles of the admission scenario
	revokeProfile    string        // when set, a directory for the manager's CPU profile of each revocation
}

// scaleSpec is one manager configuration to measure.
type scaleSpec struct {
	Concurrent int    `json:"concurrent"`
	CacheTTL   string `json:"cacheTTL"` // --verification-cache-ttl; "0s" is no cache
}

func (s scaleSpec) label() string {
	cache := "cache " + s.CacheTTL
	if d, _ := time.ParseDuration(s.CacheTTL); d <= 0 {
		cache = "no cache"
	}
	return fmt.Sprintf("--concurrent %d, %s", s.Concurrent, cache)
}

// scaleRun is what one run measured. Phases are "converge" (from the first
// create until all Ready) and "steady" (the window after).
type scaleRun struct {
	scaleSpec
	Releases     int     `json:"releases"`
	ApplySeconds float64 `json:"applySeconds"` // creating the releases
	ReadySeconds float64 `json:"readySeconds"` // first create to all Ready; 0 if never
	// ReverifySeconds is from the first patch of spec.interval until every
	// release is Ready for its new generation: all re-verified at once.
	ReverifySeconds float64 `json:"reverifySeconds"`
	ReadyAtEnd      int     `json:"readyAtEnd"` // Ready releases at the end of the run
	PeakRSSMiB      float64 `json:"peakRSSMiB"` // manager VmHWM at the end
	// ConvergePeakRSSMiB is the manager's VmHWM when all were first Ready.
	ConvergePeakRSSMiB float64 `json:"convergePeakRSSMiB"`
	StartRSSMiB        float64 `json:"startRSSMiB"` // manager VmRSS before the first create
	Converge           *phase  `json:"converge"`    // creation to all Ready (or the timeout)
	Reverify           *phase  `json:"reverify"`    // from setting the interval on every release until all Ready again
	Steady             *phase  `json:"steady"`      // the window after
	TimedOut           bool    `json:"timedOut"`    // not all Ready within the timeout
	Intervals          float64 `json:"intervals"`   // the steady window, in intervals
	IntervalSecs       float64 `json:"intervalSeconds"`
	timeline           [][3]float64
}

// phase is what a phase cost, as differences of counters.
type phase struct {
	Seconds float64 `json:"seconds"`
	// CPU seconds (user+system) of each process.
	ManagerCPU   float64 `json:"managerCPU"`
	APIServerCPU float64 `json:"apiserverCPU"`
	EtcdCPU      float64 `json:"etcdCPU"`
	RegistryCPU  float64 `json:"registryCPU"`
	// From the manager's /metrics.
	Verifications      float64            `json:"verifications"`
	VerificationSecs   float64            `json:"verificationSeconds"` // sum of chartproof_verification_duration_seconds
	Reconciles         float64            `json:"reconciles"`
	APIRequests        float64            `json:"apiRequests"`
	APIRequestsByVerb  map[string]float64 `json:"apiRequestsByVerb"`
	RegistryRequests   map[string]int64   `json:"registryRequests"` // by kind, at the proxy
	RegistryConns      int64              `json:"registryConnections"`
	RegistryReqsTotal  int64              `json:"registryRequestsTotal"`
	ManagerGoroutines  float64            `json:"managerGoroutinesAtEnd"`
	ManagerOpenFDs     int                `json:"managerOpenFDsAtEnd"`
	RegistryConnsOpen  int64              `json:"registryConnectionsOpenAtEnd"` // the manager's, at the proxy
	ReconcileSecs      float64            `json:"reconcileSeconds"`             // sum of controller_runtime_reconcile_time_seconds
	QueueWaitSecs      float64            `json:"queueWaitSeconds"`             // sum of workqueue_queue_duration_seconds
	QueueAdds          float64            `json:"queueAdds"`                    // count of workqueue_queue_duration_seconds
	QueueDepthAtEnd    float64            `json:"queueDepthAtEnd"`
	ManagerHeapInuseMB float64            `json:"managerHeapInuseMiBAtEnd"`
}

// snapshot is every counter at one moment.
type snapshot struct {
	at                       time.Time
	manager, apiserver, etcd float64
	registry                 float64
	metrics                  map[string]float64
	requests                 map[string]int64
	conns, open              int64
	fds                      int
}

func scale(chartproof string, o scaleOptions) ([]*scaleRun, error) {
	dir, reg, cleanup, err := newTestBed("scale")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	proxy, err := startProxy(reg.host)
	if err != nil {
		return nil, err
	}
	defer proxy.close()

	// Twenty tiny charts (pushTinyCharts), pushed through the proxy, so
	// the signed references name the host the manager reads from.
	key, err := testsign.NewKey("p256")
	if err != nil {
		return nil, err
	}
	push := testsign.Registry{Host: proxy.host}
	digests, err := pushTinyCharts(push, o.charts, key)
	if err != nil {
		return nil, err
	}
	for i, digest := range digests {
		repo := "scale/" + chartName(i)
		manifest, err := push.RawManifest(repo, digest)
		if err != nil {
			return nil, err
		}
		var m struct{ Layers []struct{ Digest string } }
		if err := json.Unmarshal([]byte(manifest), &m); err != nil || len(m.Layers) != 1 {
			return nil, fmt.Errorf("manifest of %s: %v", repo, err)
		}
		proxy.chartLayers[m.Layers[0].Digest] = true
	}
	say("scale: %d charts pushed and signed at %s (registry %s behind a counting proxy)", o.charts, proxy.host, reg.host)

	var runs []*scaleRun
	for _, spec := range o.runs {
		say("scale: %d releases, %s", o.releases, spec.label())
		r, err := scaleOnce(chartproof, dir, proxy, reg, key, spec, o)
		if err != nil {
			return runs, fmt.Errorf("scale run %s: %w", spec.label(), err)
		}
		say("scale:   all Ready in %.1f s (timed out: %v), peak RSS %.0f MiB, steady: %.2f CPU s/interval, %.0f registry requests/interval",
			r.ReadySeconds, r.TimedOut, r.PeakRSSMiB, r.Steady.ManagerCPU/r.Intervals, float64(r.Steady.RegistryReqsTotal)/r.Intervals)
		runs = append(runs, r)
	}
	return runs, nil
}

func chartName(i int) string { return fmt.Sprintf("hello-%02d", i) }

// scaleOnce measures one manager configuration on a new API server and etcd.
func scaleOnce(chartproof, dir string, proxy *countingProxy, reg *registryProc, key *testsign.Key, spec scaleSpec, o scaleOptions) (*scaleRun, error) {
	ctx := context.Background()
	k8s, kubeconfig, stop, err := localCluster(ctx, dir, "scale", o.namespaces, proxy.host+"/scale/**", key, nil)
	if err != nil {
		return nil, err
	}
	defer stop()

	mgr, err := startManager(chartproof, kubeconfig, filepath.Join(dir, fmt.Sprintf("manager-%d-%s.log", spec.Concurrent, spec.CacheTTL)),
		"--leader-elect=false", fmt.Sprintf("--concurrent=%d", spec.Concurrent), "--verification-cache-ttl="+spec.CacheTTL,
		"--default-service-account="+tenant.ServiceAccount)
	if err != nil {
		return nil, err
	}
	defer mgr.stop()
	procs := controlPlanePIDs()
	take := func() (snapshot, error) {
		s := snapshot{at: time.Now(), manager: cpuSeconds(mgr.cmd.Process.Pid), apiserver: cpuSeconds(procs["kube-apiserver"]),
			etcd: cpuSeconds(procs["etcd"]), registry: cpuSeconds(reg.cmd.Process.Pid)}
		var err error
		s.metrics, err = scrape(mgr.metricsURL)
		s.requests, s.conns, s.open = proxy.counts()
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", mgr.cmd.Process.Pid))
		s.fds = len(fds)
		return s, err
	}

	run := &scaleRun{scaleSpec: spec, Releases: o.releases, IntervalSecs: o.interval.Seconds()}
	run.StartRSSMiB = procStatusMiB(mgr.cmd.Process.Pid, "VmRSS:")
	before, err := take()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := createReleases(ctx, k8s, proxy.host, o); err != nil {
		return nil, err
	}
	run.ApplySeconds = time.Since(start).Seconds()

	// Converge: poll until every release is Ready for its generation.
	ready, err := waitReady(ctx, k8s, mgr, run, start, start.Add(o.timeout), o.releases)
	if err != nil {
		return nil, err
	}
	run.ReadySeconds, run.TimedOut = ready, ready == 0
	converged, err := take()
	if err != nil {
		return nil, err
	}
	run.Converge = diff(before, converged)
	run.ConvergePeakRSSMiB = procStatusMiB(mgr.cmd.Process.Pid, "VmHWM:")
	if run.TimedOut {
		run.PeakRSSMiB = run.ConvergePeakRSSMiB
		return run, nil
	}

	// Every release gets the short interval: a new generation, so each is
	// reconciled and re-verified at once (as a change of its policy does).
	patched := time.Now()
	if err := forEachRelease(o, func(_ int, namespace, name string) error {
		vhr := &chartproofv1.VerifiedHelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
		return k8s.Patch(ctx, vhr, client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"interval":%q}}`, o.interval))))
	}); err != nil {
		return nil, err
	}
	ready, err = waitReady(ctx, k8s, mgr, run, start, patched.Add(o.timeout), o.releases)
	if err != nil {
		return nil, err
	}
	if ready == 0 {
		run.TimedOut = true
		run.PeakRSSMiB = procStatusMiB(mgr.cmd.Process.Pid, "VmHWM:")
		return run, nil
	}
	run.ReverifySeconds = time.Since(patched).Seconds()
	reverified, err := take()
	if err != nil {
		return nil, err
	}
	run.Reverify = diff(converged, reverified)
	converged = reverified

	// Steady state: every release re-verifies once per interval; nothing
	// changed, so nothing is installed and no chart is read.
	window := time.Duration(o.intervals) * o.interval
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		time.Sleep(min(time.Second, time.Until(end))) // sampling the timeline
		ready, err := countReady(ctx, k8s)
		if err != nil {
			return nil, err
		}
		run.timeline = append(run.timeline, [3]float64{time.Since(start).Seconds(), float64(ready), procStatusMiB(mgr.cmd.Process.Pid, "VmRSS:")})
		run.ReadyAtEnd = ready
	}
	if err := mgr.alive(); err != nil {
		return nil, err
	}
	steady, err := take()
	if err != nil {
		return nil, err
	}
	run.Steady = diff(converged, steady)
	run.Intervals = run.Steady.Seconds / o.interval.Seconds()
	run.PeakRSSMiB = procStatusMiB(mgr.cmd.Process.Pid, "VmHWM:")
	return run, nil
}

// newTestBed starts a loopback registry in a new temporary directory, for a
// scenario that starts a local API server; cleanup stops the registry and
// removes the directory.
func newTestBed(scenario string) (dir string, reg *registryProc, cleanup func(), err error) {
	registryBin := os.Getenv("CHARTPROOF_REGISTRY")
	if registryBin == "" || os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return "", nil, nil, errors.New("KUBEBUILDER_ASSETS and CHARTPROOF_REGISTRY must be set: run `make bench`")
	}
	if dir, err = os.MkdirTemp("", "chartproof-"+scenario+"-"); err != nil {
		return "", nil, nil, err
	}
	if reg, err = startRegistry(registryBin, dir); err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	return dir, reg, func() { reg.stop(); os.RemoveAll(dir) }, nil
}

// pushTinyCharts pushes that many tiny charts (one ConfigMap each: envtest has
// no kubelet and only 254 Service IPs) to push's scale/<chartName(i)>, half
// signed by key in the legacy layout, half with a bundle referrer, and
// returns their digests.
func pushTinyCharts(push testsign.Registry, charts int, key *testsign.Key) ([]string, error) {
	var digests []string
	for i := 0; i < charts; i++ {
		name := chartName(i)
		files := testchart.Files(name, "1.0.0")
		small := map[string]string{"Chart.yaml": files["Chart.yaml"], "values.yaml": "message: hello\n",
			"templates/_helpers.tpl": files["templates/_helpers.tpl"], "templates/configmap.yaml": files["templates/configmap.yaml"]}
		archive, err := testchart.Build(testchart.Entries(name, small))
		if err != nil {
			return nil, err
		}
		repo := "scale/" + name
		digest, err := push.PushChart(repo, "1.0.0", archive, name, "1.0.0")
		if err != nil {
			return nil, err
		}
		if i%2 == 0 {
			err = push.SignLegacy(repo, digest, digest, key)
		} else {
			var b []byte
			if b, err = testsign.Bundle(testsign.Statement(push.Host+"/"+repo, digest), key); err == nil {
				_, err = push.AttachBundle(repo, digest, b, true)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("signing %s: %w", repo, err)
		}
		digests = append(digests, digest)
	}
	return digests, nil
}

// localCluster starts a kube-apiserver and etcd with chartproof's CRDs
// (the harness's own client is not rate limited: it is not what is
// measured), writes their kubeconfig in dir, creates namespaces
// prefix-00.. each granted the sample ServiceAccount (the manager's
// --default-service-account) plus what grant adds, and a ClusterTrustPolicy
// named prefix trusting key for repositories. stop stops the API server.
func localCluster(ctx context.Context, dir, prefix string, namespaces int, repositories string, key *testsign.Key,
	grant func(namespace string) []client.Object) (k8s client.Client, kubeconfig string, stop func(), err error) {
	ctrllog.SetLogger(logr.Discard()) // envtest logs through controller-runtime
	env := &envtest.Environment{CRDDirectoryPaths: []string{"config/crd/bases"}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return nil, "", nil, fmt.Errorf("starting the local API server: %w", err)
	}
	// Deployments become available as a deployment controller and
	// kubelets would make them (envtest has neither): the releases'
	// health checks see them Current.
	wctx, wcancel := context.WithCancel(context.Background())
	stop = func() { wcancel(); _ = env.Stop() }
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if _, err = testworkload.Start(wctx, cfg); err != nil {
		return nil, "", nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = chartproofv1.AddToScheme(scheme)
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, "", nil, err
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err = os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return nil, "", nil, err
	}
	for n := 0; n < namespaces; n++ {
		name := fmt.Sprintf("%s-%02d", prefix, n)
		if err = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			return nil, "", nil, err
		}
		if err = tenant.Grant(ctx, k8s, name); err != nil {
			return nil, "", nil, err
		}
		if grant == nil {
			continue
		}
		for _, o := range grant(name) {
			if err = k8s.Create(ctx, o); err != nil {
				return nil, "", nil, err
			}
		}
	}
	err = k8s.Create(ctx, &chartproofv1.ClusterTrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: prefix},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{repositories},
			Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: key.PublicPEM()}}},
		},
	})
	if err != nil {
		return nil, "", nil, err
	}
	return k8s, kubeconfig, stop, nil
}

// waitReady polls until want releases are Ready for their generation, and
// returns the seconds since start; 0 when the deadline passed first.
func waitReady(ctx context.Context, k8s client.Client, mgr *managerProc, run *scaleRun, start, deadline time.Time, want int) (float64, error) {
	for {
		ready, err := countReady(ctx, k8s)
		if err != nil {
			return 0, err
		}
		t := time.Since(start).Seconds()
		run.timeline = append(run.timeline, [3]float64{t, float64(ready), procStatusMiB(mgr.cmd.Process.Pid, "VmRSS:")})
		if ready == want {
			return t, nil
		}
		if time.Now().After(deadline) {
			return 0, nil
		}
		if err := mgr.alive(); err != nil {
			return 0, err
		}
		time.Sleep(time.Second) // a measurement, not a test: sampling once a second
	}
}

// createReleases applies o.releases VerifiedHelmReleases, o.releases/charts
// per chart, spread over the namespaces, from 8 clients at once. They have
// the default interval (10 minutes), so none is re-verified while the
// others converge.
func createReleases(ctx context.Context, k8s client.Client, host string, o scaleOptions) error {
	return forEachRelease(o, func(i int, namespace, name string) error {
		return k8s.Create(ctx, &chartproofv1.VerifiedHelmRelease{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: chartproofv1.VerifiedHelmReleaseSpec{
				Chart:          chartproofv1.ChartSource{URL: "oci://" + host + "/scale/" + chartName(i%o.charts), Version: "1.0.0", Insecure: true},
				TrustPolicyRef: chartproofv1.TrustPolicyReference{Kind: "ClusterTrustPolicy", Name: "scale"},
			},
		})
	})
}

// forEachRelease calls f for every release (its index, namespace and name)
// from 8 goroutines, and returns the first error.
func forEachRelease(o scaleOptions, f func(i int, namespace, name string) error) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, 8)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= o.releases {
					return
				}
				if err := f(i, fmt.Sprintf("scale-%02d", i%o.namespaces), fmt.Sprintf("r-%04d", i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func countReady(ctx context.Context, k8s client.Client) (int, error) {
	var list chartproofv1.VerifiedHelmReleaseList
	if err := k8s.List(ctx, &list); err != nil {
		return 0, err
	}
	n := 0
	for _, v := range list.Items {
		c := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionReady)
		if c != nil && c.Status == metav1.ConditionTrue && v.Status.ObservedGeneration == v.Generation {
			n++
		}
	}
	return n, nil
}

func diff(a, b snapshot) *phase {
	p := &phase{
		Seconds:    b.at.Sub(a.at).Seconds(),
		ManagerCPU: b.manager - a.manager, APIServerCPU: b.apiserver - a.apiserver, EtcdCPU: b.etcd - a.etcd,
		RegistryCPU:        b.registry - a.registry,
		Verifications:      b.metrics["chartproof_verifications_total"] - a.metrics["chartproof_verifications_total"],
		VerificationSecs:   b.metrics["chartproof_verification_duration_seconds_sum"] - a.metrics["chartproof_verification_duration_seconds_sum"],
		Reconciles:         b.metrics[`controller_runtime_reconcile_total{controller="verifiedhelmrelease"}`] - a.metrics[`controller_runtime_reconcile_total{controller="verifiedhelmrelease"}`],
		APIRequests:        b.metrics["rest_client_requests_total"] - a.metrics["rest_client_requests_total"],
		APIRequestsByVerb:  map[string]float64{},
		RegistryRequests:   map[string]int64{},
		RegistryConns:      b.conns - a.conns,
		ManagerGoroutines:  b.metrics["go_goroutines"],
		ManagerOpenFDs:     b.fds,
		RegistryConnsOpen:  b.open,
		ReconcileSecs:      b.metrics["controller_runtime_reconcile_time_seconds_sum"] - a.metrics["controller_runtime_reconcile_time_seconds_sum"],
		QueueWaitSecs:      b.metrics["workqueue_queue_duration_seconds_sum"] - a.metrics["workqueue_queue_duration_seconds_sum"],
		QueueAdds:          b.metrics["workqueue_queue_duration_seconds_count"] - a.metrics["workqueue_queue_duration_seconds_count"],
		QueueDepthAtEnd:    b.metrics["workqueue_depth"],
		ManagerHeapInuseMB: b.metrics["go_memstats_heap_inuse_bytes"] / (1 << 20),
	}
	for k, v := range b.metrics {
		if verb, ok := strings.CutPrefix(k, "rest_client_requests_total/"); ok {
			p.APIRequestsByVerb[verb] = v - a.metrics[k]
		}
	}
	for k, v := range b.requests {
		if d := v - a.requests[k]; d != 0 {
			p.RegistryRequests[k] = d
			p.RegistryReqsTotal += d
		}
	}
	return p
}

// scrape reads the manager's Prometheus text metrics: every sample summed
// by metric name, controller_runtime_reconcile_total also by controller,
// and rest_client_requests_total also by method (as "name/METHOD").
func scrape(u string) (map[string]float64, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		name, labels, _ := strings.Cut(series, "{")
		out[name] += v
		switch name {
		case "controller_runtime_reconcile_total":
			if c := label(labels, "controller"); c != "" {
				out[fmt.Sprintf(`%s{controller=%q}`, name, c)] += v
			}
		case "rest_client_requests_total":
			out[name+"/"+label(labels, "method")] += v
		}
	}
	return out, sc.Err()
}

// label returns the value of one label in `a="x",b="y"}`.
func label(labels, name string) string {
	i := strings.Index(labels, name+`="`)
	if i < 0 {
		return ""
	}
	rest := labels[i+len(name)+2:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// cpuSeconds is the user+system CPU time of a process so far (its own, not
// its children's), from /proc/PID/stat, at 100 ticks a second (Linux's
// USER_HZ on every architecture Go supports).
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the 3rd (state) on
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// procStatusMiB is one "kB" field of /proc/PID/status in MiB.
func procStatusMiB(pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, field) {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// controlPlanePIDs finds envtest's kube-apiserver and etcd among this
// process's children.
func controlPlanePIDs() map[string]int {
	out := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		comm := s[open+1 : closing]
		f := strings.Fields(s[closing+2:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self && (comm == "kube-apiserver" || comm == "etcd") {
			out[comm] = pid
		}
	}
	return out
}

// managerProc is the chartproof manager.
type managerProc struct {
	cmd        *exec.Cmd
	metricsURL string
	logFile    string
	done       chan struct{}
	waitErr    error
}

func startManager(bin, kubeconfig, logFile string, args ...string) (*managerProc, error) {
	metricsPort, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	probePort, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, append([]string{"--kubeconfig=" + kubeconfig,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort)}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	m := &managerProc{cmd: cmd, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), logFile: logFile, done: make(chan struct{})}
	go func() { m.waitErr = cmd.Wait(); close(m.done) }()
	if err := loopback.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), 60*time.Second); err != nil {
		m.stop()
		return nil, fmt.Errorf("%w\n%s", err, m.logTail())
	}
	return m, nil
}

// alive returns an error when the manager has exited.
func (m *managerProc) alive() error {
	select {
	case <-m.done:
		return fmt.Errorf("the manager exited: %v\n%s", m.waitErr, m.logTail())
	default:
		return nil
	}
}

func (m *managerProc) logTail() string {
	data, _ := os.ReadFile(m.logFile)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

func (m *managerProc) stop() {
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// countingProxy forwards to the registry on loopback and counts requests by
// kind, and the connections clients open to it.
type countingProxy struct {
	host        string
	srv         *http.Server
	chartLayers map[string]bool // written before serving the manager, then only read

	mu       sync.Mutex
	requests map[string]int64
	conns    atomic.Int64 // opened
	open     atomic.Int64 // open now
}

// Request kinds the proxy counts.
const (
	kindPing          = "ping (/v2/)"
	kindManifestTag   = "manifest by tag (resolve)"
	kindManifestDig   = "manifest by digest"
	kindSigTag        = "legacy .sig tag"
	kindReferrersAPI  = "referrers API"
	kindReferrersTag  = "referrers tag"
	kindChartBlob     = "chart blob"
	kindOtherBlob     = "signature blob"
	kindTags          = "tag list"
	kindOther         = "other"
	kindUploads       = "upload"
	kindFailedRequest = "answered 4xx/5xx"
)

var requestKinds = []string{kindPing, kindManifestTag, kindManifestDig, kindSigTag, kindReferrersAPI, kindReferrersTag,
	kindChartBlob, kindOtherBlob, kindTags, kindUploads, kindOther, kindFailedRequest}

func startProxy(registryHost string) (*countingProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{host: l.Addr().String(), chartLayers: map[string]bool{}, requests: map[string]int64{}}
	target := &url.URL{Scheme: "http", Host: registryHost}
	rp := httputil.NewSingleHostReverseProxy(target)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	rp.Transport = t
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode >= 400 && resp.Request.Method != http.MethodHead {
			p.count(kindFailedRequest)
		}
		return nil
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.count(p.kind(r))
			rp.ServeHTTP(w, r)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				p.conns.Add(1)
				p.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				p.open.Add(-1)
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *countingProxy) count(kind string) {
	p.mu.Lock()
	p.requests[kind]++
	p.mu.Unlock()
}

func (p *countingProxy) counts() (requests map[string]int64, opened, open int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.requests))
	for k, v := range p.requests {
		out[k] = v
	}
	return out, p.conns.Load(), p.open.Load()
}

func (p *countingProxy) kind(r *http.Request) string {
	path := r.URL.Path
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return kindUploads
	case path == "/v2/" || path == "/v2":
		return kindPing
	case strings.HasSuffix(path, "/tags/list"):
		return kindTags
	case strings.Contains(path, "/referrers/"):
		return kindReferrersAPI
	case strings.Contains(path, "/blobs/"):
		if p.chartLayers[path[strings.LastIndexByte(path, '/')+1:]] {
			return kindChartBlob
		}
		return kindOtherBlob
	case strings.Contains(path, "/manifests/"):
		ref := path[strings.LastIndexByte(path, '/')+1:]
		switch {
		case strings.HasSuffix(ref, ".sig"):
			return kindSigTag
		case strings.HasPrefix(ref, "sha256-"):
			return kindReferrersTag
		case strings.HasPrefix(ref, "sha256:"):
			return kindManifestDig
		default:
			return kindManifestTag
		}
	}
	return kindOther
}

func (p *countingProxy) close() { _ = p.srv.Close() }

// writeScaleRaw writes the runs as JSON and the Ready timeline as TSV.
func writeScaleRaw(runs []*scaleRun, rawDir string) error {
	data, err := json.MarshalIndent(runs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(rawDir, "scale.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	var tsv bytes.Buffer
	tsv.WriteString("run\tseconds\tready\tmanager_rss_mib\n")
	for _, r := range runs {
		for _, s := range r.timeline {
			fmt.Fprintf(&tsv, "%s\t%.1f\t%.0f\t%.1f\n", r.label(), s[0], s[1], s[2])
		}
	}
	return os.WriteFile(filepath.Join(rawDir, "scale.tsv"), tsv.Bytes(), 0o644)
}

// perVerification is registry requests per verification in a phase.
func (p *phase) perVerification() float64 {
	if p.Verifications == 0 {
		return 0
	}
	return float64(p.RegistryReqsTotal) / p.Verifications
}

func (p *phase) msPerVerification() float64 {
	if p.Verifications == 0 {
		return 0
	}
	return p.VerificationSecs / p.Verifications * 1e3
}

func (p *phase) meanMS(sum, n float64) float64 {
	if n == 0 {
		return 0
	}
	return sum / n * 1e3
}

func writeScale(b *bytes.Buffer, runs []*scaleRun, o scaleOptions) {
	fmt.Fprintf(b, "## Scale: %d VerifiedHelmReleases over %d charts, the real manager\n\n", o.releases, o.charts)
	fmt.Fprintf(b, "The manager binary (`bin/chartproof --leader-elect=false`) against a local kube-apiserver and etcd (envtest: no kubelet, nothing scheduled) and the CNCF distribution registry on loopback behind a counting proxy, all on this machine. %d charts of one ConfigMap each, half signed in the legacy `.sig` layout and half with a bundle referrer (and its referrers tag), by one key; one ClusterTrustPolicy; every release acts as its namespace's ServiceAccount (impersonated; config/samples/release-rbac.yaml, `--default-service-account`); %d releases over %d namespaces, %d per chart, created at once by 8 clients with the default interval (10m). Each run starts a new API server and etcd and a new manager. Three phases: **converge** — from the first create until every release is Ready for its generation (listed once a second); **re-verify all** — `spec.interval: %s` is then set on every release, a new generation, so all are re-verified at once (as a change of their policy does) until all are Ready again; **steady** — the %d intervals after: every release re-verifies once per interval, nothing changed, nothing is installed. CPU is user+system seconds from /proc; peak memory is the manager's VmHWM over the whole run; registry requests and connections are counted at the proxy; verifications, reconciles, queue times and API requests come from the manager's /metrics. Each configuration ran once: **single-run numbers**. Raw: [bench/scale.json](bench/scale.json), Ready and manager RSS over time: [bench/scale.tsv](bench/scale.tsv).\n\n",
		o.charts, o.releases, o.namespaces, o.releases/o.charts, o.interval, o.intervals)

	b.WriteString("| manager | all Ready (s) | peak RSS (MiB) | manager CPU (s) | API server + etcd CPU (s) | verifications | registry requests / verification | chart blobs read | verification (ms, mean) | reconcile (ms, mean) | re-verify all (s) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range runs {
		ready := short(r.ReadySeconds)
		if r.TimedOut && r.ReadySeconds == 0 {
			ready = fmt.Sprintf("not all: %d of %d after %s", lastReady(r), r.Releases, short(r.Converge.Seconds))
		}
		reverify := short(r.ReverifySeconds)
		if r.Reverify == nil {
			reverify = "not all Ready within the timeout"
		}
		c := r.Converge
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %.0f | %s | %d | %s | %s | %s |\n", r.label(), ready, short(r.PeakRSSMiB),
			short(c.ManagerCPU), short(c.APIServerCPU+c.EtcdCPU), c.Verifications, short(c.perVerification()), c.RegistryRequests[kindChartBlob],
			short(c.msPerVerification()), short(c.meanMS(c.ReconcileSecs, c.Reconciles)), reverify)
	}
	b.WriteString("\nThe columns after peak RSS are for the converge phase. Creating the releases took ")
	for i, r := range runs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(short(r.ApplySeconds) + " s")
	}
	b.WriteString(" of it.\n")

	fmt.Fprintf(b, "\n### Steady state, per interval (%s)\n\n", o.interval)
	b.WriteString("| manager | re-verifications | manager CPU (s) | API server + etcd CPU (s) | registry requests | chart blobs read | registry requests / verification | new registry connections | API requests | verification (ms, mean) | reconcile (ms, mean) | wait in queue (ms, mean) | Ready at the end |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range runs {
		s, n := r.Steady, r.Intervals
		if s == nil {
			fmt.Fprintf(b, "| %s | not measured: not all Ready within the timeout |||||||||||\n", r.label())
			continue
		}
		fmt.Fprintf(b, "| %s | %.0f | %s | %s | %.0f | %.0f | %s | %.0f | %.0f | %s | %s | %s | %d of %d |\n", r.label(), s.Verifications/n, short(s.ManagerCPU/n),
			short((s.APIServerCPU+s.EtcdCPU)/n), float64(s.RegistryReqsTotal)/n, float64(s.RegistryRequests[kindChartBlob])/n, short(s.perVerification()),
			float64(s.RegistryConns)/n, s.APIRequests/n, short(s.msPerVerification()), short(s.meanMS(s.ReconcileSecs, s.Reconciles)),
			short(s.meanMS(s.QueueWaitSecs, s.QueueAdds)), r.ReadyAtEnd, r.Releases)
	}
	b.WriteString("\nAt the end of the steady window, in the manager: ")
	for i, r := range runs {
		if r.Steady == nil {
			continue
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(b, "%s: %.0f goroutines, %d open file descriptors, %d connections open to the registry, heap in use %.0f MiB, work queue depth %.0f",
			r.label(), r.Steady.ManagerGoroutines, r.Steady.ManagerOpenFDs, r.Steady.RegistryConnsOpen, r.Steady.ManagerHeapInuseMB, r.Steady.QueueDepthAtEnd)
	}
	b.WriteString(".\n")

	b.WriteString("\n### Registry requests per verification, by kind\n\nAt the proxy: converge (first verification, install, chart read) / steady (re-verification only).\n\n")
	b.WriteString("| kind |")
	for _, r := range runs {
		fmt.Fprintf(b, " %s |", r.label())
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(runs)) + "\n")
	for _, k := range requestKinds {
		seen := false
		for _, r := range runs {
			seen = seen || r.Converge.RegistryRequests[k] != 0 || (r.Steady != nil && r.Steady.RegistryRequests[k] != 0)
		}
		if !seen {
			continue
		}
		fmt.Fprintf(b, "| %s |", k)
		for _, r := range runs {
			steady := "–"
			if r.Steady != nil {
				steady = short(ratio(r.Steady.RegistryRequests[k], r.Steady.Verifications))
			}
			fmt.Fprintf(b, " %s / %s |", short(ratio(r.Converge.RegistryRequests[k], r.Converge.Verifications)), steady)
		}
		b.WriteString("\n")
	}

	b.WriteString("\n### API requests per reconcile, by verb\n\nConverge / steady, from `rest_client_requests_total` and `controller_runtime_reconcile_total` of the manager (Helm's clients included).\n\n| verb |")
	for _, r := range runs {
		fmt.Fprintf(b, " %s |", r.label())
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(runs)) + "\n")
	var verbs []string
	for _, r := range runs {
		for _, p := range []*phase{r.Converge, r.Steady} {
			if p == nil {
				continue
			}
			for v := range p.APIRequestsByVerb {
				if !slices.Contains(verbs, v) {
					verbs = append(verbs, v)
				}
			}
		}
	}
	slices.Sort(verbs)
	for _, v := range verbs {
		fmt.Fprintf(b, "| %s |", v)
		for _, r := range runs {
			steady := "–"
			if r.Steady != nil {
				steady = short(r.Steady.APIRequestsByVerb[v] / max(r.Steady.Reconciles, 1))
			}
			fmt.Fprintf(b, " %s / %s |", short(r.Converge.APIRequestsByVerb[v]/max(r.Converge.Reconciles, 1)), steady)
		}
		b.WriteString("\n")
	}
	writeScaleTargets(b, runs, o)
}

// writeScaleTargets judges the targets on the first run with the
// default --concurrent and cache (the shipped configuration), and says
// what the others show.
func writeScaleTargets(b *bytes.Buffer, runs []*scaleRun, o scaleOptions) {
	var def, cold *scaleRun
	for _, r := range runs {
		ttl, _ := time.ParseDuration(r.CacheTTL)
		switch {
		case def == nil && r.Concurrent == 4 && ttl > 0:
			def = r
		case cold == nil && ttl <= 0:
			cold = r
		}
	}
	if def == nil {
		def = runs[0]
	}
	fmt.Fprintf(b, "\n### Targets\n\nJudged on the shipped defaults (%s); the other runs show what moves the numbers.\n\n| target | measured | |\n|---|---|---|\n", def.label())
	fmt.Fprintf(b, "| %d releases all Ready within 2 minutes of being applied | %s s |  %s |\n", o.releases, short(def.ReadySeconds), verdict(!def.TimedOut && def.ReadySeconds > 0 && def.ReadySeconds <= 120))
	for _, r := range runs {
		if r != def {
			fmt.Fprintf(b, "| … with %s | %s s | %s |\n", r.label(), short(r.ReadySeconds), verdict(r.ReadySeconds > 0 && r.ReadySeconds <= 120))
		}
	}
	fmt.Fprintf(b, "| peak memory of the manager under 256 MiB | %s MiB | %s |\n", short(def.PeakRSSMiB), verdict(def.PeakRSSMiB > 0 && def.PeakRSSMiB <= 256))
	for _, r := range runs {
		if r != def {
			fmt.Fprintf(b, "| … with %s | %s MiB | %s |\n", r.label(), short(r.PeakRSSMiB), verdict(r.PeakRSSMiB > 0 && r.PeakRSSMiB <= 256))
		}
	}
	// Least privilege costs little (issue 9): every release now acts as its
	// namespace's ServiceAccount. The baseline is the same configuration's
	// run before impersonation (see baselineReadySeconds).
	fmt.Fprintf(b, "| impersonation costs little: all Ready within 10%% of the run before it (%s s) | %s s (%+.0f%%) | %s |\n",
		short(baselineReadySeconds), short(def.ReadySeconds), 100*(def.ReadySeconds/baselineReadySeconds-1), verdict(def.ReadySeconds > 0 && def.ReadySeconds <= 1.1*baselineReadySeconds))
	fmt.Fprintf(b, "| … and peak memory within 10%% (%s MiB) | %s MiB (%+.0f%%) | %s |\n",
		short(baselinePeakRSSMiB), short(def.PeakRSSMiB), 100*(def.PeakRSSMiB/baselinePeakRSSMiB-1), verdict(def.PeakRSSMiB > 0 && def.PeakRSSMiB <= 1.1*baselinePeakRSSMiB))
	if s := def.Steady; s != nil {
		blobs := float64(s.RegistryRequests[kindChartBlob]) / def.Intervals
		fmt.Fprintf(b, "| re-verification reads no chart | %.0f chart blobs per interval | %s |\n", blobs, verdict(blobs == 0))
		fmt.Fprintf(b, "| every release re-verified once per interval | %.0f of %d per interval | %s |\n", s.Verifications/def.Intervals, def.Releases,
			verdict(s.Verifications/def.Intervals >= 0.95*float64(def.Releases)))
	}
	if cold != nil && cold.Steady != nil && def.Steady != nil {
		fmt.Fprintf(b, "| registry requests per verification, cold (no cache) and cached | %s cold, %s cached (steady) | measured |\n",
			short(cold.Steady.perVerification()), short(def.Steady.perVerification()))
	}
	b.WriteString(scaleLimits)
}

// The shipped configuration's numbers before releases impersonated their
// ServiceAccount: the manager of commit 8c9326c, measured on the machine of
// the 2026-12-02 run (an AMD EPYC, 2 cores) with `go run ./hack/bench --only
// scale --scale-runs 4:5m` from a worktree of that commit. A run on another
// machine must measure it again there: the machines differ by a third.
const (
	baselineReadySeconds = 70.8
	baselinePeakRSSMiB   = 159
)

// scaleLimits says what limits the scale numbers, as the tables above show
// it.
const scaleLimits = `
What limits them:

- **Time to all Ready** is the Helm installs, run by the --concurrent workers: an install is about ten API requests (the verb table), and the API server and etcd share this machine's 2 cores with the manager (the CPU columns). More workers shorten it until the cores are busy; without the cache every release reads its signatures and its chart again, which costs the registry little here (loopback) but more on a remote one.
- **Peak memory** grows with --concurrent: each worker holds a Helm install's rendered manifests, clients and buffers while it runs. Registry clients share one HTTP transport per CA bundle (` + "`controllers.RegistryFactory`" + `), so connections are reused from one verification to the next; only a couple stay open (the state at the end of the steady window). Each session still opens one extra connection that fails at once: go-containerregistry's ping of a plain-HTTP registry tries HTTPS first (the new connections column), which an HTTPS registry does not cause.
- **Steady state**: a re-verification with the cache costs two registry requests (the ping and the tag, which is resolved again every time by design) and no blob; without the cache the signatures are read again (manifests, referrers and signature blobs), still no chart. On the API side each reconcile sends one GET — the Helm release history, listed by label once —, one GET per object the release deployed for its health check (kstatus, as its ServiceAccount; one ConfigMap here) and one status PATCH; a list by label reads every Helm release Secret of the namespace, so the API server's CPU per re-verification grows with the releases per namespace (here 100). When a reconcile takes longer than (interval × --concurrent / releases), the workers cannot re-verify every release once per interval and the queue wait grows.
- **Drift checks** came after that baseline: each install or upgrade is followed, in the same reconcile, by a comparison of what it deployed with its verified rendering (a GET and a server-side apply dry run per object, as its ServiceAccount, and once per object a dry-run create for its defaults), and every later reconcile of an installed release repeats it. The watch events of chartproof's own writes (its Helm records, its objects) wake nobody (identity.Writes), so converging costs one reconcile per release (the reconciles column). The impersonation targets compare with a manager that did no drift check; single runs on this machine vary by 10 to 20% (compare the Go benchmarks of two runs).

`

func ratio(n int64, d float64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / d
}

func lastReady(r *scaleRun) int {
	n := 0
	for _, s := range r.timeline {
		if s[0] <= r.Converge.Seconds+1 {
			n = int(s[1])
		}
	}
	return n
}
