package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// trustState is what the manager remembers of trust changes between
// reconciles (issue 12, item 7): when a trust change was observed for each
// release, and which installed releases do not verify now.
type trustState struct {
	mu sync.Mutex
	// changed holds, for each release, the trust changes observed since
	// it was last judged with them.
	changed map[types.UID]pendingChange
	// verified says, for each installed release, whether it verified when
	// last reconciled; unverified counts those that did not.
	verified   map[types.UID]bool
	unverified int
	// early holds the releases a reconcile found no longer verifying before
	// any trust change was observed for them: trust sources are read
	// uncached, so a reconcile can see a change before its watch event
	// arrives. The change observed next for one of them, before it is
	// reconciled again, is timed as revoked at once.
	early map[types.UID]bool
}

// pendingChange spans the trust changes observed for a release that no
// reconcile has judged yet: the first (a revocation is timed from it, so
// the time is never under-reported) and the last (a reconcile that started
// before it may have judged with the trust of before).
type pendingChange struct {
	first, last time.Time
}

func (r *VerifiedHelmReleaseReconciler) trust() *trustState {
	r.trustOnce.Do(func() {
		r.trustState = &trustState{changed: map[types.UID]pendingChange{}, verified: map[types.UID]bool{}, early: map[types.UID]bool{}}
	})
	return r.trustState
}

// trustChanged records that a change of trust (a policy, what it reads, a
// namespace's labels) was observed for the releases listed, and returns
// their requests. A release a reconcile already found no longer verifying,
// before this change was observed, is timed as revoked at once (0 s).
func (r *VerifiedHelmReleaseReconciler) trustChanged(list chartproofv1.VerifiedHelmReleaseList) []ctrl.Request {
	s, now := r.trust(), time.Now()
	early := 0
	s.mu.Lock()
	for _, v := range list.Items {
		if s.early[v.UID] {
			delete(s.early, v.UID)
			early++
		}
		c, ok := s.changed[v.UID]
		if !ok {
			c.first = now
		}
		c.last = now
		s.changed[v.UID] = c
	}
	s.mu.Unlock()
	for range early {
		r.RevocationMetrics.Revoked(0)
	}
	return requestsFor(list)
}

// trackVerified records whether obj's installed release verifies now, sets
// the gauge of installed releases that do not, and times a release that
// verified and no longer does from the first trust change observed before
// it. A reconcile that started before the last change was observed may have
// judged with the trust of before: unless it marked the release, the
// changes stay for the reconcile the last one queued. (Trust changes come
// from many sources: a mandatory ClusterTrustPolicy's change reaches every
// release, and may be pending when a revocation list changes.)
func (r *VerifiedHelmReleaseReconciler) trackVerified(obj *chartproofv1.VerifiedHelmRelease, started time.Time) {
	s := r.trust()
	s.mu.Lock()
	pending, observed := s.changed[obj.UID]
	was, known := s.forget(obj.UID)
	inst := obj.Status.Installed
	marked := inst != nil && !inst.Verified && known && was
	delete(s.early, obj.UID)
	if marked && !observed {
		s.early[obj.UID] = true
	}
	if observed && pending.last.After(started) && !marked {
		// Judged, perhaps, with the trust of before: the changes wait for
		// the reconcile the last one queued. One that marked the release
		// saw them.
		observed = false
	} else {
		delete(s.changed, obj.UID)
	}
	if inst != nil {
		s.verified[obj.UID] = inst.Verified
		if !inst.Verified {
			s.unverified++
		}
	}
	// Set under the lock: reconciles of other releases run concurrently,
	// and a count set after a newer one would stay until the next reconcile.
	r.RevocationMetrics.SetUnverified(s.unverified)
	s.mu.Unlock()
	if marked && observed {
		r.RevocationMetrics.Revoked(time.Since(pending.first))
	}
}

// forget drops what is remembered of uid's verification, and returns it;
// s.mu is held.
func (s *trustState) forget(uid types.UID) (verified, known bool) {
	verified, known = s.verified[uid]
	if known && !verified {
		s.unverified--
	}
	delete(s.verified, uid)
	return verified, known
}

// queuedByTrustChange reports whether a change of trust was observed for
// uid since its last reconcile.
func (r *VerifiedHelmReleaseReconciler) queuedByTrustChange(uid types.UID) bool {
	s := r.trust()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.changed[uid]
	return ok
}

// forgetTrust drops what is remembered of a release being deleted.
func (r *VerifiedHelmReleaseReconciler) forgetTrust(uid types.UID) {
	s := r.trust()
	s.mu.Lock()
	delete(s.changed, uid)
	delete(s.early, uid)
	s.forget(uid)
	// Set under the lock: reconciles run concurrently, and a count set
	// after another's newer one would stay until the next reconcile.
	r.RevocationMetrics.SetUnverified(s.unverified)
	s.mu.Unlock()
}

// recordRelease sets obj's series of ReleaseMetrics from the status just
// written: its conditions, and whether what it installed verifies now.
func (r *VerifiedHelmReleaseReconciler) recordRelease(obj *chartproofv1.VerifiedHelmRelease) {
	conditions := make(map[string]string, len(obj.Status.Conditions))
	for _, c := range obj.Status.Conditions {
		conditions[c.Type] = string(c.Status)
	}
	var verified *bool
	if inst := obj.Status.Installed; inst != nil {
		verified = &inst.Verified
	}
	r.ReleaseMetrics.Set(obj.Namespace, obj.Name, conditions, verified)
}
