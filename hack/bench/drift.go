package main

// The drift scenario (issue 11, item 7): the real manager binary against a
// local kube-apiserver and etcd, 100 releases of a chart with a Deployment,
// a ConfigMap, a Secret, a Role and a RoleBinding. A writer changes one
// object at a time, each kind of change in turn, and the time from the
// write to the drift reported (Warn mode) and to the object read back
// corrected (Correct mode) is measured from outside the manager.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chartproof/chartproof/hack/internal/tenant"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/drifttest"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

// driftSample is one change and how long it took to be seen.
type driftSample struct {
	Release string  `json:"release"`
	Kind    string  `json:"kind"`
	Mode    string  `json:"mode"`
	Seconds float64 `json:"seconds"` // from the write to Drifted (Warn) or to the object read back corrected (Correct)
}

// driftRun is what the drift scenario measured.
type driftRun struct {
	Releases     int           `json:"releases"`
	Samples      []driftSample `json:"samples"`
	FoundTotal   float64       `json:"foundTotal"`   // chartproof_drift_total at the end
	Expected     float64       `json:"expected"`     // drift the writes caused
	QuietFound   float64       `json:"quietFound"`   // drift found in the quiet window before any write
	QuietSeconds float64       `json:"quietSeconds"` // the quiet window
	ManagerCPU   float64       `json:"managerCPU"`   // over the whole run
	PeakRSSMiB   float64       `json:"peakRSSMiB"`   // manager VmHWM
}

// driftBench runs the scenario with releases releases.
func driftBench(chartproof string, releases int, quiet time.Duration) (*driftRun, error) {
	ctx := context.Background()
	dir, reg, cleanup, err := newTestBed("drift")
	if err != nil {
		return nil, err
	}
	defer cleanup()

	key, err := testsign.NewKey("p256")
	if err != nil {
		return nil, err
	}
	push := testsign.Registry{Host: reg.host}
	files := testchart.Files("drifty", "1.0.0")
	files = map[string]string{"Chart.yaml": files["Chart.yaml"], "values.yaml": "{}\n"}
	for k, v := range drifttest.Templates {
		files[k] = v
	}
	archive, err := testchart.Build(testchart.Entries("drifty", files))
	if err != nil {
		return nil, err
	}
	digest, err := push.PushChart("drift/drifty", "1.0.0", archive, "drifty", "1.0.0")
	if err != nil {
		return nil, err
	}
	if err := push.SignLegacy("drift/drifty", digest, digest, key); err != nil {
		return nil, err
	}

	// The chart holds a Role and a RoleBinding: the sample's account may
	// also manage those, in its namespace.
	const namespaces = 10
	k8s, kubeconfig, stop, err := localCluster(ctx, dir, "drift", namespaces, reg.host+"/drift/**", key, func(ns string) []client.Object {
		return []client.Object{
			&rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chartproof-release-rbac"},
				Rules:      []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles", "rolebindings"}, Verbs: []string{"*"}}},
			},
			&rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chartproof-release-rbac"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "chartproof-release-rbac"},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: tenant.ServiceAccount}},
			},
		}
	})
	if err != nil {
		return nil, err
	}
	defer stop()
	mgr, err := startManager(chartproof, kubeconfig, filepath.Join(dir, "manager-drift.log"),
		"--leader-elect=false", "--concurrent=4", "--default-service-account="+tenant.ServiceAccount)
	if err != nil {
		return nil, err
	}
	defer mgr.stop()
	cpu0 := cpuSeconds(mgr.cmd.Process.Pid)

	type rel struct{ ns, name string }
	var rels []rel
	for i := 0; i < releases; i++ {
		r := rel{fmt.Sprintf("drift-%02d", i%namespaces), fmt.Sprintf("d-%03d", i)}
		rels = append(rels, r)
		if err := k8s.Create(ctx, &chartproofv1.VerifiedHelmRelease{
			ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.name},
			Spec: chartproofv1.VerifiedHelmReleaseSpec{
				Chart:          chartproofv1.ChartSource{URL: "oci://" + reg.host + "/drift/drifty", Version: "1.0.0", Insecure: true},
				TrustPolicyRef: chartproofv1.TrustPolicyReference{Kind: "ClusterTrustPolicy", Name: "drift"},
				DriftDetection: &chartproofv1.DriftDetection{Mode: chartproofv1.DriftWarn},
			},
		}); err != nil {
			return nil, err
		}
	}
	say("drift: %d releases created; waiting for every one to report NoDrift", releases)
	if err := waitAll(ctx, k8s, mgr, releases, 10*time.Minute, func(v *chartproofv1.VerifiedHelmRelease) bool {
		c := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionDrifted)
		return c != nil && c.Reason == chartproofv1.ReasonNoDrift && v.Status.ObservedGeneration == v.Generation
	}); err != nil {
		return nil, err
	}

	run := &driftRun{Releases: releases, QuietSeconds: quiet.Seconds()}
	found := func() (float64, error) {
		m, err := scrape(mgr.metricsURL)
		if err != nil {
			return 0, err
		}
		return m["chartproof_drift_total"], nil // scrape sums the series of a name
	}
	// Quiet window: nothing changes, every release stays in place; no
	// drift may be found. The releases' own status writes and the
	// manager's reads go on.
	before, err := found()
	if err != nil {
		return nil, err
	}
	time.Sleep(quiet) // a measurement window, not a wait for a condition
	after, err := found()
	if err != nil {
		return nil, err
	}
	run.QuietFound = after - before

	// Warn: one change per release, each kind in turn; the time to the
	// Drifted condition naming it.
	for i, r := range rels {
		m := drifttest.Changes[i%len(drifttest.Changes)]
		t0 := time.Now()
		if err := m.Apply(ctx, k8s, r.ns, r.name); err != nil {
			return nil, fmt.Errorf("%s on %s/%s: %w", m.Name, r.ns, r.name, err)
		}
		if err := poll(30*time.Second, func() (bool, error) {
			var v chartproofv1.VerifiedHelmRelease
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: r.name}, &v); err != nil {
				return false, err
			}
			c := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionDrifted)
			return c != nil && c.Reason == chartproofv1.ReasonDriftDetected, nil
		}); err != nil {
			return nil, fmt.Errorf("%s on %s/%s not reported: %w", m.Name, r.ns, r.name, err)
		}
		run.Samples = append(run.Samples, driftSample{Release: r.ns + "/" + r.name, Kind: m.Name, Mode: "Warn", Seconds: time.Since(t0).Seconds()})
		run.Expected++
	}
	say("drift: %d changes reported in Warn; switching every release to Correct", len(rels))
	for _, r := range rels {
		patch := []byte(`{"spec":{"driftDetection":{"mode":"Correct"}}}`)
		if err := k8s.Patch(ctx, &chartproofv1.VerifiedHelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.name}},
			client.RawPatch(types.MergePatchType, patch)); err != nil {
			return nil, err
		}
	}
	if err := waitAll(ctx, k8s, mgr, releases, 5*time.Minute, func(v *chartproofv1.VerifiedHelmRelease) bool {
		c := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionDrifted)
		return c != nil && c.Status == metav1.ConditionFalse && v.Status.ObservedGeneration == v.Generation
	}); err != nil {
		return nil, err
	}
	run.Expected += float64(len(rels))
	// The corrections' own writes wake their releases once more: let those
	// reconciles finish, so the first timed change does not queue behind
	// them.
	if err := idle(mgr, time.Minute); err != nil {
		return nil, err
	}

	// Correct: the same changes again, each timed until the object reads
	// back as the chart renders it.
	for i, r := range rels {
		m := drifttest.Changes[(i+1)%len(drifttest.Changes)]
		t0 := time.Now()
		if err := m.Apply(ctx, k8s, r.ns, r.name); err != nil {
			return nil, fmt.Errorf("%s on %s/%s: %w", m.Name, r.ns, r.name, err)
		}
		if err := poll(30*time.Second, func() (bool, error) { return m.Restored(ctx, k8s, r.ns, r.name) }); err != nil {
			return nil, fmt.Errorf("%s on %s/%s not corrected: %w", m.Name, r.ns, r.name, err)
		}
		run.Samples = append(run.Samples, driftSample{Release: r.ns + "/" + r.name, Kind: m.Name, Mode: "Correct", Seconds: time.Since(t0).Seconds()})
		run.Expected++
	}
	// Every correction is counted before the condition is written; wait
	// for the last ones, then read the total.
	if err := waitAll(ctx, k8s, mgr, releases, time.Minute, func(v *chartproofv1.VerifiedHelmRelease) bool {
		c := apimeta.FindStatusCondition(v.Status.Conditions, chartproofv1.ConditionDrifted)
		return c != nil && c.Status == metav1.ConditionFalse
	}); err != nil {
		return nil, err
	}
	if run.FoundTotal, err = found(); err != nil {
		return nil, err
	}
	run.ManagerCPU = cpuSeconds(mgr.cmd.Process.Pid) - cpu0
	run.PeakRSSMiB = procStatusMiB(mgr.cmd.Process.Pid, "VmHWM:")
	return run, nil
}

// idle waits until the manager's work queues are empty and no worker is
// busy, twice in a row a second apart.
func idle(mgr *managerProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	quiet := 0
	for quiet < 2 {
		m, err := scrape(mgr.metricsURL)
		if err != nil {
			return err
		}
		if m["workqueue_depth"] == 0 && m["controller_runtime_active_workers"] == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager is still busy after %s", timeout)
		}
		time.Sleep(time.Second) // sampling once a second
	}
	return nil
}

// poll calls cond every 5 ms until it is true, an error, or timeout.
func poll(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil && !strings.Contains(err.Error(), "not found") {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(5 * time.Millisecond) // sampling: the measured latency is what this resolves
	}
}

// waitAll lists the releases once a second until want of them satisfy ok.
func waitAll(ctx context.Context, k8s client.Client, mgr *managerProc, want int, timeout time.Duration, ok func(*chartproofv1.VerifiedHelmRelease) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		var list chartproofv1.VerifiedHelmReleaseList
		if err := k8s.List(ctx, &list); err != nil {
			return err
		}
		n := 0
		for i := range list.Items {
			if ok(&list.Items[i]) {
				n++
			}
		}
		if n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d releases after %s", n, want, timeout)
		}
		if err := mgr.alive(); err != nil {
			return err
		}
		time.Sleep(time.Second) // sampling once a second
	}
}

// percentile of sorted v, p in [0, 100].
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(p/100*float64(len(s)-1) + 0.5)
	return s[i]
}

func writeDriftRaw(run *driftRun, rawDir string) error {
	data, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(rawDir, "drift.json"), data, 0o644)
}

func writeDrift(b *bytes.Buffer, run *driftRun) {
	fmt.Fprintf(b, "## Drift: %d releases, one change at a time\n\n", run.Releases)
	fmt.Fprintf(b, "The manager binary (`--concurrent 4`) against a local kube-apiserver and etcd, %d releases of one chart (a Deployment, a ConfigMap, a Secret from `stringData`, a Role, a RoleBinding) at the default interval (10m), so only the watches of what they deployed can make them act. A writer on the same machine changes one object at a time as `kubectl edit` would (field manager `kubectl-edit`), each of the %d kinds of change in turn, and polls every 5 ms: in **Warn** mode, the time from the write to the release's `Drifted` condition reporting it; in **Correct** mode (after the switch from Warn corrected every release and the manager is idle again), the time from the write to the object read back as the chart renders it. Before any write, a quiet window of %.0f s in which nothing may be found. Raw: [bench/drift.json](bench/drift.json).\n\n",
		run.Releases, len(drifttest.Changes), run.QuietSeconds)
	b.WriteString("| change | detect p50 (ms) | detect p99 (ms) | correct p50 (ms) | correct p99 (ms) |\n|---|---|---|---|---|\n")
	all := map[string][]float64{}
	for _, m := range drifttest.Changes {
		var warn, correct []float64
		for _, s := range run.Samples {
			if s.Kind != m.Name {
				continue
			}
			if s.Mode == "Warn" {
				warn = append(warn, s.Seconds*1000)
			} else {
				correct = append(correct, s.Seconds*1000)
			}
		}
		all["Warn"] = append(all["Warn"], warn...)
		all["Correct"] = append(all["Correct"], correct...)
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", m.Name, short(percentile(warn, 50)), short(percentile(warn, 99)), short(percentile(correct, 50)), short(percentile(correct, 99)))
	}
	fmt.Fprintf(b, "| **all** | **%s** | **%s** | **%s** | **%s** |\n\n", short(percentile(all["Warn"], 50)), short(percentile(all["Warn"], 99)),
		short(percentile(all["Correct"], 50)), short(percentile(all["Correct"], 99)))
	falsePositives := run.FoundTotal - run.Expected + run.QuietFound
	fmt.Fprintf(b, "Drift found over the run: %.0f, for %.0f caused by the writer (each Warn change once, then its correction once when the mode became Correct, then each Correct change once): **%.0f false positives**, %.0f in the quiet window. Manager: %.1f CPU s over the run, peak RSS %.0f MiB.\n\n",
		run.FoundTotal, run.Expected, max(falsePositives, 0), run.QuietFound, run.ManagerCPU, run.PeakRSSMiB)
	fmt.Fprintf(b, "Targets (issue 11): detect p99 ≤ 1000 ms: %s; correct p99 ≤ 2000 ms: %s; zero false positives: %s.\n\n",
		verdict(percentile(all["Warn"], 99) <= 1000), verdict(percentile(all["Correct"], 99) <= 2000), verdict(falsePositives == 0 && run.FoundTotal == run.Expected))
}
