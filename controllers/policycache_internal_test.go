package controllers

import (
	"testing"
	"time"

	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/policy"
)

// TestCompiledPolicies: a compiled policy is reused only under the key it
// was compiled with (the policy's and its trust sources' versions), and
// never longer than compiledTTL.
func TestCompiledPolicies(t *testing.T) {
	var c compiledPolicies
	t0 := time.Unix(1_000_000, 0)
	judge := gate.Judge{Policy: &policy.Policy{Fingerprint: "first"}}
	key := compiledKey("uid@10", []string{"7", ""})
	c.put("ClusterTrustPolicy scale", key, judge, t0)

	cases := []struct {
		name, ref, key string
		at             time.Time
		hit            bool
	}{
		{"same policy, same versions", "ClusterTrustPolicy scale", key, t0.Add(compiledTTL - time.Second), true},
		{"the policy changed", "ClusterTrustPolicy scale", compiledKey("uid@11", []string{"7", ""}), t0, false},
		{"a Secret it reads changed", "ClusterTrustPolicy scale", compiledKey("uid@10", []string{"8", ""}), t0, false},
		{"a Secret it reads appeared", "ClusterTrustPolicy scale", compiledKey("uid@10", []string{"7", "9"}), t0, false},
		{"another policy", "ClusterTrustPolicy other", key, t0, false},
		{"expired", "ClusterTrustPolicy scale", key, t0.Add(compiledTTL), false},
		{"a clock that went back", "ClusterTrustPolicy scale", key, t0.Add(-time.Second), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := c.get(tc.ref, tc.key, tc.at)
			if ok != tc.hit {
				t.Fatalf("hit = %v; want %v", ok, tc.hit)
			}
			if ok && got.Policy.Fingerprint != "first" {
				t.Fatalf("got %q; want the judge put", got.Policy.Fingerprint)
			}
		})
	}

	// A newer compilation replaces the entry; expired entries of other
	// policies are dropped as it is put.
	c.put("ClusterTrustPolicy gone", key, judge, t0)
	later := t0.Add(compiledTTL)
	c.put("ClusterTrustPolicy scale", compiledKey("uid@11", nil), gate.Judge{Policy: &policy.Policy{Fingerprint: "second"}}, later)
	if _, ok := c.get("ClusterTrustPolicy scale", key, later); ok {
		t.Fatal("the old key still hits after a newer compilation")
	}
	if got, ok := c.get("ClusterTrustPolicy scale", compiledKey("uid@11", nil), later); !ok || got.Policy.Fingerprint != "second" {
		t.Fatalf("newer compilation: %v, %v", got.Policy, ok)
	}
	if len(c.entries) != 1 {
		t.Fatalf("%d entries; want 1 (the expired ones dropped)", len(c.entries))
	}
}
