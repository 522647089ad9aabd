package controllers

import (
	"strings"
	"sync"
	"time"

	"github.com/chartproof/chartproof/internal/gate"
)

// compiledTTL bounds how long a compiled policy is used without reading its
// Secrets and ConfigMaps again, even when their watches say nothing changed
// (a watch that lost its connection says nothing either).
const compiledTTL = time.Minute

// compiledPolicies keeps the last compiled form of each policy, keyed by
// everything it was compiled from: the policy's kind, namespace, name, UID
// and resourceVersion, and the resourceVersion of every Secret and ConfigMap
// it reads as SourceWatches last saw them. A change to any of them misses at
// once, before its event re-queues the releases; so a reconcile that follows
// a trust change compiles the policy afresh, and the thousand releases that
// share the policy compile it once, not each reading its Secrets again.
// Only a policy that compiled is kept. Safe for concurrent use.
type compiledPolicies struct {
	mu      sync.Mutex
	entries map[string]compiledPolicy // by policy ref
}

type compiledPolicy struct {
	key   string
	judge gate.Judge
	at    time.Time
}

// compiledKey is the key of a policy compiled from the object at
// resourceVersion whose trust material is at versions.
func compiledKey(resourceVersion string, versions []string) string {
	return resourceVersion + "|" + strings.Join(versions, ",")
}

// get returns the judge compiled for ref under key, when it is younger than
// compiledTTL at now.
func (c *compiledPolicies) get(ref, key string, now time.Time) (gate.Judge, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[ref]
	if !ok || e.key != key || now.Sub(e.at) >= compiledTTL || now.Before(e.at) {
		return gate.Judge{}, false
	}
	return e.judge, true
}

// put keeps judge as ref's compiled form under key, replacing any other,
// and drops the entries that expired.
func (c *compiledPolicies) put(ref, key string, judge gate.Judge, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]compiledPolicy{}
	}
	for r, e := range c.entries {
		if now.Sub(e.at) >= compiledTTL {
			delete(c.entries, r)
		}
	}
	c.entries[ref] = compiledPolicy{key: key, judge: judge, at: now}
}
