package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// observed is one version of a release the API server held, as kstatus
// (the library Flux's health checks and kubectl-style waiters use) reads
// it.
type observed struct {
	status      kstatus.Status
	message     string
	statusSet   bool // the controller had written a status
	installed   bool
	ready       metav1.ConditionStatus
	readyReason string
	generation  int64 // metadata.generation
	observedGen int64 // status.observedGeneration
}

func (o observed) String() string {
	return fmt.Sprintf("%s (%s) installed=%v Ready=%s/%s generation %d observed %d", o.status, o.message, o.installed, o.ready, o.readyReason, o.generation, o.observedGen)
}

// kstatusLog records every version of release name from its creation on,
// through a watch started before it is created.
type kstatusLog struct {
	mu   sync.Mutex
	seen []observed
}

func (f *fixture) watchKstatus(name string) *kstatusLog {
	f.t.Helper()
	wc, err := client.NewWithWatch(restConfig, client.Options{Scheme: k8s.Scheme()})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &chartproofv1.VerifiedHelmReleaseList{}, client.InNamespace(f.ns))
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	l := &kstatusLog{}
	done := make(chan struct{})
	f.t.Cleanup(func() { cancel(); w.Stop(); <-done })
	go func() {
		defer close(done)
		for e := range w.ResultChan() {
			vhr, ok := e.Object.(*chartproofv1.VerifiedHelmRelease)
			if !ok || vhr.Name != name || (e.Type != watch.Added && e.Type != watch.Modified) {
				continue
			}
			o := observed{statusSet: len(vhr.Status.Conditions) > 0, installed: vhr.Status.Installed != nil,
				generation: vhr.Generation, observedGen: vhr.Status.ObservedGeneration}
			if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c != nil {
				o.ready, o.readyReason = c.Status, c.Reason
			}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vhr)
			if err != nil {
				o.message = err.Error()
			} else if res, err := kstatus.Compute(&unstructured.Unstructured{Object: u}); err != nil {
				o.message = err.Error()
			} else {
				o.status, o.message = res.Status, res.Message
			}
			l.mu.Lock()
			l.seen = append(l.seen, o)
			l.mu.Unlock()
		}
	}()
	return l
}

// waitFinal waits until the latest version read is want (for the
// generation observed, when it is not 0), and returns every version read
// until then.
func (l *kstatusLog) waitFinal(t *testing.T, want kstatus.Status, generation int64) []observed {
	t.Helper()
	var seen []observed
	waitFor(t, waitTimeout, "kstatus "+want.String(), func() (bool, string) {
		l.mu.Lock()
		seen = append([]observed(nil), l.seen...)
		l.mu.Unlock()
		if len(seen) == 0 {
			return false, "nothing seen"
		}
		last := seen[len(seen)-1]
		return last.status == want && (generation == 0 || last.observedGen == generation), last.String()
	})
	return seen
}

// TestKstatus (issue 13, item 6): kstatus follows every version of a
// release's status the API server held. A release being installed reads
// InProgress from the first status the controller writes until the install
// has ended (Reconciling=True is written before the work), then Current;
// Audit mode ends Current (Ready=True, AuditOnly: never Stalled); a chart
// nothing signed yet reads InProgress while its signature is awaited;
// Failed comes only from a refusal (nothing installed) or an installed
// chart that no longer verifies. The one version before any status (just created) is
// Current by kstatus's own rule for a resource with no conditions yet;
// nothing can be written before the controller first sees it.
func TestKstatus(t *testing.T) {
	// notCurrentBefore checks that no version with a status read Current
	// before the release was installed and Ready.
	notCurrentBefore := func(t *testing.T, seen []observed) {
		t.Helper()
		progressed := false
		for _, o := range seen {
			if !o.statusSet {
				continue
			}
			if o.status == kstatus.InProgressStatus {
				progressed = true
			}
			if o.status == kstatus.CurrentStatus && !(o.installed && o.ready == metav1.ConditionTrue) {
				t.Errorf("read Current before the release was installed and Ready: %s (all: %v)", o, seen)
			}
			if o.status == kstatus.FailedStatus {
				t.Errorf("read Failed on the way: %s (all: %v)", o, seen)
			}
		}
		if !progressed {
			t.Errorf("never read InProgress while installing: %v", seen)
		}
	}

	// signed creates a release of a signed chart, watched from before its
	// creation.
	signed := func(t *testing.T) (*fixture, *kstatusLog) {
		f := newFixture(t)
		f.signLegacy(f.push("1.0.0"), f.key)
		f.policy("trusted", f.key, "")
		l := f.watchKstatus("app")
		f.release("app", "1.0.0", "trusted")
		return f, l
	}

	t.Run("installed", func(t *testing.T) {
		f, l := signed(t)
		notCurrentBefore(t, l.waitFinal(t, kstatus.CurrentStatus, 1))
		f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

		// A new generation: Ready=Unknown (Progressing) until it is done,
		// so that `kubectl wait --for=condition=Ready` does not read the
		// last generation's verdict; then Current again.
		before := len(l.waitFinal(t, kstatus.CurrentStatus, 1))
		f.edit("app", func(v *chartproofv1.VerifiedHelmRelease) {
			v.Spec.Interval = metav1.Duration{Duration: 11 * time.Minute}
		})
		seen := l.waitFinal(t, kstatus.CurrentStatus, 2)[before:]
		progressing := false
		for _, o := range seen {
			if o.generation == 2 && o.ready == metav1.ConditionUnknown && o.readyReason == chartproofv1.ReasonProgressing {
				progressing = o.status == kstatus.InProgressStatus
			}
		}
		if !progressing {
			t.Errorf("after a spec change, read %v; want Ready=Unknown %s, InProgress, before Current", seen, chartproofv1.ReasonProgressing)
		}
	})

	t.Run("Audit mode", func(t *testing.T) {
		f := newFixture(t)
		f.push("1.0.0")
		f.policy("audit", f.key, chartproofv1.ModeAudit)
		l := f.watchKstatus("app")
		f.release("app", "1.0.0", "audit")
		notCurrentBefore(t, l.waitFinal(t, kstatus.CurrentStatus, 1))
		f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionTrue, chartproofv1.ReasonAuditOnly)
		f.checkGolden("app", "installed-audit")
	})

	t.Run("refused", func(t *testing.T) {
		f := newFixture(t)
		other, err := testsign.NewKey("p256")
		if err != nil {
			t.Fatal(err)
		}
		f.signLegacy(f.push("1.0.0"), other)
		f.policy("trusted", f.key, "")
		l := f.watchKstatus("app")
		f.release("app", "1.0.0", "trusted")
		l.waitFinal(t, kstatus.FailedStatus, 1)
		f.waitCondition("app", chartproofv1.ConditionStalled, metav1.ConditionTrue, chartproofv1.ReasonUntrustedSigner)
	})

	t.Run("awaiting a signature", func(t *testing.T) {
		f := newFixture(t)
		f.push("1.0.0") // nothing signed it yet: InProgress, not Failed
		f.policy("trusted", f.key, "")
		l := f.watchKstatus("app")
		f.release("app", "1.0.0", "trusted")
		f.waitCondition("app", chartproofv1.ConditionReconciling, metav1.ConditionTrue, chartproofv1.ReasonAwaitingSignature)
		for _, o := range l.waitFinal(t, kstatus.InProgressStatus, 1) {
			if o.status == kstatus.FailedStatus || (o.statusSet && o.status == kstatus.CurrentStatus) {
				t.Errorf("read %s while the signature is awaited", o)
			}
		}
	})

	t.Run("revoked after install", func(t *testing.T) {
		f, l := signed(t)
		l.waitFinal(t, kstatus.CurrentStatus, 1)
		vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
		f.revokeKey("trusted", vhr.Status.Evidence[0].KeyID)
		l.waitFinal(t, kstatus.FailedStatus, 1)
		f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionTrue, chartproofv1.ReasonReleaseHeld)
		f.checkGolden("app", "revoked-held")

		// The revocation lifted: Current again, and Released no longer
		// says the release is held.
		var tp chartproofv1.TrustPolicy
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "trusted"}, &tp); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(tp.DeepCopy())
		tp.Spec.Revocations = nil
		if err := k8s.Patch(context.Background(), &tp, patch); err != nil {
			t.Fatal(err)
		}
		l.waitFinal(t, kstatus.CurrentStatus, 1)
		f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionTrue, chartproofv1.ReasonReleaseUpToDate)
		f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionTrue, chartproofv1.ReasonReleaseUpToDate)
	})
}

// TestReconcileRequestedAt (issue 13, item 5): the annotation Flux users
// already script, reconcile.fluxcd.io/requestedAt, makes a release whose
// interval is hours away verify again now, and status.lastHandledReconcileAt
// says which request was handled.
func TestReconcileRequestedAt(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: 5 * time.Hour}
	})
	first := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if first.Status.LastHandledReconcileAt != "" {
		t.Fatalf("lastHandledReconcileAt = %q before any request", first.Status.LastHandledReconcileAt)
	}
	waitFor(t, 2*time.Second, "the clock past the last verification", func() (bool, string) {
		return time.Now().Truncate(time.Second).After(first.Status.LastVerifiedTime.Time), ""
	})

	requested := time.Now().Format(time.RFC3339Nano)
	vhr := f.get("app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Annotations = map[string]string{chartproofv1.AnnotationReconcileRequest: requested}
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "the request handled", func() (bool, string) {
		vhr = f.get("app")
		return vhr.Status.LastHandledReconcileAt == requested, fmt.Sprintf("lastHandledReconcileAt %q", vhr.Status.LastHandledReconcileAt)
	})
	if !vhr.Status.LastVerifiedTime.After(first.Status.LastVerifiedTime.Time) {
		t.Errorf("lastVerifiedTime %v, want after %v: the request verifies again", vhr.Status.LastVerifiedTime, first.Status.LastVerifiedTime)
	}
	if vhr.Generation != first.Generation {
		t.Errorf("generation %d, want %d: an annotation is not a spec change", vhr.Generation, first.Generation)
	}
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Ready = %+v, want True", c)
	}
}
