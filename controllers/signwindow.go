package controllers

import (
	"fmt"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
)

// signatureRetry is how soon a chart that nothing signed yet is verified
// again the first time; each later wait is as long as the time waited so
// far (5 s, 5 s, 10 s, 20 s, ...).
const signatureRetry = 5 * time.Second

// unsignedCharts remembers, per release, the digest last refused because
// nothing had signed it, and when that was first seen: a CI pipeline
// pushes a chart and signs it moments later, and a release that resolved
// the new tag in between is verified again soon, not at its next
// interval. In memory: a restart starts the window again.
type unsignedCharts struct {
	mu   sync.Mutex
	seen map[types.UID]unsignedChart
}

type unsignedChart struct {
	digest string
	since  time.Time
}

// wait returns how soon release uid, refused at now because nothing signed
// digest, is verified again: with backoff, while less than window has
// passed since digest was first refused; 0 after that (the release's
// interval then). Another digest starts the window again.
func (u *unsignedCharts) wait(uid types.UID, digest string, now time.Time, window time.Duration) time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[types.UID]unsignedChart{}
	}
	s, ok := u.seen[uid]
	if !ok || s.digest != digest {
		s = unsignedChart{digest: digest, since: now}
		u.seen[uid] = s
	}
	waited := now.Sub(s.since)
	if waited >= window {
		return 0
	}
	return min(max(waited, signatureRetry), window-waited)
}

// forget drops what is remembered of uid: it was not refused for lack of
// a signature, or it is deleted.
func (u *unsignedCharts) forget(uid types.UID) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.seen, uid)
}

// awaitingSignature reports whether res refused a chart the release does
// not run only because nothing signed it yet (NoSignature, not an outage):
// the push→sign window of a CI pipeline. A chart signed by someone the
// policy does not trust is refused at once, as any other refusal.
func awaitingSignature(obj *chartproofv1.VerifiedHelmRelease, res gate.Result) bool {
	inst := obj.Status.Installed
	return res.Verdict.Code() == chartproofv1.ReasonNoSignature && !res.Verdict.Inconclusive && res.Digest != "" &&
		(inst == nil || inst.Digest != res.Digest)
}

// awaitSignature marks a release whose chart is verified again in wait:
// Reconciling=True (kstatus InProgress: the spec is not done), Stalled
// absent, and Ready True when what runs is a chart that verifies (runs).
func (r *VerifiedHelmReleaseReconciler) awaitSignature(obj *chartproofv1.VerifiedHelmRelease, res gate.Result, wait time.Duration, runs bool) {
	msg := fmt.Sprintf("%s has no signature yet: verified again in %s (a chart pushed before it is signed is verified again soon, for one interval)",
		displayDigest(res), wait.Round(time.Second))
	if inst := obj.Status.Installed; runs && inst != nil {
		r.setCondition(obj, chartproofv1.ConditionReady, metav1.ConditionTrue, chartproofv1.ReasonAwaitingSignature,
			fmt.Sprintf("release %s revision %d is the verified %s; %s", r.releaseName(obj), inst.Revision, inst.Digest, msg))
	}
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionStalled)
	r.setCondition(obj, chartproofv1.ConditionReconciling, metav1.ConditionTrue, chartproofv1.ReasonAwaitingSignature, msg)
}
