// Package drift compares the objects a release deployed with what its
// verified rendering says they must be, and restores them.
//
// The comparison is the API server's own: the desired object is applied
// server-side as a dry run, under chartproof's field manager and with
// force, so that defaults, conversions and admission are those a real
// correction would meet; the dry-run result is compared with the live
// object (github.com/fluxcd/pkg/ssa's jsondiff and normalize, as Flux's
// helm-controller does). That finds every field the chart sets that was
// edited or removed, and deleted objects. Unlike Flux, it also finds what
// another writer added (a sidecar container, an env var, a ConfigMap key):
// after the forced dry run, every field the chart sets is chartproof's, so
// the fields the managedFields of the result still give to another manager
// are exactly those the chart does not set. They are drift, except under the
// object's top-level metadata and status (controllers routinely add labels,
// annotations, finalizers and status) and in the fields webhooks and CA
// injectors fill in (caBundle).
//
// Reports name objects, paths and managers, never values, so a Secret's
// content never reaches a condition, an event or a log. A correction writes
// only the desired objects (values of the verified rendering), never a value
// read back from the cluster: it removes what other writers added (an update
// guarded by the live resourceVersion), then applies the desired object
// server-side with force.
//
// Nothing here decides whether to correct: the caller does, from the
// release's mode. Every call runs with the client it is given, which for a
// release impersonates its ServiceAccount.
package drift
