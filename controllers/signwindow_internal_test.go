package controllers

import (
	"testing"
	"time"
)

// TestUnsignedWait: a chart nothing signed is verified again 5 s after the
// first refusal, then after as long as it has waited so far, never past
// the window, and at the interval (0) once the window is over; another
// digest starts the window again, as does a release forgotten.
func TestUnsignedWait(t *testing.T) {
	var u unsignedCharts
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	window := time.Minute
	steps := []struct {
		at     time.Duration
		digest string
		want   time.Duration
	}{
		{0, "sha256:a", 5 * time.Second},
		{5 * time.Second, "sha256:a", 5 * time.Second},
		{10 * time.Second, "sha256:a", 10 * time.Second},
		{20 * time.Second, "sha256:a", 20 * time.Second},
		{40 * time.Second, "sha256:a", 20 * time.Second}, // not past the window
		{60 * time.Second, "sha256:a", 0},
		{70 * time.Second, "sha256:a", 0},
		{75 * time.Second, "sha256:b", 5 * time.Second}, // the tag moved again
	}
	for _, s := range steps {
		if got := u.wait("uid", s.digest, t0.Add(s.at), window); got != s.want {
			t.Errorf("at %s, %s: wait %s; want %s", s.at, s.digest, got, s.want)
		}
	}
	if got := u.wait("other", "sha256:b", t0.Add(75*time.Second), window); got != 5*time.Second {
		t.Errorf("another release: wait %s; want 5s (its own window)", got)
	}
	u.forget("uid")
	if got := u.wait("uid", "sha256:b", t0.Add(80*time.Second), window); got != 5*time.Second {
		t.Errorf("after forget: wait %s; want 5s", got)
	}
}
