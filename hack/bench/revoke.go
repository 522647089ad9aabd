package main

// The revocation scenario (issue 12, item 8): the real manager binary
// against a local kube-apiserver and etcd, N releases (1,000) of 20 charts
// (the scale scenario's tiny charts, half in each cosign layout) sharing one
// ClusterTrustPolicy, whose key is read from a Secret. Their
// signer is revoked twice, each measured from outside the manager through a
// watch of the releases: a revocation list entry added to the policy
// (SignerRevoked), and, once that is undone and every release verifies
// again, the key replaced in the Secret (UntrustedSigner). The time from
// the change to each release's Verified=False, whether each got its event,
// and what it cost the manager (API requests, CPU, memory).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chartproof/chartproof/hack/internal/loopback"
	"github.com/chartproof/chartproof/hack/internal/tenant"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// revokeWay is one way of revoking the signer and what it took.
type revokeWay struct {
	Name    string    `json:"name"`
	Reason  string    `json:"reason"`
	Seconds []float64 `json:"seconds"` // per release, from the change to Verified=False with Reason
	Events  int       `json:"events"`  // releases with a Warning event of Reason
	// What the manager spent from the change until every release was
	// marked.
	APIRequests  float64 `json:"apiRequests"`
	ManagerCPU   float64 `json:"managerCPU"`
	APIServerCPU float64 `json:"apiserverCPU"`
	EtcdCPU      float64 `json:"etcdCPU"`
}

// revokeRun is what the revocation scenario measured.
type revokeRun struct {
	Releases    int         `json:"releases"`
	Concurrent  int         `json:"concurrent"`
	Ways        []revokeWay `json:"ways"`
	PeakRSSMiB  float64     `json:"peakRSSMiB"` // manager VmHWM over the whole run
	InstallSecs float64     `json:"installSeconds"`
	// Floor is what the API server alone took for the requests the manager
	// makes per release, without the manager: the least any controller
	// writing a status and an event per release could take here.
	Floor *revokeFloor `json:"floor,omitempty"`
}

// revokeFloor is the API server's share of a revocation, measured alone:
// the manager stopped, the bench makes the three requests the manager
// makes per release (the Helm record read as the release's ServiceAccount,
// a status patch of the Verified condition, an event), from as many workers
// as the manager has.
type revokeFloor struct {
	Seconds      []float64 `json:"seconds"` // per release, from the start to its three requests done
	APIServerCPU float64   `json:"apiserverCPU"`
	EtcdCPU      float64   `json:"etcdCPU"`
}

// revokeBench runs the scenario.
func revokeBench(chartproof string, o scaleOptions, concurrent int) (*revokeRun, error) {
	ctx := context.Background()
	dir, reg, cleanup, err := newTestBed("revoke")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	key, err := testsign.NewKey("p256")
	if err != nil {
		return nil, err
	}
	if _, err := pushTinyCharts(testsign.Registry{Host: reg.host}, o.charts, key); err != nil {
		return nil, err
	}

	k8s, kubeconfig, stop, err := localCluster(ctx, dir, "scale", o.namespaces, reg.host+"/scale/**", key, nil)
	if err != nil {
		return nil, err
	}
	defer stop()
	// The policy reads its key from a Secret, as a security team would
	// keep it.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "scale-00", Name: "release-key"},
		Data: map[string][]byte{"cosign.pub": []byte(key.PublicPEM())}}
	if err := k8s.Create(ctx, secret); err != nil {
		return nil, err
	}
	var policy chartproofv1.ClusterTrustPolicy
	if err := k8s.Get(ctx, client.ObjectKey{Name: "scale"}, &policy); err != nil {
		return nil, err
	}
	patch := client.MergeFrom(policy.DeepCopy())
	policy.Spec.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Namespace: "scale-00", Name: "release-key"}}
	if err := k8s.Patch(ctx, &policy, patch); err != nil {
		return nil, err
	}

	args := []string{"--leader-elect=false", fmt.Sprintf("--concurrent=%d", concurrent), "--default-service-account=" + tenant.ServiceAccount}
	pprofURL := ""
	if o.revokeProfile != "" {
		port, err := loopback.FreePort()
		if err != nil {
			return nil, err
		}
		args = append(args, fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", port))
		pprofURL = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", port)
	}
	mgr, err := startManager(chartproof, kubeconfig, filepath.Join(dir, "manager-revoke.log"), args...)
	if err != nil {
		return nil, err
	}
	defer mgr.stop()
	run := &revokeRun{Releases: o.releases, Concurrent: concurrent}
	start := time.Now()
	if err := createReleases(ctx, k8s, reg.host, o); err != nil {
		return nil, err
	}
	say("revoke: %d releases created; waiting for every one to be Ready", o.releases)
	ready, err := waitReady(ctx, k8s, mgr, &scaleRun{}, start, start.Add(o.timeout), o.releases)
	if err != nil {
		return nil, err
	}
	if ready == 0 {
		var list chartproofv1.VerifiedHelmReleaseList
		if err := k8s.List(ctx, &list); err == nil {
			for _, v := range list.Items {
				if c := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
					return nil, fmt.Errorf("revoke: not every release was Ready within %s; %s/%s: %+v", o.timeout, v.Namespace, v.Name, c)
				}
			}
		}
		return nil, fmt.Errorf("revoke: not every release was Ready within %s", o.timeout)
	}
	run.InstallSecs = ready
	if err := idle(mgr, time.Minute); err != nil {
		return nil, err
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	watcher, err := client.NewWithWatch(cfg, client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		return nil, err
	}
	measure := func(name, reason string, change func() error) error {
		say("revoke: %s", name)
		w, err := watcher.Watch(ctx, &chartproofv1.VerifiedHelmReleaseList{})
		if err != nil {
			return err
		}
		defer func() { w.Stop() }()
		lastRV := "" // of the last event, to resume a watch the API server ended
		m0, err := scrape(mgr.metricsURL)
		if err != nil {
			return err
		}
		procs := controlPlanePIDs()
		cpu0, api0, etcd0 := cpuSeconds(mgr.cmd.Process.Pid), cpuSeconds(procs["kube-apiserver"]), cpuSeconds(procs["etcd"])
		profiled := make(chan error, 1)
		if pprofURL != "" {
			base := filepath.Join(o.revokeProfile, fmt.Sprintf("revoke-c%d-%d", concurrent, len(run.Ways)))
			go func() {
				traced := make(chan error, 1)
				go func() { traced <- saveProfile(pprofURL+"/trace?seconds=5", base+".trace") }()
				api := make(chan error, 1)
				go func() { api <- saveAPIServerProfile(ctx, cfg, base+".apiserver.pprof") }()
				profiled <- errors.Join(saveProfile(pprofURL+"/profile?seconds=10", base+".pprof"), <-traced, <-api)
			}()
		} else {
			profiled <- nil
		}
		t0 := time.Now()
		if err := change(); err != nil {
			return err
		}
		marked := map[string]float64{}
		deadline := time.After(5 * time.Minute)
		for len(marked) < o.releases {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok || ev.Type == watch.Error {
					// The API server ends a watch that falls behind (this
					// machine's cores are busy): resume from the last event.
					if lastRV == "" {
						return errors.New("revoke: the watch of the releases ended before any event")
					}
					w.Stop()
					if w, err = watcher.Watch(ctx, &chartproofv1.VerifiedHelmReleaseList{},
						&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: lastRV}}); err != nil {
						return fmt.Errorf("revoke: resuming the watch of the releases: %w", err)
					}
					continue
				}
				v, isVHR := ev.Object.(*chartproofv1.VerifiedHelmRelease)
				if !isVHR || ev.Type == watch.Deleted {
					continue
				}
				lastRV = v.ResourceVersion
				c := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionVerified)
				id := v.Namespace + "/" + v.Name
				if _, done := marked[id]; !done && c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason {
					marked[id] = time.Since(t0).Seconds()
				}
			case <-deadline:
				return fmt.Errorf("revoke: %s: %d of %d releases marked within 5m", name, len(marked), o.releases)
			}
		}
		way := revokeWay{Name: name, Reason: reason, ManagerCPU: cpuSeconds(mgr.cmd.Process.Pid) - cpu0,
			APIServerCPU: cpuSeconds(procs["kube-apiserver"]) - api0, EtcdCPU: cpuSeconds(procs["etcd"]) - etcd0}
		m1, err := scrape(mgr.metricsURL)
		if err != nil {
			return err
		}
		way.APIRequests = m1["rest_client_requests_total"] - m0["rest_client_requests_total"]
		for _, s := range marked {
			way.Seconds = append(way.Seconds, s)
		}
		slices.Sort(way.Seconds)
		// Every release announces it with a Warning event (the recorder
		// writes them asynchronously: wait for them).
		if err := poll(time.Minute, func() (bool, error) {
			var evs eventsv1.EventList
			if err := k8s.List(ctx, &evs); err != nil {
				return false, err
			}
			seen := map[string]bool{}
			for _, e := range evs.Items {
				if e.Reason == reason && e.Regarding.Kind == "VerifiedHelmRelease" && !e.CreationTimestamp.Time.Before(t0.Truncate(time.Second)) {
					seen[e.Regarding.Namespace+"/"+e.Regarding.Name] = true
				}
			}
			way.Events = len(seen)
			return way.Events == o.releases, nil
		}); err != nil {
			say("revoke: %s: %d of %d releases have their event", name, way.Events, o.releases)
		}
		run.Ways = append(run.Ways, way)
		return <-profiled
	}

	keyID := func() string {
		var v chartproofv1.VerifiedHelmRelease
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: "scale-00", Name: "r-0000"}, &v); err != nil || len(v.Status.Evidence) == 0 {
			return ""
		}
		return v.Status.Evidence[0].KeyID
	}()
	if keyID == "" {
		return nil, errors.New("revoke: release scale-00/r-0000 has no evidence")
	}
	setRevocations := func(r *chartproofv1.Revocations) error {
		var p chartproofv1.ClusterTrustPolicy
		if err := k8s.Get(ctx, client.ObjectKey{Name: "scale"}, &p); err != nil {
			return err
		}
		patch := client.MergeFrom(p.DeepCopy())
		p.Spec.Revocations = r
		return k8s.Patch(ctx, &p, patch)
	}
	if err := measure("a revocation list entry added to the policy", chartproofv1.ReasonSignerRevoked, func() error {
		return setRevocations(&chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{KeyIDs: []string{keyID}}})
	}); err != nil {
		return nil, err
	}
	if err := setRevocations(nil); err != nil {
		return nil, err
	}
	if err := waitAll(ctx, k8s, mgr, o.releases, 5*time.Minute, func(v *chartproofv1.VerifiedHelmRelease) bool {
		return apimeta.IsStatusConditionTrue(v.Status.Conditions, chartproofv1.ConditionVerified)
	}); err != nil {
		return nil, err
	}
	if err := idle(mgr, time.Minute); err != nil {
		return nil, err
	}
	other, err := testsign.NewKey("p256")
	if err != nil {
		return nil, err
	}
	if err := measure("the key replaced in the Secret the policy reads", chartproofv1.ReasonUntrustedSigner, func() error {
		var s corev1.Secret
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(secret), &s); err != nil {
			return err
		}
		s.Data["cosign.pub"] = []byte(other.PublicPEM())
		return k8s.Update(ctx, &s)
	}); err != nil {
		return nil, err
	}
	run.PeakRSSMiB = procStatusMiB(mgr.cmd.Process.Pid, "VmHWM:")
	mgr.stop()
	say("revoke: the API server alone: the manager's three requests per release, %d workers", concurrent)
	if run.Floor, err = apiServerFloor(ctx, cfg, k8s, concurrent); err != nil {
		return nil, err
	}
	return run, nil
}

// apiServerFloor makes, for every release, the requests the manager makes
// when its signer is revoked, from concurrent workers, and measures how
// long the API server takes to answer them all (revokeFloor).
func apiServerFloor(ctx context.Context, cfg *rest.Config, k8s client.Client, concurrent int) (*revokeFloor, error) {
	var list chartproofv1.VerifiedHelmReleaseList
	if err := k8s.List(ctx, &list); err != nil {
		return nil, err
	}
	// Each namespace's releases read their records as its ServiceAccount.
	readers := map[string]client.Client{}
	for _, v := range list.Items {
		if readers[v.Namespace] != nil {
			continue
		}
		c := rest.CopyConfig(cfg)
		c.Impersonate.UserName = "system:serviceaccount:" + v.Namespace + ":" + tenant.ServiceAccount
		r, err := client.New(c, client.Options{Scheme: k8s.Scheme()})
		if err != nil {
			return nil, err
		}
		readers[v.Namespace] = r
	}
	oneRelease := func(v *chartproofv1.VerifiedHelmRelease) error {
		inst := v.Status.Installed
		if inst == nil {
			return fmt.Errorf("%s/%s: nothing installed", v.Namespace, v.Name)
		}
		var record corev1.Secret
		if err := readers[v.Namespace].Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: fmt.Sprintf("sh.helm.release.v1.%s.v%d", inst.Name, inst.Revision)}, &record); err != nil {
			return err
		}
		before := v.DeepCopy()
		apimeta.SetStatusCondition(&v.Status.Conditions, metav1.Condition{Type: chartproofv1.ConditionVerified, Status: metav1.ConditionFalse,
			ObservedGeneration: v.Generation, Reason: chartproofv1.ReasonSignerRevoked, Message: "the API server's floor, measured by hack/bench"})
		if err := k8s.Status().Patch(ctx, v, client.MergeFrom(before)); err != nil {
			return err
		}
		return k8s.Create(ctx, &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: v.Namespace, Name: fmt.Sprintf("%s.%x", v.Name, time.Now().UnixNano())},
			EventTime:  metav1.NewMicroTime(time.Now()), ReportingController: "hack/bench", ReportingInstance: "hack/bench",
			Action: "Reconcile", Reason: chartproofv1.ReasonSignerRevoked, Type: corev1.EventTypeWarning, Note: "the API server's floor",
			Regarding: corev1.ObjectReference{APIVersion: chartproofv1.GroupVersion.String(), Kind: "VerifiedHelmRelease", Namespace: v.Namespace, Name: v.Name, UID: v.UID},
		})
	}

	procs := controlPlanePIDs()
	api0, etcd0 := cpuSeconds(procs["kube-apiserver"]), cpuSeconds(procs["etcd"])
	work := make(chan int)
	done := make([]float64, len(list.Items))
	errs := make(chan error, concurrent)
	t0 := time.Now()
	for range concurrent {
		go func() {
			var err error
			for i := range work {
				if err == nil {
					err = oneRelease(&list.Items[i])
					done[i] = time.Since(t0).Seconds()
				}
			}
			errs <- err
		}()
	}
	for i := range list.Items {
		work <- i
	}
	close(work)
	var err error
	for range concurrent {
		err = errors.Join(err, <-errs)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke: the API server's floor: %w", err)
	}
	slices.Sort(done)
	return &revokeFloor{Seconds: done, APIServerCPU: cpuSeconds(procs["kube-apiserver"]) - api0, EtcdCPU: cpuSeconds(procs["etcd"]) - etcd0}, nil
}

// saveProfile saves what a pprof endpoint of the manager records (a CPU
// profile, an execution trace) into file.
func saveProfile(url, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// saveAPIServerProfile saves a 10 s CPU profile of the API server (its
// /debug/pprof, on by default, read with the bench's admin credentials).
func saveAPIServerProfile(ctx context.Context, cfg *rest.Config, file string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	b, err := cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "10").Timeout(30 * time.Second).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("API server profile: %w", err)
	}
	return os.WriteFile(file, b, 0o644)
}

// writeRevoke writes the scenario's section of the report.
func writeRevoke(b *bytes.Buffer, runs []*revokeRun) {
	fmt.Fprintf(b, "\n## Time to revoke (issue 12, item 8)\n\n")
	fmt.Fprintf(b, "The real manager with %d releases of 20 charts, all under one ClusterTrustPolicy whose key is read from a Secret,\n", runs[0].Releases)
	b.WriteString("installed and Ready first; the API server, etcd, the registry and the manager share this machine's 2 cores. The signer\n")
	b.WriteString("is then revoked, and the time from the change to each release's Verified=False is read from outside the manager,\n")
	b.WriteString("through a watch of the releases. Each configuration starts a new API server and manager and runs once:\n")
	b.WriteString("**single-run numbers**. Target: p99 at most 5 s. Events: releases with a Warning event of the reason.\n")
	b.WriteString("Raw: [bench/revoke.json](bench/revoke.json).\n\n")
	b.WriteString("| --concurrent | revoked by | reason | p50 | p99 | max | events | manager API requests | CPU: manager / kube-apiserver / etcd | target p99 <= 5 s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, run := range runs {
		for _, w := range run.Ways {
			p99 := percentile(w.Seconds, 99)
			fmt.Fprintf(b, "| %d | %s | %s | %.2f s | %.2f s | %.2f s | %d of %d | %.0f | %.1f s / %.1f s / %.1f s | %s |\n",
				run.Concurrent, w.Name, w.Reason, percentile(w.Seconds, 50), p99, w.Seconds[len(w.Seconds)-1], w.Events, run.Releases, w.APIRequests,
				w.ManagerCPU, w.APIServerCPU, w.EtcdCPU, verdict(p99 <= 5))
		}
	}
	b.WriteString("\n")
	for _, run := range runs {
		fmt.Fprintf(b, "--concurrent %d: the %d installs took %.0f s; manager peak RSS over the run (installs included) %.0f MiB.\n",
			run.Concurrent, run.Releases, run.InstallSecs, run.PeakRSSMiB)
	}
	b.WriteString("\nThe API server's floor: the manager stopped, the bench itself makes the three requests the manager makes per\n")
	b.WriteString("release (its Helm record read as its ServiceAccount, a status patch of the Verified condition, a Warning event), from as\n")
	b.WriteString("many workers as the manager had, in the same run: no verification, no registry, no watch of its own. Nothing a\n")
	b.WriteString("controller that writes a status and an event per release does can be faster on this machine.\n\n")
	b.WriteString("| workers | p50 | p99 | max | CPU: kube-apiserver / etcd | target p99 <= 5 s |\n|---|---|---|---|---|---|\n")
	for _, run := range runs {
		if f := run.Floor; f != nil && len(f.Seconds) > 0 {
			p99 := percentile(f.Seconds, 99)
			fmt.Fprintf(b, "| %d | %.2f s | %.2f s | %.2f s | %.1f s / %.1f s | %s |\n", run.Concurrent, percentile(f.Seconds, 50), p99,
				f.Seconds[len(f.Seconds)-1], f.APIServerCPU, f.EtcdCPU, verdict(p99 <= 5))
		}
	}
	b.WriteString(`
- A trust change re-queues every release of the policy at once; each is re-verified (the compiled policy and the
  signatures' reads by digest are shared, the referrers and the tag are looked up again), its Helm record read (one
  GET by name, as its ServiceAccount, when the manager's watch of the records shows no later revision), its status
  patched and its event written: three API requests. The objects it deployed are not compared again when they were
  found intact, watched, since (docs/design.md).
- At --concurrent 4 the workers wait on those requests (a status write waits for etcd); more workers overlap them.
- The API server is the bottleneck here: it and the manager's workers share two cores with etcd and the registry.
  More workers shorten the queue until its CPU is used up. Its floor, above, is what those requests cost it alone;
  when the floor itself misses the target, this machine cannot meet it with a status write and an event per
  release, whatever the manager does (a status patch of a VerifiedHelmRelease is most of it: a custom resource's
  patch is decoded, validated against its schema, given managed fields and written to etcd).
`)
}
