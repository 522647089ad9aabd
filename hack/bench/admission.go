package main

// The admission scenario (issue 16, item 5): how fast the webhook decides,
// at the handler and end to end through the API server, each under 200
// concurrent requests, and how soon after the manager starts it serves a
// certificate.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/hack/internal/loopback"
	cpadmission "github.com/chartproof/chartproof/internal/admission"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/testwebhook"
)

const (
	admissionWorkers  = 200
	admissionRequests = 25 // per worker and phase, at least admissionMinimum in all
	admissionMinimum  = 2000
)

// admissionLevels are the numbers of requests kept in flight through the
// API server: one alone, where a round trip is the work of one decision,
// up to the 200, where it is mostly the wait for a core.
var admissionLevels = []int{1, 10, 50, admissionWorkers}

// admissionRun is what the admission scenario measured, latencies in ms.
type admissionRun struct {
	Workers int `json:"workers"`
	// Handler: AdmissionReviews posted to the webhook's HTTP handler in
	// process (JSON in and out, the decision from a release lookup in
	// memory), no TLS: the time in the handler (server side), and the
	// round trip the client saw, which adds the wait for a core with 200
	// requests in flight.
	Handler   []float64 `json:"handlerMs"`
	RoundTrip []float64 `json:"roundTripMs"`
	// Levels: through the API server, at each number of requests in
	// flight.
	Levels []admissionLevel `json:"levels"`
	// CertSeconds is the time from the manager's start to its webhook port
	// completing a TLS handshake; LiveSeconds to the API server's first
	// decision from it (the CA bundle written into the configuration).
	CertSeconds float64 `json:"certSeconds"`
	LiveSeconds float64 `json:"liveSeconds"`
}

// admissionLevel is one number of requests in flight through the API
// server. Through: a dry-run patch of an object a release deployed, which
// the API server sends to the manager's webhook over TLS and refuses;
// Baseline: the same patch of an unlabelled object, which the webhook
// never sees.
type admissionLevel struct {
	InFlight int       `json:"inFlight"`
	Through  []float64 `json:"throughMs"`
	Baseline []float64 `json:"baselineMs"`
	Failed   int       `json:"failed"` // through requests not decided by the webhook
}

// admissionBench runs the scenario; with profile set, it also writes CPU
// profiles of the API server and the manager under 200 requests in flight
// there (pprof).
func admissionBench(chartproof, profile string) (*admissionRun, error) {
	run := &admissionRun{Workers: admissionWorkers}
	var err error
	if run.Handler, run.RoundTrip, err = handlerLatencies(); err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp("", "chartproof-admission-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	key, err := testsign.NewKey("p256")
	if err != nil {
		return nil, err
	}
	k8s, kubeconfig, stop, err := localCluster(ctx, dir, "admission", 1, "127.0.0.1/none/*", key, nil)
	if err != nil {
		return nil, err
	}
	defer stop()
	const ns = "admission-00"
	owned := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owned",
		Labels: map[string]string{chartproofv1.LabelOwner: "0f0e0d0c-0000-0000-0000-000000000000"}}}
	plain := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}}
	for _, o := range []client.Object{owned, plain} {
		if err := k8s.Create(ctx, o); err != nil {
			return nil, err
		}
	}
	port, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	if err := registerWebhook(ctx, k8s, port); err != nil {
		return nil, err
	}

	// The certificate: from the process start to a TLS handshake on the
	// webhook port, polled every 5 ms.
	start := time.Now()
	certDone := make(chan float64, 1)
	go func() {
		for time.Since(start) < time.Minute {
			conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // timing the handshake, not trusting it
			if err == nil {
				_ = conn.Close()
				certDone <- time.Since(start).Seconds()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		certDone <- 0
	}()
	args := []string{fmt.Sprintf("--webhook-port=%d", port), "--webhook-namespace=default", "--webhook-hosts=127.0.0.1"}
	pprofURL := ""
	if profile != "" {
		pport, err := loopback.FreePort()
		if err != nil {
			return nil, err
		}
		args = append(args, fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", pport))
		pprofURL = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=10", pport)
	}
	mgr, err := startManager(chartproof, kubeconfig, filepath.Join(dir, "manager.log"), args...)
	if err != nil {
		return nil, err
	}
	defer mgr.stop()
	// The requests come from another user than the manager (which runs as
	// the API server's admin here): one whose changes the webhook refuses.
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "someone-else", Groups: []string{"system:masters"}}
	if k8s, err = client.New(cfg, client.Options{}); err != nil {
		return nil, err
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"data":{"message":"rewritten"}}`))
	decided := func(o client.Object) (time.Duration, bool) {
		t0 := time.Now()
		err := k8s.Patch(ctx, o.DeepCopyObject().(client.Object), patch, client.DryRunAll)
		d := time.Since(t0)
		if o == plain {
			return d, err == nil
		}
		return d, err != nil && bytes.Contains([]byte(err.Error()), []byte(chartproofv1.ReasonOwnedObjectProtected))
	}
	for {
		if _, ok := decided(owned); ok {
			run.LiveSeconds = time.Since(start).Seconds()
			break
		}
		if time.Since(start) > time.Minute {
			return nil, fmt.Errorf("the webhook decided nothing within a minute\n%s", mgr.logTail())
		}
		time.Sleep(5 * time.Millisecond)
	}
	run.CertSeconds = <-certDone

	// measure sends patches of o from inFlight workers until n are done
	// (or until stop is closed, when n is 0).
	measure := func(o client.Object, inFlight, n int, stop <-chan struct{}) ([]float64, int) {
		var mu sync.Mutex
		var ms []float64
		failed := 0
		var wg sync.WaitGroup
		for range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					d, ok := decided(o)
					mu.Lock()
					if n > 0 && len(ms) >= n {
						mu.Unlock()
						return
					}
					ms = append(ms, float64(d.Microseconds())/1000)
					if !ok {
						failed++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return ms, failed
	}
	measure(owned, admissionWorkers, admissionWorkers*admissionRequests, nil) // warm: connections, the API server's webhook client
	for _, inFlight := range admissionLevels {
		n := max(admissionMinimum, inFlight*admissionRequests)
		level := admissionLevel{InFlight: inFlight}
		level.Baseline, _ = measure(plain, inFlight, n, nil)
		level.Through, level.Failed = measure(owned, inFlight, n, nil)
		run.Levels = append(run.Levels, level)
	}
	if profile != "" {
		if err := os.MkdirAll(profile, 0o755); err != nil {
			return nil, err
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { measure(owned, admissionWorkers, 0, stop); close(done) }()
		api := make(chan error, 1)
		go func() { api <- saveAPIServerProfile(ctx, cfg, filepath.Join(profile, "admission.apiserver.pprof")) }()
		err := errors.Join(saveProfile(pprofURL, filepath.Join(profile, "admission.manager.pprof")), <-api)
		close(stop)
		<-done
		if err != nil {
			return nil, err
		}
	}
	return run, mgr.alive()
}

// handlerLatencies posts AdmissionReviews to the owned-objects handler from
// 200 goroutines and returns each request's time in the handler and its
// round trip.
func handlerLatencies() (inHandler, roundTrip []float64, err error) {
	g := &cpadmission.OwnedObjects{Releases: func(context.Context, string) (cpadmission.Actor, bool, error) {
		return cpadmission.Actor{Release: types.NamespacedName{Namespace: "team-a", Name: "app"}, User: "system:serviceaccount:team-a:deployer"}, true, nil
	}}
	var (
		mu      sync.Mutex
		ms      []float64
		firstEr error
		wg      sync.WaitGroup
	)
	wh := g.Webhook()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		wh.ServeHTTP(w, r)
		d := time.Since(t0)
		mu.Lock()
		inHandler = append(inHandler, float64(d.Microseconds())/1000)
		mu.Unlock()
	}))
	defer srv.Close()
	obj, err := json.Marshal(corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app", Labels: map[string]string{chartproofv1.LabelOwner: "u"}},
		Data:       map[string]string{"message": "hello"}})
	if err != nil {
		return nil, nil, err
	}
	review, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"}, Namespace: "team-a", Name: "app",
			Operation: admissionv1.Update, UserInfo: authenticationv1.UserInfo{Username: "alice"},
			Object: runtime.RawExtension{Raw: obj}, OldObject: runtime.RawExtension{Raw: obj}}})
	if err != nil {
		return nil, nil, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: admissionWorkers}}
	for range admissionWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range admissionRequests * 4 {
				t0 := time.Now()
				resp, err := hc.Post(srv.URL, "application/json", bytes.NewReader(review))
				var out admissionv1.AdmissionReview
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
				}
				d := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil && firstEr == nil:
					firstEr = err
				case err == nil && (out.Response == nil || out.Response.Allowed):
					firstEr = fmt.Errorf("the handler admitted alice's change: %+v", out.Response)
				}
				ms = append(ms, float64(d.Microseconds())/1000)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return inHandler, ms, firstEr
}

// registerWebhook creates config/webhook's configuration calling the
// manager on 127.0.0.1:port (the CA bundle is the manager's to write).
func registerWebhook(ctx context.Context, k8s client.Client, port int) error {
	cfg, err := testwebhook.Loopback(".", port)
	if err != nil {
		return err
	}
	return k8s.Create(ctx, cfg)
}

func writeAdmissionRaw(run *admissionRun, rawDir string) error {
	data, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(rawDir, "admission.json"), data, 0o644)
}

func writeAdmission(b *bytes.Buffer, run *admissionRun) {
	b.WriteString("## Admission: the webhook's decisions\n\n")
	fmt.Fprintf(b, "**Handler**: AdmissionReviews posted to the owned-objects rule's HTTP handler in process (JSON decoded and encoded, the release looked up in memory; no TLS) by %d concurrent clients, each sending its requests one after another, %d requests.\n\n",
		run.Workers, len(run.Handler))
	b.WriteString("| handler | p50 (ms) | p99 (ms) |\n|---|---|---|\n")
	fmt.Fprintf(b, "| time in it (decode, decide, encode) | %s | %s |\n", short(percentile(run.Handler, 50)), short(percentile(run.Handler, 99)))
	fmt.Fprintf(b, "| round trip the client saw | %s | %s |\n\n", short(percentile(run.RoundTrip, 50)), short(percentile(run.RoundTrip, 99)))
	b.WriteString("**Through the API server**: the manager binary serving the webhook over TLS with the certificate it made, a local kube-apiserver calling it for a dry-run patch of an object a release deployed (refused: `OwnedObjectProtected`); **baseline**: the same patch of an unlabelled object, which the webhook never sees. Each row keeps that many requests in flight (clients each sending one after another), baseline first; the webhook's share is the difference between the two. Raw: [bench/admission.json](bench/admission.json).\n\n")
	b.WriteString("| in flight | requests | baseline p50 | baseline p99 | webhook called p50 | webhook called p99 | webhook's share p50 | webhook's share p99 | not decided by the webhook |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, l := range run.Levels {
		bp50, bp99 := percentile(l.Baseline, 50), percentile(l.Baseline, 99)
		tp50, tp99 := percentile(l.Through, 50), percentile(l.Through, 99)
		fmt.Fprintf(b, "| %d | %d | %s | %s | %s | %s | %s | %s | %d |\n", l.InFlight, len(l.Through),
			short(bp50), short(bp99), short(tp50), short(tp99), short(tp50-bp50), short(tp99-bp99), l.Failed)
	}
	b.WriteString("\nTimes in ms. ")
	fmt.Fprintf(b, "With n clients each waiting for its answer before the next request, on %d cores, a round trip beyond a few in flight is mostly the wait for a core: by Little's law it is the number in flight over the throughput, for the baseline as much as with the webhook.\n\n", goruntime.NumCPU())
	fmt.Fprintf(b, "The manager served a certificate %.2f s after it started (a TLS handshake on its port), and the API server had its first decision %.2f s after (the CA bundle written into the configuration).\n\n",
		run.CertSeconds, run.LiveSeconds)
	var one, top admissionLevel
	for _, l := range run.Levels {
		switch l.InFlight {
		case 1:
			one = l
		case admissionWorkers:
			top = l
		}
	}
	if len(top.Baseline) > 0 {
		fmt.Fprintf(b, "At %d in flight the API server alone answered %.0f requests/s (the baseline: the number in flight over its mean round trip). A p99 of 20 ms with %d in flight needs at least %.0f/s, so on this machine no webhook can meet it there: the API server misses it without one.\n\n",
			top.InFlight, throughput(top.InFlight, top.Baseline), top.InFlight, float64(top.InFlight)/0.020)
	}
	fmt.Fprintf(b, "Targets (issue 16): handler p99 ≤ 2 ms: %s; end to end p99 ≤ 20 ms at %d in flight: %s, at 1 in flight: %s; certificate served within 5 s: %s.\n\n",
		verdict(percentile(run.Handler, 99) <= 2), admissionWorkers, verdict(len(top.Through) > 0 && percentile(top.Through, 99) <= 20),
		verdict(len(one.Through) > 0 && percentile(one.Through, 99) <= 20), verdict(run.CertSeconds > 0 && run.CertSeconds <= 5))
}

// throughput is the requests per second that inFlight clients, each
// waiting for its answer, completed with these round trips (ms): Little's
// law.
func throughput(inFlight int, ms []float64) float64 {
	sum := 0.0
	for _, m := range ms {
		sum += m
	}
	return float64(inFlight) / (sum / float64(len(ms)) / 1000)
}
