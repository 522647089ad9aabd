// Command demo runs chartproof's main job on an embedded default, with no
// cluster: a local kube-apiserver and etcd, a local OCI registry (CNCF
// distribution), the sample chart packaged and pushed with the Helm SDK and
// signed with the real cosign, and the chartproof manager. It installs the
// signed chart, takes out a sidecar slipped into its Deployment, then shows
// an unsigned chart and a tampered one refused. Last, chartproof ships
// itself: its image and its chart are built and pushed as `make image`
// does, the chart signed, checked with `chartproof verify`, and installed by
// a VerifiedHelmRelease. Then it stops everything. `make demo` runs it.
//
// With --hold it waits, before stopping, until its standard input is
// closed, so a test can look at the cluster it describes (e2e/demo_test.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/chartproof/chartproof/hack/internal/image"
	"github.com/chartproof/chartproof/hack/internal/loopback"
	"github.com/chartproof/chartproof/hack/internal/tenant"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	helmregistry "helm.sh/helm/v3/pkg/registry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testworkload"
)

const ns = "demo"

func main() {
	var (
		chartproofBin = flag.String("chartproof", "bin/chartproof", "the chartproof binary")
		hold          = flag.Bool("hold", false, "before stopping, wait until standard input is closed")
		kubeconfigOut = flag.String("kubeconfig-out", "", "also write the local API server's kubeconfig here")
		timeout       = flag.Duration("timeout", 3*time.Minute, "give up waiting for a release after this long")
	)
	flag.Parse()
	d := &demo{chartproof: *chartproofBin, timeout: *timeout}
	err := d.run(*hold, *kubeconfigOut)
	d.stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
	say("stopped everything cleanly")
}

type demo struct {
	chartproof string
	timeout    time.Duration
	dir        string
	env        *envtest.Environment
	k8s        client.Client
	procs      []*exec.Cmd
	regHost    string // host:port
	regRoot    string // the registry's storage directory
	cosign     string
	// stopRollouts stops marking Deployments available.
	stopRollouts func()
}

func say(format string, a ...any) { fmt.Printf("==> "+format+"\n", a...) }

func (d *demo) run(hold bool, kubeconfigOut string) error {
	var err error
	d.cosign = os.Getenv("CHARTPROOF_COSIGN_V3")
	registryBin := os.Getenv("CHARTPROOF_REGISTRY")
	if d.cosign == "" || registryBin == "" || os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS, CHARTPROOF_REGISTRY and CHARTPROOF_COSIGN_V3 must be set: run `make demo`")
	}
	if d.dir, err = os.MkdirTemp("", "chartproof-demo-"); err != nil {
		return err
	}

	// 1. A local API server and etcd, with chartproof's CRDs.
	d.env = &envtest.Environment{CRDDirectoryPaths: []string{"config/crd/bases"}, ErrorIfCRDPathMissing: true}
	cfg, err := d.env.Start()
	if err != nil {
		return fmt.Errorf("starting the local API server: %w", err)
	}
	kubeconfig := filepath.Join(d.dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, d.env.KubeConfig, 0o600); err != nil {
		return err
	}
	if kubeconfigOut != "" {
		if err := os.WriteFile(kubeconfigOut, d.env.KubeConfig, 0o600); err != nil {
			return err
		}
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = chartproofv1.AddToScheme(scheme)
	if d.k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	say("local API server at %s (kube-apiserver and etcd; no cluster needed)", cfg.Host)
	// No deployment controller and no kubelet run here: Deployments are
	// marked available as they would be once their pods run, so that the
	// releases' health checks pass (internal/testworkload).
	wctx, wcancel := context.WithCancel(context.Background())
	d.stopRollouts = wcancel
	if _, err := testworkload.Start(wctx, cfg); err != nil {
		return err
	}
	say("Deployments are marked available as a deployment controller and kubelets would (none runs here): no pod starts")

	// 2. A local OCI registry, storing blobs on disk.
	if err := d.startRegistry(registryBin); err != nil {
		return err
	}
	say("local OCI registry at %s (CNCF distribution, storage in %s)", d.regHost, d.regRoot)

	// 3. The controller.
	if err := d.startManager(kubeconfig); err != nil {
		return err
	}
	say("chartproof manager started")

	// 4. Package, push and sign the sample chart; trust the key.
	signedDigest, err := d.packageAndPush("config/samples/chart/hello", "demo/hello", "1.0.0")
	if err != nil {
		return err
	}
	pub, err := d.cosignSign("demo/hello", signedDigest)
	if err != nil {
		return err
	}
	say("signed oci://%s/demo/hello@%s with cosign (Sigstore bundle, OCI referrer)", d.regHost, signedDigest)
	ctx := context.Background()
	if err := d.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if err := tenant.Grant(ctx, d.k8s, ns); err != nil {
		return err
	}
	say("granted the releases of namespace %s their ServiceAccount %s (config/samples/release-rbac.yaml): every Helm action runs as it, never with chartproof's own rights", ns, tenant.ServiceAccount)
	if err := d.k8s.Create(ctx, &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "demo-ci"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{d.regHost + "/demo/**"},
			Authorities:  []chartproofv1.Authority{{Name: "demo-ci", Key: &chartproofv1.KeyAuthority{PublicKey: pub}}},
		},
	}); err != nil {
		return err
	}
	say("applied TrustPolicy %s/demo-ci: charts under %s/demo/** must be signed by the demo key", ns, d.regHost)

	// 5. The signed chart installs.
	if err := d.apply("hello", "demo/hello", "1.0.0", ""); err != nil {
		return err
	}
	if err := d.report("hello", chartproofv1.ReasonInstallSucceeded); err != nil {
		return err
	}
	// 5b. What it deployed is guarded: a sidecar slipped in is taken out.
	if err := d.sidecar("hello"); err != nil {
		return err
	}

	// 6. An unsigned chart is refused.
	if _, err := d.packageAndPush("config/samples/chart/hello", "demo/unsigned/hello", "1.0.0"); err != nil {
		return err
	}
	say("pushed an unsigned copy to oci://%s/demo/unsigned/hello:1.0.0", d.regHost)
	if err := d.apply("unsigned", "demo/unsigned/hello", "1.0.0", ""); err != nil {
		return err
	}
	if err := d.report("unsigned", chartproofv1.ReasonNoSignature); err != nil {
		return err
	}

	// 7. A signed chart whose bytes were changed in the registry's storage
	// (the digest it is listed under stays the same) is refused.
	tamperedDigest, err := d.packageAndPush("config/samples/chart/hello", "demo/tampered/hello", "1.0.0")
	if err != nil {
		return err
	}
	if _, err := d.cosignSign("demo/tampered/hello", tamperedDigest); err != nil {
		return err
	}
	layer, err := d.tamperChartLayer("demo/tampered/hello", tamperedDigest)
	if err != nil {
		return err
	}
	say("signed oci://%s/demo/tampered/hello@%s, then changed bytes of its chart layer %s on the registry's disk", d.regHost, tamperedDigest, layer)
	if err := d.apply("tampered", "demo/tampered/hello", "1.0.0", ""); err != nil {
		return err
	}
	if err := d.report("tampered", chartproofv1.ReasonDigestMismatch); err != nil {
		return err
	}

	// 8. The signed chart, aimed at kube-system: it verifies, but the
	// release acts as its ServiceAccount, which may write only in its own
	// namespace, so the API server refuses it.
	if err := d.apply("escape", "demo/hello", "1.0.0", "kube-system"); err != nil {
		return err
	}
	if err := d.report("escape", chartproofv1.ReasonInstallFailed); err != nil {
		return err
	}

	fmt.Println()
	if err := d.table(); err != nil {
		return err
	}

	// 9. chartproof ships itself the way it asks charts to be shipped.
	fmt.Println()
	if err := d.shipItself(ctx); err != nil {
		return err
	}
	say("demo done: the signed chart is installed and a sidecar slipped into it was taken out; the unsigned and the tampered ones were refused, and the one aimed at kube-system was refused by the API server; nothing of theirs installed. chartproof's own signed chart was verified and installed by chartproof")
	if hold {
		say("holding until standard input is closed")
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	return nil
}

// apply creates a VerifiedHelmRelease for a chart of the demo registry,
// acting as the namespace's release ServiceAccount, installed in
// targetNamespace ("" for its own).
func (d *demo) apply(name, repo, version, targetNamespace string) error {
	where := ""
	if targetNamespace != "" {
		where = ", targetNamespace " + targetNamespace
	}
	say("applying VerifiedHelmRelease %s/%s: oci://%s/%s version %s, as ServiceAccount %s%s", ns, name, d.regHost, repo, version, tenant.ServiceAccount, where)
	return d.k8s.Create(context.Background(), &chartproofv1.VerifiedHelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: chartproofv1.VerifiedHelmReleaseSpec{
			Chart:              chartproofv1.ChartSource{URL: "oci://" + d.regHost + "/" + repo, Version: version, Insecure: true},
			TrustPolicyRef:     chartproofv1.TrustPolicyReference{Kind: "TrustPolicy", Name: "demo-ci"},
			ServiceAccountName: tenant.ServiceAccount,
			TargetNamespace:    targetNamespace,
		},
	})
}

// report waits until the release has settled on the expected reason (Ready
// for a success, Verified for a refusal) and prints what the cluster says.
func (d *demo) report(name, wantReason string) error {
	deadline := time.Now().Add(d.timeout)
	for {
		var vhr chartproofv1.VerifiedHelmRelease
		if err := d.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &vhr); err != nil {
			return err
		}
		ready := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		verified := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified)
		released := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReleased)
		if ready != nil && verified != nil && vhr.Status.ObservedGeneration == vhr.Generation &&
			(ready.Reason == wantReason || verified.Reason == wantReason || released != nil && released.Reason == wantReason) {
			// The reason is the verdict's, unless the chart verified and
			// installing it failed: then it is Released's (Ready's
			// becomes RetriesExhausted after the retries).
			reason, msg := verified.Reason, verified.Message
			if verified.Status == metav1.ConditionTrue && ready.Status == metav1.ConditionFalse && released != nil {
				reason, msg = released.Reason, released.Message
			}
			fmt.Printf("RESULT %s Ready=%s Verified=%s reason=%s digest=%s\n", name, ready.Status, verified.Status, reason, vhr.Status.ResolvedDigest)
			fmt.Printf("       %s\n", msg)
			if ready.Status == metav1.ConditionTrue {
				return d.printStamp(name)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("release %s did not settle on %s within %s; conditions: %+v", name, wantReason, d.timeout, vhr.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond) // polling the API server for a condition
	}
}

// sidecar adds a container to the release's Deployment as `kubectl edit`
// would, and waits for chartproof to take it out again.
func (d *demo) sidecar(name string) error {
	ctx := context.Background()
	var dep appsv1.Deployment
	key := types.NamespacedName{Namespace: ns, Name: name + "-hello"}
	start := time.Now()
	// Read again and retried when its status was written in between.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := d.k8s.Get(ctx, key, &dep); err != nil {
			return err
		}
		dep.Spec.Template.Spec.Containers = append(dep.Spec.Template.Spec.Containers, corev1.Container{Name: "miner", Image: "evil.example/miner:latest"})
		start = time.Now()
		return d.k8s.Update(ctx, &dep, client.FieldOwner("kubectl-edit"))
	}); err != nil {
		return err
	}
	say("added a sidecar container \"miner\" to Deployment %s/%s, as `kubectl edit` would", ns, dep.Name)
	deadline := start.Add(d.timeout)
	for {
		if err := d.k8s.Get(ctx, key, &dep); err != nil {
			return err
		}
		if len(dep.Spec.Template.Spec.Containers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sidecar is still in Deployment %s after %s", dep.Name, d.timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling the API server for the correction
	}
	took := time.Since(start)
	// The Drifted condition is written just after the correction, and its
	// DriftCorrected event with it; a later check that finds the objects
	// intact (a watch event of the correction itself, on a busy machine)
	// turns the condition to NoDrift, while the event stays.
	var msg string
	for msg == "" {
		var vhr chartproofv1.VerifiedHelmRelease
		if err := d.k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &vhr); err != nil {
			return err
		}
		var evs eventsv1.EventList
		if err := d.k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionDrifted); c != nil && c.Reason == chartproofv1.ReasonDriftCorrected {
			msg = "Drifted=False " + c.Reason + ": " + c.Message
		} else if e := driftCorrectedEvent(evs.Items, name); e != nil {
			msg = "event " + e.Reason + ": " + e.Note
		} else if time.Now().After(deadline) {
			return fmt.Errorf("release %s reported no DriftCorrected within %s; conditions: %+v", name, d.timeout, vhr.Status.Conditions)
		} else {
			time.Sleep(50 * time.Millisecond) // polling the API server for a condition
		}
	}
	fmt.Printf("RESULT sidecar release=%s removed=true ms=%d as=%s\n       %s\n", name, took.Milliseconds(), tenant.ServiceAccount, msg)
	return nil
}

// printStamp shows the annotations the release stamped on its ConfigMap.
func (d *demo) printStamp(name string) error {
	var cm corev1.ConfigMap
	if err := d.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name + "-hello"}, &cm); err != nil {
		return err
	}
	fmt.Printf("       ConfigMap %s/%s: %s=%s %s=%s\n", ns, cm.Name,
		chartproofv1.AnnotationRelease, cm.Annotations[chartproofv1.AnnotationRelease],
		chartproofv1.AnnotationChartDigest, cm.Annotations[chartproofv1.AnnotationChartDigest])
	return nil
}

// table prints the releases the way `kubectl get vhr -o wide` does (a few
// of its columns, and Verified's reason).
func (d *demo) table() error {
	var list chartproofv1.VerifiedHelmReleaseList
	if err := d.k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return err
	}
	fmt.Printf("%-10s %-6s %-9s %-8s %-13s %-13s %s\n", "NAME", "READY", "VERIFIED", "VERSION", "INSTALLED", "RESOLVED", "REASON")
	for _, v := range list.Items {
		ready := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionReady)
		verified := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionVerified)
		version, installed := "<none>", "<none>"
		if v.Status.Installed != nil {
			version, installed = v.Status.Installed.ChartVersion, v.Status.Installed.ShortDigest
		}
		fmt.Printf("%-10s %-6s %-9s %-8s %-13s %-13s %s\n", v.Name, ready.Status, verified.Status, version, installed, v.Status.ShortDigest, verified.Reason)
	}
	return nil
}

// packageAndPush packages a chart directory with the Helm SDK and pushes it
// as `helm push` does. It returns the manifest digest.
func (d *demo) packageAndPush(chartDir, repo, version string) (string, error) {
	c, err := loader.LoadDir(chartDir)
	if err != nil {
		return "", err
	}
	c.Metadata.Version = version
	out := filepath.Join(d.dir, strings.ReplaceAll(repo, "/", "_"))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	archive, err := chartutil.Save(c, out)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		return "", err
	}
	rc, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP(), helmregistry.ClientOptWriter(io.Discard))
	if err != nil {
		return "", err
	}
	res, err := rc.Push(data, fmt.Sprintf("%s/%s:%s", d.regHost, repo, version))
	if err != nil {
		return "", fmt.Errorf("helm push: %w", err)
	}
	say("packaged %s and pushed it to oci://%s/%s:%s (%s)", filepath.Base(archive), d.regHost, repo, version, res.Manifest.Digest)
	return res.Manifest.Digest, nil
}

// cosignSign signs repo@digest with the real cosign CLI and the demo CI's
// key (made on first use), and returns the public key's PEM.
func (d *demo) cosignSign(repo, digest string) (string, error) {
	c := image.Cosign{Bin: d.cosign, Home: filepath.Join(d.dir, "cosign")}
	return c.Sign(context.Background(), fmt.Sprintf("%s/%s@%s", d.regHost, repo, digest), true)
}

// tamperChartLayer flips bytes in the middle of the chart layer's file in
// the registry's storage: same digest in every manifest, other bytes.
func (d *demo) tamperChartLayer(repo, digest string) (string, error) {
	resp, err := httpGet(fmt.Sprintf("http://%s/v2/%s/manifests/%s", d.regHost, repo, digest), "application/vnd.oci.image.manifest.v1+json")
	if err != nil {
		return "", err
	}
	i := strings.Index(resp, "application/vnd.cncf.helm.chart.content.v1.tar+gzip")
	if i < 0 {
		return "", errors.New("no chart layer in the manifest")
	}
	j := strings.Index(resp[i:], "sha256:")
	layer := resp[i+j : i+j+71]
	hexDigest := strings.TrimPrefix(layer, "sha256:")
	path := filepath.Join(d.regRoot, "docker/registry/v2/blobs/sha256", hexDigest[:2], hexDigest, "data")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for k := len(data) / 2; k < len(data)/2+16 && k < len(data); k++ {
		data[k] ^= 0xff
	}
	return layer, os.WriteFile(path, data, 0o644)
}

func (d *demo) startRegistry(bin string) error {
	port, err := loopback.FreePort()
	if err != nil {
		return err
	}
	d.regHost = fmt.Sprintf("127.0.0.1:%d", port)
	d.regRoot = filepath.Join(d.dir, "registry")
	config := filepath.Join(d.dir, "registry.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(
		"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		d.regRoot, d.regHost)), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", config)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := d.start(cmd, filepath.Join(d.dir, "registry.log")); err != nil {
		return err
	}
	return loopback.WaitHTTP("http://"+d.regHost+"/v2/", 30*time.Second)
}

func (d *demo) startManager(kubeconfig string) error {
	metricsPort, err := loopback.FreePort()
	if err != nil {
		return err
	}
	probePort, err := loopback.FreePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(d.chartproof, "--kubeconfig="+kubeconfig,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort))
	if err := d.start(cmd, filepath.Join(d.dir, "manager.log")); err != nil {
		return err
	}
	return loopback.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), 60*time.Second)
}

// start runs cmd in its own process group, logging to logFile.
func (d *demo) start(cmd *exec.Cmd, logFile string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	d.procs = append(d.procs, cmd)
	return nil
}

// stop ends every process (manager first), the API server and etcd, and
// removes the demo's files.
func (d *demo) stop() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if d.stopRollouts != nil {
		d.stopRollouts()
	}
	if d.env != nil {
		_ = d.env.Stop()
	}
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}

func httpGet(url, accept string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), err
}

// driftCorrectedEvent is the DriftCorrected event of release name, nil
// when there is none.
func driftCorrectedEvent(evs []eventsv1.Event, name string) *eventsv1.Event {
	for i := range evs {
		if evs[i].Regarding.Name == name && evs[i].Reason == chartproofv1.ReasonDriftCorrected {
			return &evs[i]
		}
	}
	return nil
}
