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
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/hack/internal/loopback"
	cpadmission "github.com/chartproof/chartproof/internal/admission"
	"github.com/chartproof/chartproof/internal/testsign"
)

const (
	admissionWorkers  = 200
	admissionRequests = 25 // per worker and phase
)

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
	// Through: a dry-run patch of an object a release deployed, sent to the
	// API server, which calls the manager's webhook over TLS and refuses
	// it; Baseline: the same patch of an unlabelled object, which the
	// webhook never sees.
	Through  []float64 `json:"throughMs"`
	Baseline []float64 `json:"baselineMs"`
	Failed   int       `json:"failed"` // through requests not decided by the webhook
	// CertSeconds is the time from the manager's start to its webhook port
	// completing a TLS handshake; LiveSeconds to the API server's first
	// decision from it (the CA bundle written into the configuration).
	CertSeconds float64 `json:"certSeconds"`
	LiveSeconds float64 `json:"liveSeconds"`
}

func admissionBench(chartproof string) (*admissionRun, error) {
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
	mgr, err := startManager(chartproof, kubeconfig, filepath.Join(dir, "manager.log"),
		fmt.Sprintf("--webhook-port=%d", port), "--webhook-namespace=default", "--webhook-hosts=127.0.0.1")
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

	measure := func(o client.Object) ([]float64, int) {
		var mu sync.Mutex
		var ms []float64
		failed := 0
		var wg sync.WaitGroup
		for range admissionWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range admissionRequests {
					d, ok := decided(o)
					mu.Lock()
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
	measure(owned) // warm: connections, the API server's webhook client
	run.Baseline, _ = measure(plain)
	run.Through, run.Failed = measure(owned)
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
	data, err := os.ReadFile(filepath.Join("config", "webhook", "manifests.yaml"))
	if err != nil {
		return err
	}
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return err
	}
	for i := range cfg.Webhooks {
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, *cfg.Webhooks[i].ClientConfig.Service.Path)
		cfg.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	}
	return k8s.Create(ctx, &cfg)
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
	fmt.Fprintf(b, "%d concurrent clients, each sending its requests one after another. **Handler**: AdmissionReviews posted to the owned-objects rule's HTTP handler in process (JSON decoded and encoded, the release looked up in memory; no TLS), %d requests. **Through the API server**: the manager binary serving the webhook over TLS with the certificate it made, a local kube-apiserver calling it for a dry-run patch of an object a release deployed (refused: `OwnedObjectProtected`), %d requests; **baseline**: the same patch of an unlabelled object, which the webhook never sees. Raw: [bench/admission.json](bench/admission.json).\n\n",
		run.Workers, len(run.Handler), len(run.Through))
	b.WriteString("| | p50 (ms) | p99 (ms) |\n|---|---|---|\n")
	fmt.Fprintf(b, "| handler: time in it (decode, decide, encode) | %s | %s |\n", short(percentile(run.Handler, 50)), short(percentile(run.Handler, 99)))
	fmt.Fprintf(b, "| handler: round trip the client saw | %s | %s |\n", short(percentile(run.RoundTrip, 50)), short(percentile(run.RoundTrip, 99)))
	fmt.Fprintf(b, "| through the API server, webhook called | %s | %s |\n", short(percentile(run.Through, 50)), short(percentile(run.Through, 99)))
	fmt.Fprintf(b, "| through the API server, baseline (no webhook) | %s | %s |\n\n", short(percentile(run.Baseline, 50)), short(percentile(run.Baseline, 99)))
	fmt.Fprintf(b, "With %d clients each waiting for its answer before the next request, on %d cores, a round trip is mostly the wait for a core: by Little's law it is the number in flight over the throughput. The webhook's share of a request through the API server is the difference of the medians: %s ms.\n\n",
		run.Workers, goruntime.NumCPU(), short(percentile(run.Through, 50)-percentile(run.Baseline, 50)))
	fmt.Fprintf(b, "Requests not decided by the webhook: %d. The manager served a certificate %.2f s after it started (a TLS handshake on its port), and the API server had its first decision %.2f s after (the CA bundle written into the configuration).\n\n",
		run.Failed, run.CertSeconds, run.LiveSeconds)
	fmt.Fprintf(b, "Targets (issue 16): handler p99 ≤ 2 ms: %s; end to end p99 ≤ 20 ms: %s; certificate served within 5 s: %s.\n\n",
		verdict(percentile(run.Handler, 99) <= 2), verdict(percentile(run.Through, 99) <= 20), verdict(run.CertSeconds > 0 && run.CertSeconds <= 5))
}
