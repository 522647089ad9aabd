package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/drift"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/release"
)

const (
	// conflictCorrections is how many corrections of one field within
	// conflictWindow make the next drift of it a conflict: the field is no
	// longer corrected.
	conflictCorrections = 2
	// conflictWindow is how long corrections are remembered, and how long
	// a field in conflict is first left alone when nothing else changes
	// (doubled at each new conflict over it, up to a day).
	conflictWindow = 10 * time.Minute
	// maxDriftListed bounds the changes a condition or event names.
	maxDriftListed = 8
)

// driftMode is the release's drift detection mode.
func driftMode(obj *chartproofv1.VerifiedHelmRelease) string {
	if d := obj.Spec.DriftDetection; d != nil && d.Mode != "" {
		return d.Mode
	}
	return chartproofv1.DriftCorrect
}

// driftRules are the release's ignore rules.
func driftRules(obj *chartproofv1.VerifiedHelmRelease) []drift.Rule {
	d := obj.Spec.DriftDetection
	if d == nil {
		return nil
	}
	rules := make([]drift.Rule, 0, len(d.Ignore))
	for _, ig := range d.Ignore {
		r := drift.Rule{Paths: ig.Paths}
		if t := ig.Target; t != nil {
			r.Group, r.Kind, r.Name, r.Namespace = t.Group, t.Kind, t.Name, t.Namespace
		}
		rules = append(rules, r)
	}
	return rules
}

// checkDrift compares what the installed release deployed with the
// rendering in its record (the caller checked that the record is the one
// chartproof wrote) and, in Correct mode and when mayCorrect (the installed
// chart still verifies), restores it; it writes the Drifted condition. It
// reports whether to look again soon (a check or a correction failed).
func (r *VerifiedHelmReleaseReconciler) checkDrift(ctx context.Context, obj *chartproofv1.VerifiedHelmRelease, acct *identity.Account, rel *helmrelease.Release, mayCorrect bool) bool {
	mode := driftMode(obj)
	warnOnly := "drift left in place (Warn): "
	if mode == chartproofv1.DriftCorrect && !mayCorrect {
		mode, warnOnly = chartproofv1.DriftWarn, "drift left in place (the installed chart no longer verifies, so it is not applied again): "
	}
	uid := obj.UID
	if mode == chartproofv1.DriftDisabled {
		apimeta.RemoveStatusCondition(&obj.Status.Conditions, chartproofv1.ConditionDrifted)
		r.drift().forget(uid)
		return false
	}
	state := r.drift()
	inst := obj.Status.Installed
	key := fmt.Sprintf("%d/%s/%d/%s", obj.Generation, inst.Digest, inst.Revision, inst.ConfigDigest)
	now := r.now()
	// A reconcile that a change of trust queued re-verifies; it does not
	// compare the objects again when the last comparison of the same
	// release found them intact while their watches ran, nothing woke the
	// release since, and the interval's own check is not due (a thousand
	// releases under a revoked signer are marked in seconds, not after a
	// thousand dry-run applies).
	if r.queuedByTrustChange(uid) && state.stillIntact(uid, key, now, releaseInterval(obj)/2) {
		return false
	}
	watched := false
	desired, err := drift.Desired(rel.Manifest, rel.Name, rel.Namespace, func(u *unstructured.Unstructured) (bool, error) {
		return acct.Client.IsObjectNamespaced(u)
	})
	if err == nil {
		// The CRDs the action that wrote this record replaced
		// (CreateReplace), as its record says, whatever the spec says
		// now: chartproof's to keep so. With Create, a CRD that existed is
		// not the chart's to judge; with Skip, none is.
		var crds []*unstructured.Unstructured
		crds, err = release.ReplacedCRDs(rel.Chart, release.Stamp{Release: obj.Namespace + "/" + obj.Name, Digest: inst.Digest, Owner: string(uid)})
		desired = append(desired, crds...)
	}
	if err != nil {
		log.FromContext(ctx).Error(err, "reading the release's rendering")
		r.setCondition(obj, chartproofv1.ConditionDrifted, metav1.ConditionUnknown, chartproofv1.ReasonDriftCheckFailed,
			"the release's rendering in its Helm record could not be read; the manager's log has the whole error")
		return true
	}
	if r.ObjectWatches != nil {
		if err := r.ObjectWatches.ensure(kindsOf(desired)); err != nil {
			// The interval still checks; the watch is tried again next time.
			log.FromContext(ctx).Error(err, "watching the objects of a release")
		} else {
			// Objects without the owner label (a release installed before
			// chartproof labelled them) are not seen by the watch.
			watched = !ownerUnlabelled(rel.Manifest)
		}
	}

	woken := state.woken(uid)
	var opts drift.Options
	detect := func() ([]drift.Object, error) {
		// Fields in conflict are ignored, by the check and by the
		// correction alike.
		held := state.held(uid, key, now)
		opts = drift.Options{FieldManager: release.FieldManager, Ignore: append(driftRules(obj), held.rules()...), Created: state.created}
		return drift.Detect(ctx, acct.Client, held.filter(desired), opts)
	}
	// An object that cannot be compared is reported; the others are still
	// judged and corrected.
	drifted, checkErr := detect()
	if len(drifted) > 0 && !woken.IsZero() {
		r.DriftMetrics.Detected(now.Sub(woken))
	}
	if mode == chartproofv1.DriftCorrect {
		if started := state.fighting(uid, key, drifted, now); len(started) > 0 {
			// A field another writer keeps undoing is left to it from now on.
			for _, c := range started {
				r.DriftMetrics.Found(c.kind, metrics.DriftConflict)
			}
			msg := describeConflicts(started)
			log.FromContext(ctx).Info("drift conflict: " + msg)
			r.event(obj, "Warning", chartproofv1.ReasonDriftConflict, msg)
			drifted, checkErr = detect()
		}
	}
	conflicts := state.conflicts(uid, key, now)

	var (
		corrected  []drift.Object
		correctErr error
		report     string // what the Warn mode leaves in place
	)
	switch {
	case len(drifted) == 0:
	case mode == chartproofv1.DriftWarn:
		report = warnOnly + describeDrift(drifted)
		// The same drift, still there at the next reconcile, is counted
		// and announced once.
		if state.reported(uid, report) {
			for _, o := range drifted {
				r.DriftMetrics.Found(o.Desired.GetKind(), metrics.DriftReported)
			}
			r.event(obj, "Warning", chartproofv1.ReasonDriftDetected, report)
		}
	default:
		corrected, correctErr = drift.Correct(ctx, acct.Client, drifted, opts)
		state.corrected(uid, key, corrected, r.now())
		for _, o := range corrected {
			r.DriftMetrics.Found(o.Desired.GetKind(), metrics.DriftCorrected)
		}
		for range len(drifted) - len(corrected) {
			r.DriftMetrics.Found("", metrics.DriftFailed)
		}
		if len(corrected) > 0 {
			if !woken.IsZero() {
				r.DriftMetrics.Corrected(r.now().Sub(woken))
			}
			r.event(obj, "Warning", chartproofv1.ReasonDriftCorrected, "drift corrected: "+describeDrift(corrected))
		}
	}

	if report == "" {
		state.reported(uid, "")
	}
	// Intact: compared with nothing found, corrected or held.
	state.checked(uid, key, now, watched && checkErr == nil && correctErr == nil && len(drifted) == 0 && len(conflicts) == 0)
	if err := errors.Join(checkErr, correctErr); err != nil {
		log.FromContext(ctx).Error(err, "drift check or correction failed")
		msg := "drift not checked or not corrected: " + driftFailure(err)
		if report != "" {
			msg = report + "; " + msg
		}
		if len(corrected) > 0 {
			msg = "drift corrected: " + describeDrift(corrected) + "; " + msg
		}
		status := metav1.ConditionUnknown
		if report != "" || correctErr != nil {
			status = metav1.ConditionTrue // drift is known to be there
		}
		r.setCondition(obj, chartproofv1.ConditionDrifted, status, chartproofv1.ReasonDriftCheckFailed, bounded(msg, maxConditionMessage))
		return true
	}
	switch {
	case report != "":
		r.setCondition(obj, chartproofv1.ConditionDrifted, metav1.ConditionTrue, chartproofv1.ReasonDriftDetected, report)
	case len(conflicts) > 0:
		r.setCondition(obj, chartproofv1.ConditionDrifted, metav1.ConditionTrue, chartproofv1.ReasonDriftConflict, describeConflicts(conflicts))
	case len(corrected) > 0:
		r.setCondition(obj, chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonDriftCorrected, "drift corrected: "+describeDrift(corrected))
	default:
		r.setCondition(obj, chartproofv1.ConditionDrifted, metav1.ConditionFalse, chartproofv1.ReasonNoDrift,
			fmt.Sprintf("the %d objects of the release match the verified rendering", len(desired)))
	}
	return false
}

// kindsOf lists the kinds of objs, each once.
func kindsOf(objs []*unstructured.Unstructured) []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, o := range objs {
		if gvk := o.GroupVersionKind(); !slices.Contains(out, gvk) {
			out = append(out, gvk)
		}
	}
	return out
}

// describeDrift names the drifted objects and fields, never a value, at
// most maxDriftListed of them.
func describeDrift(objs []drift.Object) string {
	var parts []string
	for _, o := range objs {
		for _, c := range o.Changes {
			var s string
			switch c.Type {
			case drift.Missing:
				s = o.ID() + " deleted"
			case drift.Added:
				s = fmt.Sprintf("%s %s added by %s", o.ID(), c.Path, orUnknown(c.Manager))
			default:
				s = fmt.Sprintf("%s %s changed", o.ID(), c.Path)
				if c.Manager != "" {
					s += " by " + c.Manager
				}
			}
			parts = append(parts, s)
		}
	}
	return list(parts)
}

func describeConflicts(cs []conflict) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s undone again by %s", c.object, orWhole(c.path), orUnknown(c.manager)))
	}
	return fmt.Sprintf("another writer keeps undoing chartproof's corrections; not corrected until the release changes or %s pass: %s",
		conflictWindow, list(parts))
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown writer"
	}
	return s
}

func orWhole(path string) string {
	if path == "" {
		return "(deleted)"
	}
	return path
}

// list joins parts, naming at most maxDriftListed.
func list(parts []string) string {
	if len(parts) <= maxDriftListed {
		return strings.Join(parts, "; ")
	}
	return strings.Join(parts[:maxDriftListed], "; ") + fmt.Sprintf("; and %d more", len(parts)-maxDriftListed)
}

// driftState is what the manager remembers of releases' drift between
// reconciles: when a watch event last woke each one, and the corrections of
// each field, so that it stops fighting another writer.
type driftState struct {
	// created keeps what the API server creates from each desired object
	// (defaults), shared by all releases.
	created *drift.CreatedCache

	mu       sync.Mutex
	wakes    map[types.UID]time.Time
	releases map[types.UID]*fights
	// intact holds, for each release whose objects were last found intact
	// while watched, that comparison's key and time.
	intact map[types.UID]intactCheck
	// reports holds what was last reported and left in place for each
	// release (Warn), so that it is counted and announced once. It is kept
	// here, not read back from status: the cache may not hold the last
	// reconcile's status yet when the next one runs.
	reports map[types.UID]string
}

type intactCheck struct {
	key string
	at  time.Time
}

// fights are the corrections of one release while it stays the same
// (key: generation, digest, revision and values).
type fights struct {
	key    string
	fields map[string]*fight // by fieldKey
}

type fight struct {
	object, path, manager string
	group, kind           string
	corrections           []time.Time
	heldSince             time.Time
	holds                 int // how many times the field was left to the other writer
}

// holdFor is how long the field is left alone: conflictWindow, doubled at
// each new conflict over the same field, up to a day.
func (f *fight) holdFor() time.Duration {
	return min(conflictWindow<<min(max(f.holds-1, 0), 7), 24*time.Hour)
}

// fieldKey names a field of an object across kinds and groups.
func fieldKey(group, object, path string) string {
	return group + "/" + object + " " + path
}

// conflict is a field left to another writer.
type conflict struct {
	object, path, manager, kind string
}

func (r *VerifiedHelmReleaseReconciler) drift() *driftState {
	r.driftOnce.Do(func() {
		r.driftState = &driftState{created: drift.NewCreatedCache(4096), wakes: map[types.UID]time.Time{},
			releases: map[types.UID]*fights{}, reports: map[types.UID]string{}, intact: map[types.UID]intactCheck{}}
	})
	return r.driftState
}

// wake records that a watch event woke release uid at t, unless an earlier
// event did and it has not been checked since.
func (s *driftState) wake(uid types.UID, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.wakes[uid]; !ok {
		s.wakes[uid] = t
	}
}

// woken returns and forgets when a watch event woke uid (zero if none did).
func (s *driftState) woken(uid types.UID) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.wakes[uid]
	delete(s.wakes, uid)
	return t
}

// checked records the comparison of uid's objects under key at now:
// intact, or not (drift found, a conflict held, a check that failed, or
// objects not watched).
func (s *driftState) checked(uid types.UID, key string, now time.Time, intact bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if intact {
		s.intact[uid] = intactCheck{key: key, at: now}
	} else {
		delete(s.intact, uid)
	}
}

// stillIntact reports whether uid's objects were found intact under key
// less than maxAge before now, and no watch event woke it since.
func (s *driftState) stillIntact(uid types.UID, key string, now time.Time, maxAge time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.intact[uid]
	_, woken := s.wakes[uid]
	return ok && !woken && c.key == key && !now.Before(c.at) && now.Sub(c.at) < maxAge
}

// compareDue is how long until uid's objects must be compared again: an
// interval after the last comparison that found them intact, which a
// skipped comparison does not push back; interval when there is none.
func (s *driftState) compareDue(uid types.UID, now time.Time, interval time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.intact[uid]
	if !ok {
		return interval
	}
	return max(c.at.Add(interval).Sub(now), time.Second)
}

func (s *driftState) forget(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.intact, uid)
	delete(s.wakes, uid)
	delete(s.releases, uid)
	delete(s.reports, uid)
}

// reported records that report is what release uid leaves in place now
// ("" for nothing), and reports whether it is news: not what was reported
// last.
func (s *driftState) reported(uid types.UID, report string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if report == "" {
		delete(s.reports, uid)
		return false
	}
	news := s.reports[uid] != report
	s.reports[uid] = report
	return news
}

// of returns the fights of uid for key, starting afresh when key changed.
// s.mu is held.
func (s *driftState) of(uid types.UID, key string) *fights {
	f := s.releases[uid]
	if f == nil || f.key != key {
		f = &fights{key: key, fields: map[string]*fight{}}
		s.releases[uid] = f
	}
	return f
}

// held are the fields of uid left to another writer at now.
type heldFields map[string]*fight

func (s *driftState) held(uid types.UID, key string, now time.Time) heldFields {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := heldFields{}
	for k, f := range s.of(uid, key).fields {
		if !f.heldSince.IsZero() && now.Sub(f.heldSince) < f.holdFor() {
			out[k] = f
		}
	}
	return out
}

// rules are ignore rules for the held fields of objects that exist.
func (h heldFields) rules() []drift.Rule {
	var rules []drift.Rule
	for _, f := range h {
		if f.path == "" {
			continue
		}
		_, name, _ := strings.Cut(f.object, " ")
		ns, n, ok := strings.Cut(name, "/")
		if !ok {
			ns, n = "", name
		}
		rules = append(rules, drift.Rule{Paths: []string{f.path}, Group: &f.group, Kind: f.kind, Name: n, Namespace: ns})
	}
	return rules
}

// filter drops the objects held whole (deleted again and again).
func (h heldFields) filter(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if _, whole := h[fieldKey(o.GroupVersionKind().Group, drift.ID(o), "")]; !whole {
			out = append(out, o)
		}
	}
	return out
}

// fighting marks as held every drifted field already corrected
// conflictCorrections times within conflictWindow, and returns them.
func (s *driftState) fighting(uid types.UID, key string, drifted []drift.Object, now time.Time) []conflict {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.of(uid, key)
	var marked []conflict
	for _, o := range drifted {
		for _, c := range o.Changes {
			f := fs.fields[fieldKey(o.Desired.GroupVersionKind().Group, o.ID(), c.Path)]
			if f == nil {
				continue
			}
			f.corrections = slices.DeleteFunc(f.corrections, func(t time.Time) bool { return now.Sub(t) >= conflictWindow })
			if len(f.corrections) >= conflictCorrections {
				f.heldSince, f.manager, f.corrections = now, c.Manager, nil
				f.holds++
				marked = append(marked, conflict{object: f.object, path: f.path, manager: f.manager, kind: f.kind})
			}
		}
	}
	return marked
}

// corrected records a correction of every drifted field at now.
func (s *driftState) corrected(uid types.UID, key string, drifted []drift.Object, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.of(uid, key)
	// Fields neither corrected lately nor held are forgotten.
	maps.DeleteFunc(fs.fields, func(_ string, f *fight) bool {
		recent := slices.ContainsFunc(f.corrections, func(t time.Time) bool { return now.Sub(t) < conflictWindow })
		return !recent && (f.heldSince.IsZero() || now.Sub(f.heldSince) >= f.holdFor())
	})
	for _, o := range drifted {
		gvk := o.Desired.GroupVersionKind()
		for _, c := range o.Changes {
			k := fieldKey(gvk.Group, o.ID(), c.Path)
			f := fs.fields[k]
			if f == nil {
				f = &fight{object: o.ID(), path: c.Path, group: gvk.Group, kind: gvk.Kind}
				fs.fields[k] = f
			}
			f.corrections = append(f.corrections, now)
			f.manager = c.Manager
		}
	}
}

// conflicts lists the fields of uid held at now, in a stable order.
func (s *driftState) conflicts(uid types.UID, key string, now time.Time) []conflict {
	var out []conflict
	for _, f := range s.held(uid, key, now) {
		out = append(out, conflict{object: f.object, path: f.path, manager: f.manager, kind: f.kind})
	}
	slices.SortFunc(out, func(a, b conflict) int { return strings.Compare(a.object+" "+a.path, b.object+" "+b.path) })
	return out
}
