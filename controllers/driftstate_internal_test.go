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
