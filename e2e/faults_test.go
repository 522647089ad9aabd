package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	coordinationv1 "k8s.io/api/coordination/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// The fault tests break one real process at a known point — the registry,
// the API server, the manager itself — and check, by reading the objects in
// the cluster and Helm's records, that chartproof keeps what is installed
// and converges to the verified chart once the fault is over.

// faultFixture is a distribution registry holding the hello chart at some
// versions, each signed (legacy layout) by one key, and a namespace with a
// TrustPolicy "ci" trusting that key for the registry.
type faultFixture struct {
	t       *testing.T
	reg     *distribution
	ns      string
	digests map[string]string // version -> manifest digest
}

func newFaultFixture(t *testing.T, versions ...string) *faultFixture {
	t.Helper()
	f := &faultFixture{t: t, reg: startRegistry(t), digests: map[string]string{}}
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		d := pushChart(t, f.reg.Host, "charts/hello", v)
		if err := (testsign.Registry{Host: f.reg.Host}).SignLegacy("charts/hello", d, d, key); err != nil {
			t.Fatal(err)
		}
		f.digests[v] = d
	}
	f.ns = newNamespace(t, "e2e-faults-")
	mustCreate(t, newTrustPolicy(f.ns, "ci", f.reg.Host+"/charts/*", key.PublicPEM()))
	return f
}

// release creates VerifiedHelmRelease name of hello at version, verified
// again every interval.
func (f *faultFixture) release(name, version string, interval time.Duration) {
	f.t.Helper()
	vhr := newRelease(f.ns, name, "oci://"+f.reg.Host+"/charts/hello", version, "ci")
	vhr.Spec.Interval = metav1.Duration{Duration: interval}
	mustCreate(f.t, vhr)
}

// TestFaultRegistryDown: the registry goes away while a release is
// installed. Every reconcile meanwhile is inconclusive (Verified=Unknown,
// RegistryUnavailable) and touches nothing: the objects keep their UIDs and
// resourceVersions and Helm keeps one revision. When the registry comes back
// on the same address with the same storage, the release is verified again
// by itself and stays as it was.
func TestFaultRegistryDown(t *testing.T) {
	f := newFaultFixture(t, "1.0.0")
	manager, _ := startManager(t)
	f.release("app", "1.0.0", 2*time.Second)
	first := waitCondition(t, manager, f.ns, "app", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	checkInstalled(t, f.ns, "app", f.digests["1.0.0"])
	installed := objectVersions(t, f.ns, "app")

	f.reg.stop()
	down := waitCondition(t, manager, f.ns, "app", chartproofv1.ConditionVerified, metav1.ConditionUnknown, chartproofv1.ReasonRegistryUnavailable)
	if c := apimeta.FindStatusCondition(down.Status.Conditions, chartproofv1.ConditionReconciling); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Reconciling: got %+v, want True (an outage is retried)", c)
	}
	// One more reconcile while the registry is down, so more than one
	// inconclusive pass is seen to leave the release alone.
	waitFor(t, managerWait, "another verification while the registry is down", manager, func() (bool, string) {
		vhr := getRelease(t, f.ns, "app")
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified)
		return vhr.Status.LastVerifiedTime.After(down.Status.LastVerifiedTime.Time) && c.Reason == chartproofv1.ReasonRegistryUnavailable,
			fmt.Sprintf("lastVerifiedTime %v, Verified %s %s", vhr.Status.LastVerifiedTime, c.Status, c.Reason)
	})
	if diff := cmp.Diff(installed, objectVersions(t, f.ns, "app")); diff != "" {
		t.Errorf("objects changed while the registry was down (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(first.Status.Installed, getRelease(t, f.ns, "app").Status.Installed); diff != "" {
		t.Errorf("status.installed changed while the registry was down (-before +after):\n%s", diff)
	}

	f.reg.start(t)
	waitCondition(t, manager, f.ns, "app", chartproofv1.ConditionVerified, metav1.ConditionTrue, chartproofv1.ReasonVerified)
	back := waitCondition(t, manager, f.ns, "app", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	if back.Status.Installed == nil || back.Status.Installed.Revision != 1 {
		t.Errorf("status.installed after the outage: got %+v, want revision 1", back.Status.Installed)
	}
	if diff := cmp.Diff(installed, objectVersions(t, f.ns, "app")); diff != "" {
		t.Errorf("objects changed when the registry came back (-before +after):\n%s", diff)
	}
	checkInstalled(t, f.ns, "app", f.digests["1.0.0"])

	deleteReleases(t, manager, f.ns, "app")
	stopManager(t, manager)
}

// TestFaultManagerKilledDuringUpgrade: the manager reaches the API server
// through a proxy that holds the upgrade's PATCH of the Deployment. While it
// is held, Helm has recorded revision 2 pending-upgrade and patched the
// objects before the Deployment; the manager is killed with SIGKILL there.
// A new manager, straight to the API server, marks the interrupted revision
// failed, then upgrades from revision 1 to the verified 2.0.0: every object
// carries 2.0.0's stamp.
func TestFaultManagerKilledDuringUpgrade(t *testing.T) {
	f := newFaultFixture(t, "1.0.0", "2.0.0")
	v1, v2 := f.digests["1.0.0"], f.digests["2.0.0"]
	proxy := startAPIProxy(t)
	patchDeployment := proxy.hold(func(r *http.Request) bool {
		// Helm's patch, not the drift check's server-side apply dry run.
		return r.Method == http.MethodPatch && r.URL.Path == "/apis/apps/v1/namespaces/"+f.ns+"/deployments/app-hello" &&
			r.URL.Query().Get("dryRun") == ""
	})
	first, _ := startManager(t, "--kubeconfig="+proxy.kubeconfig(t)) // the later --kubeconfig wins

	f.release("app", "1.0.0", time.Hour)
	waitCondition(t, first, f.ns, "app", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	checkInstalled(t, f.ns, "app", v1)

	vhr := getRelease(t, f.ns, "app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Chart.Version = "2.0.0"
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	patchDeployment.waitArrived(t, first)
	// The attempt that is held is revision n. On a loaded machine an
	// earlier attempt can lose a response through the proxy (CI once saw
	// the record's POST end in "unexpected EOF" after the API server had
	// stored it); the manager then marks that revision failed and tries
	// again, so every revision between 1 and n must be failed.
	history := helmHistory(t, f.ns, "app")
	n := len(history)
	wantHeld := []string{"1:deployed"}
	for r := 2; r < n; r++ {
		wantHeld = append(wantHeld, fmt.Sprintf("%d:failed", r))
	}
	wantHeld = append(wantHeld, fmt.Sprintf("%d:pending-upgrade", max(n, 2)))
	if diff := cmp.Diff(wantHeld, history); diff != "" {
		t.Fatalf("Helm records while the upgrade is held (-want +got):\n%s", diff)
	}
	held := map[string]string{"ConfigMap": v2, "Service": v2, "ServiceAccount": v2, "Deployment": v1}
	if diff := cmp.Diff(held, stamps(t, f.ns, "app")); diff != "" {
		t.Fatalf("chart digests stamped while the upgrade is held (-want +got):\n%s", diff)
	}

	if err := first.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := first.wait(10 * time.Second); !first.exitedBySignal() {
		t.Fatalf("manager after SIGKILL: %v, want killed", err)
	}
	patchDeployment.waitDropped(t)
	if diff := cmp.Diff(held, stamps(t, f.ns, "app")); diff != "" {
		t.Fatalf("chart digests stamped after the kill (-want +got):\n%s", diff)
	}

	second, _ := startManager(t)
	waitEvent(t, second, f.ns, "app", chartproofv1.ReasonPendingReleaseRecovered)
	waitFor(t, managerWait, "app Ready at 2.0.0", second, func() (bool, string) {
		vhr := getRelease(t, f.ns, "app")
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		ok := c != nil && c.Status == metav1.ConditionTrue && vhr.Status.Installed != nil && vhr.Status.Installed.Digest == v2
		return ok, fmt.Sprintf("Ready %+v, installed %+v", c, vhr.Status.Installed)
	})
	// Revision n+1 is the upgrade to 2.0.0, from revision 1.
	wantAfter := []string{"1:superseded"}
	for r := 2; r <= n; r++ {
		wantAfter = append(wantAfter, fmt.Sprintf("%d:failed", r))
	}
	wantAfter = append(wantAfter, fmt.Sprintf("%d:deployed", n+1))
	if diff := cmp.Diff(wantAfter, helmHistory(t, f.ns, "app")); diff != "" {
		t.Errorf("Helm records after the recovery (-want +got):\n%s", diff)
	}
	want := map[string]string{"ConfigMap": v2, "Service": v2, "ServiceAccount": v2, "Deployment": v2}
	if diff := cmp.Diff(want, stamps(t, f.ns, "app")); diff != "" {
		t.Errorf("chart digests stamped after the recovery (-want +got):\n%s", diff)
	}
	if inst := getRelease(t, f.ns, "app").Status.Installed; inst.Revision != n+1 || !inst.Verified {
		t.Errorf("status.installed: got %+v, want revision %d, verified", inst, n+1)
	}

	deleteReleases(t, second, f.ns, "app")
	stopManager(t, second)
}

// TestFaultAPIServerRestartDuringInstall: the manager reaches the API
// server through a proxy that holds the install's creation of the
// Deployment. While it is held — Helm has recorded revision 1
// pending-install and created the objects before the Deployment — the proxy
// loses the API server and the API server is stopped; the creation is then
// let go and fails, and so does Helm's attempt to record the failure: the
// record stays pending-install.
// The API server is started again on the same port, with the same
// certificates and etcd. The manager, which kept running, marks the
// interrupted install failed and installs the verified chart afresh, taking
// over the objects it had made: Ready, every object stamped, one Helm
// revision.
func TestFaultAPIServerRestartDuringInstall(t *testing.T) {
	f := newFaultFixture(t, "1.0.0")
	proxy := startAPIProxy(t)
	createDeployment := proxy.hold(func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.URL.Path == "/apis/apps/v1/namespaces/"+f.ns+"/deployments"
	})
	manager, _ := startManager(t, "--kubeconfig="+proxy.kubeconfig(t)) // the later --kubeconfig wins

	f.release("app", "1.0.0", 2*time.Second)
	createDeployment.waitArrived(t, manager)
	if diff := cmp.Diff([]string{"1:pending-install"}, helmHistory(t, f.ns, "app")); diff != "" {
		t.Fatalf("Helm records while the install is held (-want +got):\n%s", diff)
	}

	// kube-apiserver's graceful stop waits for the connections of open
	// watches to close, longer than envtest waits for it (20s): the proxy
	// drops them first, as a load balancer does when its backend goes.
	proxy.disconnect()
	stopAPIServer(t)
	createDeployment.let()
	record := "/api/v1/namespaces/" + f.ns + "/secrets/sh.helm.release.v1.app.v1"
	proxy.waitSeen(t, manager, http.MethodPut, record, http.StatusBadGateway)
	startAPIServer(t)
	proxy.reconnect()

	if diff := cmp.Diff([]string{"1:pending-install"}, helmHistory(t, f.ns, "app")); diff != "" {
		t.Fatalf("Helm records after the restart (-want +got):\n%s", diff)
	}
	waitEvent(t, manager, f.ns, "app", chartproofv1.ReasonPendingReleaseRecovered)
	vhr := waitCondition(t, manager, f.ns, "app", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != f.digests["1.0.0"] || inst.Revision != 1 {
		t.Errorf("status.installed: got %+v, want %s at revision 1", inst, f.digests["1.0.0"])
	}
	checkInstalled(t, f.ns, "app", f.digests["1.0.0"])
	if diff := cmp.Diff([]string{"1:deployed"}, helmHistory(t, f.ns, "app")); diff != "" {
		t.Errorf("Helm records after the recovery (-want +got):\n%s", diff)
	}

	deleteReleases(t, manager, f.ns, "app")
	stopManager(t, manager)
}

// TestFaultLeaderElection: two managers elect a leader through a Lease in a
// namespace of their own (with config/rbac's leader-election Role). Only the
// leader starts its controllers and installs a release; the other waits.
// When the leader gets SIGTERM it hands the Lease over, and the other takes
// it, starts its controllers and installs a release created after.
func TestFaultLeaderElection(t *testing.T) {
	f := newFaultFixture(t, "1.0.0")
	leases := newNamespace(t, "e2e-lease-")
	grantLeaderElection(t, leases)
	flags := []string{"--leader-elect", "--leader-election-namespace=" + leases}

	a, _ := startManager(t, flags...)
	holderA := waitLeader(t, a, leases, "")
	waitOutput(t, a, startedControllers)
	b, _ := startManager(t, flags...)
	waitOutput(t, b, acquiringLease)

	f.release("first", "1.0.0", time.Hour)
	waitCondition(t, a, f.ns, "first", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	checkInstalled(t, f.ns, "first", f.digests["1.0.0"])
	if got := leaseHolder(t, leases); got != holderA {
		t.Errorf("Lease holder: got %q, want %q (the first manager)", got, holderA)
	}
	if strings.Contains(b.out.String(), startedControllers) {
		t.Errorf("the manager that is not the leader started its controllers:\n%s", b.out.String())
	}

	stopManager(t, a)
	holderB := waitLeader(t, b, leases, holderA)
	waitOutput(t, b, startedControllers)
	f.release("second", "1.0.0", time.Hour)
	waitCondition(t, b, f.ns, "second", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	checkInstalled(t, f.ns, "second", f.digests["1.0.0"])
	if got := leaseHolder(t, leases); got != holderB {
		t.Errorf("Lease holder: got %q, want %q (the second manager)", got, holderB)
	}

	deleteReleases(t, b, f.ns, "first", "second")
	stopManager(t, b)
}

// What the manager logs (client-go's leader election and controller-runtime)
// when it tries to become the leader, when it has become the leader, and
// when it starts the workers of a controller: only the leader does.
const (
	acquiringLease     = "Attempting to acquire leader lease"
	acquiredLease      = "Successfully acquired lease"
	startedControllers = "Starting workers"
)

// leaderElectionLease is the name of the Lease the managers elect a leader
// with (main.go's LeaderElectionID).
const leaderElectionLease = "chartproof-leader.delivery.chartproof.dev"

// leaseHolder returns the holder identity of the leader-election Lease in
// ns, "" when there is none or nobody holds it.
func leaseHolder(t *testing.T, ns string) string {
	t.Helper()
	var lease coordinationv1.Lease
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: leaderElectionLease}, &lease)
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// waitLeader waits until manager p holds the Lease in ns, with an identity
// other than previous, and returns that identity.
func waitLeader(t *testing.T, p *process, ns, previous string) string {
	t.Helper()
	var holder string
	waitFor(t, managerWait, p.name+" to hold the Lease", p, func() (bool, string) {
		holder = leaseHolder(t, ns)
		return holder != "" && holder != previous && strings.Contains(p.out.String(), acquiredLease),
			fmt.Sprintf("holder %q", holder)
	})
	return holder
}

// waitOutput waits until p has written text.
func waitOutput(t *testing.T, p *process, text string) {
	t.Helper()
	waitFor(t, managerWait, fmt.Sprintf("%s to log %q", p.name, text), p, func() (bool, string) {
		return strings.Contains(p.out.String(), text), "not yet"
	})
}

// grantLeaderElection creates config/rbac's leader-election Role and
// RoleBinding in ns instead of the manager's namespace.
func grantLeaderElection(t *testing.T, ns string) {
	t.Helper()
	for _, file := range []string{"leader_election_role.yaml", "leader_election_role_binding.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "config", "rbac", file))
		if err != nil {
			t.Fatal(err)
		}
		var u unstructured.Unstructured
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096).Decode(&u.Object); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		u.SetNamespace(ns)
		mustCreate(t, &u)
	}
}

// getRelease reads VerifiedHelmRelease ns/name.
func getRelease(t *testing.T, ns, name string) *chartproofv1.VerifiedHelmRelease {
	t.Helper()
	var vhr chartproofv1.VerifiedHelmRelease
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &vhr); err != nil {
		t.Fatal(err)
	}
	return &vhr
}

// waitEvent waits for an event with reason about release ns/name.
func waitEvent(t *testing.T, manager *process, ns, name, reason string) {
	t.Helper()
	waitFor(t, managerWait, fmt.Sprintf("a %s event about %s", reason, name), manager, func() (bool, string) {
		var events eventsv1.EventList
		if err := k8s.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range events.Items {
			if e.Regarding.Name == name && e.Reason == reason {
				return true, ""
			}
			seen = append(seen, e.Regarding.Name+":"+e.Reason)
		}
		return false, fmt.Sprintf("events %v", seen)
	})
}

// helmHistory reads the records Helm keeps of release in ns, with Helm's
// own storage driver, and returns "revision:status" in revision order.
func helmHistory(t *testing.T, ns, release string) []string {
	t.Helper()
	rels, err := driver.NewSecrets(clientset.CoreV1().Secrets(ns)).Query(map[string]string{"name": release, "owner": "helm"})
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rels, func(a, b *helmrelease.Release) int { return a.Version - b.Version })
	var out []string
	for _, r := range rels {
		out = append(out, fmt.Sprintf("%d:%s", r.Version, r.Info.Status))
	}
	return out
}

// stamps returns the chart digest stamped on each object of release's
// chart in ns, by kind; "" for an object that does not exist.
func stamps(t *testing.T, ns, release string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range chartObjects(ns, release) {
		kind := strings.TrimPrefix(fmt.Sprintf("%T", o), "*v1.")
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o)
		switch {
		case apierrors.IsNotFound(err):
			out[kind] = ""
		case err != nil:
			t.Fatal(err)
		default:
			out[kind] = o.GetAnnotations()[chartproofv1.AnnotationChartDigest]
		}
	}
	return out
}

// objectVersions returns "uid resourceVersion" of each object of release's
// chart in ns, by kind: any write to an object changes it.
func objectVersions(t *testing.T, ns, release string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range chartObjects(ns, release) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(fmt.Sprintf("%T", o), "*v1.")] = string(o.GetUID()) + " " + o.GetResourceVersion()
	}
	return out
}

// apiProxy is a reverse proxy on loopback in front of the test API server.
// A client reaches the API server through it with its own credentials (the
// bearer token of its kubeconfig), so RBAC applies as without the proxy. It
// serves TLS with a certificate of its own: client-go sends no credentials
// to a server over plain HTTP. A test can hold a request until it lets it
// go, and wait for a request to have been answered with some status.
type apiProxy struct {
	URL string
	ca  []byte // PEM of the proxy's certificate

	mu    sync.Mutex
	holds []*heldRequest
	seen  map[string]bool // "METHOD path status" of every answered request
	// cut is closed by disconnect: every forwarded request ends, and no
	// other is forwarded until reconnect.
	cut chan struct{}
}

// heldRequest is the first request a rule of apiProxy matches: it waits in
// the proxy until the test lets it go, and is never forwarded if its client
// goes away first.
type heldRequest struct {
	match   func(*http.Request) bool
	taken   bool          // a request matched; guarded by apiProxy.mu
	arrived chan struct{} // closed when the request arrives
	release chan struct{} // closed by let
	once    sync.Once
	dropped chan struct{} // closed when its client went away while held
}

func startAPIProxy(t *testing.T) *apiProxy {
	t.Helper()
	upstream, err := url.Parse(restConfig.Host)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(restConfig.CAData) {
		t.Fatal("the API server's CA is not PEM")
	}
	transport := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	forward := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		Transport:     transport,
		FlushInterval: -1, // watches stream
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	p := &apiProxy{seen: map[string]bool{}, cut: make(chan struct{})}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := p.holdFor(r); h != nil {
			// The server notices that a client went away only once the
			// request's body has been read.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			close(h.arrived)
			select {
			case <-h.release:
			case <-r.Context().Done():
				close(h.dropped)
				return
			}
		}
		rec := &statusRecorder{ResponseWriter: w}
		if ctx, ok := p.upstream(r.Context()); ok {
			forward.ServeHTTP(rec, r.WithContext(ctx))
		} else {
			rec.WriteHeader(http.StatusBadGateway)
		}
		p.mu.Lock()
		p.seen[fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, rec.code)] = true
		p.mu.Unlock()
	}))
	srv.StartTLS()
	p.URL = srv.URL
	p.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	t.Cleanup(func() {
		p.mu.Lock()
		for _, h := range p.holds {
			h.let()
		}
		p.mu.Unlock()
		srv.CloseClientConnections()
		srv.Close()
		transport.CloseIdleConnections()
	})
	return p
}

// upstream returns the context a request is forwarded with, which ends
// when the proxy is disconnected; false when it is.
func (p *apiProxy) upstream(ctx context.Context) (context.Context, bool) {
	p.mu.Lock()
	cut := p.cut
	p.mu.Unlock()
	select {
	case <-cut:
		return nil, false
	default:
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-cut:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, true
}

// disconnect cuts the proxy from the API server, as a load balancer whose
// backend went away: the requests under way end, watches included, and
// every request is answered 502 Bad Gateway until reconnect.
func (p *apiProxy) disconnect() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.cut)
}

// reconnect forwards requests to the API server again.
func (p *apiProxy) reconnect() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = make(chan struct{})
}

// hold adds a rule: the first request match matches is held.
func (p *apiProxy) hold(match func(*http.Request) bool) *heldRequest {
	h := &heldRequest{match: match, arrived: make(chan struct{}), release: make(chan struct{}), dropped: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds = append(p.holds, h)
	return h
}

func (p *apiProxy) holdFor(r *http.Request) *heldRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.holds {
		if !h.taken && h.match(r) {
			h.taken = true
			return h
		}
	}
	return nil
}

// waitSeen waits until the proxy has answered method path with status.
func (p *apiProxy) waitSeen(t *testing.T, manager *process, method, path string, status int) {
	t.Helper()
	key := fmt.Sprintf("%s %s %d", method, path, status)
	waitFor(t, managerWait, "the proxy to answer "+key, manager, func() (bool, string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.seen[key], "not yet"
	})
}

// kubeconfig writes a kubeconfig for the manager's ServiceAccount that
// reaches the API server through the proxy.
func (p *apiProxy) kubeconfig(t *testing.T) string {
	t.Helper()
	ensureNamespace(t, managerNamespace)
	applyRBAC(t, filepath.Join("..", "config", "rbac"))
	path := serviceAccountKubeconfig(t, managerNamespace, managerServiceAccount)
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server, c.CertificateAuthorityData = p.URL, p.ca
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// let lets the held request go on to the API server.
func (h *heldRequest) let() { h.once.Do(func() { close(h.release) }) }

// waitArrived waits until the request is held.
func (h *heldRequest) waitArrived(t *testing.T, manager *process) {
	t.Helper()
	waitFor(t, managerWait, "the request to be held", manager, func() (bool, string) {
		select {
		case <-h.arrived:
			return true, ""
		default:
			return false, "not yet"
		}
	})
}

// waitDropped waits until the held request's client has gone away; the
// request was not forwarded.
func (h *heldRequest) waitDropped(t *testing.T) {
	t.Helper()
	select {
	case <-h.dropped:
	case <-time.After(managerWait):
		t.Fatal("the held request's client did not go away")
	}
}

// statusRecorder remembers the status code of a response. Unwrap lets the
// reverse proxy flush through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
