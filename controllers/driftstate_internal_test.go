package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TestStillIntact: a reconcile queued by a trust change skips the drift
// comparison only when the last one, under the same release state, found
// the objects intact while watched, recently, and no watch event woke the
// release since.
func TestStillIntact(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const uid, key, maxAge = types.UID("u"), "1/sha256:a/1/cfg", 5 * time.Minute
	cases := []struct {
		name  string
		setup func(s *driftState)
		at    time.Time
		key   string
		want  bool
	}{
		{"intact, same state, recent", func(s *driftState) { s.checked(uid, key, t0, true) }, t0.Add(time.Minute), key, true},
		{"never compared", func(s *driftState) {}, t0, key, false},
		{"drift found last time", func(s *driftState) { s.checked(uid, key, t0, true); s.checked(uid, key, t0, false) }, t0, key, false},
		{"another state (upgraded, new values, new generation)", func(s *driftState) { s.checked(uid, key, t0, true) }, t0, "2/sha256:a/1/cfg", false},
		{"the interval's check is due", func(s *driftState) { s.checked(uid, key, t0, true) }, t0.Add(maxAge), key, false},
		{"a clock that went back", func(s *driftState) { s.checked(uid, key, t0, true) }, t0.Add(-time.Second), key, false},
		{"a watch event woke it", func(s *driftState) { s.checked(uid, key, t0, true); s.wake(uid, t0.Add(time.Second)) }, t0.Add(time.Minute), key, false},
		{"forgotten", func(s *driftState) { s.checked(uid, key, t0, true); s.forget(uid) }, t0, key, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &VerifiedHelmReleaseReconciler{}
			s := r.drift()
			tc.setup(s)
			if got := s.stillIntact(uid, tc.key, tc.at, maxAge); got != tc.want {
				t.Fatalf("stillIntact = %v; want %v", got, tc.want)
			}
		})
	}
}

// TestCompareDue: the reconcile after one that skipped the comparison comes
// when the interval since the last comparison is up, not an interval after
// the skip.
func TestCompareDue(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const uid, interval = types.UID("u"), 10 * time.Minute
	r := &VerifiedHelmReleaseReconciler{}
	s := r.drift()
	if got := s.compareDue(uid, t0, interval); got != interval {
		t.Errorf("never compared: due in %s; want the interval", got)
	}
	s.checked(uid, "k", t0, true)
	if got := s.compareDue(uid, t0.Add(3*time.Minute), interval); got != 7*time.Minute {
		t.Errorf("compared 3m ago: due in %s; want 7m", got)
	}
	if got := s.compareDue(uid, t0.Add(interval+time.Minute), interval); got != time.Second {
		t.Errorf("overdue: due in %s; want at once (1s)", got)
	}
	s.checked(uid, "k", t0, false)
	if got := s.compareDue(uid, t0.Add(3*time.Minute), interval); got != interval {
		t.Errorf("drift found last time: due in %s; want the interval", got)
	}
}
