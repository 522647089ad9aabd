// Package admission is chartproof's second, independent layer: a validating
// webhook that refuses a change before it lands, where drift correction
// repairs it after (issue 16, docs/admission.md).
//
// It decides from memory only (the manager's cache): no registry or API
// request is made while the API server waits. Its scope is narrowed by the
// webhook configuration (config/webhook): only objects carrying the owner
// label (chartproofv1.LabelOwner) ever reach it, never kube-system, and the
// exempt system identities are filtered out by the API server itself
// (matchConditions), so nothing else is blocked by it, up or down.
package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/metrics"
)

// RuleOwnedObjects is the rule that guards what releases deployed: its
// metric label and the path it is served at (OwnedObjectsPath).
const (
	RuleOwnedObjects = "owned-objects"
	OwnedObjectsPath = "/validate-owned-objects"
)

// Default exempt identities: kube-controller-manager, under its own user or
// with a ServiceAccount of kube-system per controller. The deployment
// controller annotates Deployments, the garbage collector and the namespace
// controller delete; what they change in chartproof's fields is drift.
var (
	DefaultExemptUsers  = []string{"system:kube-controller-manager"}
	DefaultExemptGroups = []string{"system:serviceaccounts:kube-system"}
)

// Actor is the release an owner label names and the user chartproof acts
// as for it ("" for the manager's own identity).
type Actor struct {
	Release types.NamespacedName
	User    string
}

// Releases finds the Actor of an owner label's value (a release's UID) in
// memory; found is false when no release has it.
type Releases func(ctx context.Context, ownerUID string) (a Actor, found bool, err error)

// OwnedObjects guards the objects a VerifiedHelmRelease deployed and its
// Helm release records (both carry the owner label). A change is admitted
// from:
//   - the manager's own identity (ManagerUser);
//   - the release's own account while chartproof acts for it: that user,
//     with the agent extra (identity.AgentExtra), which only a principal
//     allowed to impersonate it can send — the account's token used
//     directly carries none;
//   - an exempt system identity (ExemptUsers, ExemptGroups);
//   - a member of a break-glass group, recorded (event, audit annotation,
//     metric) and then handled by drift detection.
//
// Anything else is refused with OwnedObjectProtected.
type OwnedObjects struct {
	Releases         Releases
	ManagerUser      string
	ExemptUsers      []string
	ExemptGroups     []string
	BreakGlassGroups []string
	// Recorder, when set, records break-glass changes on the release.
	Recorder events.EventRecorder
	Metrics  *metrics.Admission
}

// Handle decides one admission request.
func (g *OwnedObjects) Handle(ctx context.Context, req admission.Request) admission.Response {
	reason, msg, allowed := g.decide(ctx, req)
	resp := respond(g.Metrics, RuleOwnedObjects, reason, msg, allowed)
	if reason == chartproofv1.ReasonBreakGlass {
		resp.Warnings = []string{"break-glass change to an object chartproof deployed: recorded, and handled as drift"}
	}
	return resp
}

// respond makes a rule's answer: a denial is a 403 whose message starts
// with its reason code; either carries the decision and reason as audit
// annotations (the API server prefixes them with the webhook's name) and
// is counted.
func respond(m *metrics.Admission, rule, reason, msg string, allowed bool) admission.Response {
	outcome := metrics.AdmissionDenied
	if allowed {
		outcome = metrics.AdmissionAllowed
	}
	m.Observe(rule, outcome, reason)
	resp := admission.Allowed(msg)
	if !allowed {
		resp = admission.Denied(reason + ": " + msg)
		resp.Result.Reason = metav1.StatusReasonForbidden
	}
	resp.AuditAnnotations = map[string]string{"decision": outcome, "reason": reason}
	return resp
}

// decide returns the reason code, a message and whether req is admitted.
func (g *OwnedObjects) decide(ctx context.Context, req admission.Request) (reason, msg string, allowed bool) {
	what := describe(req)
	owners, err := ownersOf(req)
	if err != nil {
		return chartproofv1.ReasonOwnedObjectProtected, fmt.Sprintf("%s: %v", what, err), false
	}
	user := req.UserInfo
	switch {
	case len(owners) == 0:
		// The configuration sends only labelled objects; this one
		// reached the handler without the label (or with an empty one).
		return chartproofv1.ReasonNotGuarded, what + " carries no owner label", true
	case g.ManagerUser != "" && user.Username == g.ManagerUser:
		return chartproofv1.ReasonChartproofActing, what + ": chartproof's manager", true
	case slices.Contains(g.ExemptUsers, user.Username) || intersects(g.ExemptGroups, user.Groups):
		return chartproofv1.ReasonExemptIdentity, fmt.Sprintf("%s: exempt system identity %s", what, user.Username), true
	}
	if req.SubResource == "status" && req.Operation == admissionv1.Update {
		same, err := statusOnly(req)
		if err != nil {
			return chartproofv1.ReasonOwnedObjectProtected, fmt.Sprintf("%s: %v", what, err), false
		}
		if same {
			return chartproofv1.ReasonStatusOnly, what + ": its status alone changes", true
		}
	}
	actors := make([]Actor, 0, len(owners))
	for _, uid := range owners {
		a, found, err := g.Releases(ctx, uid)
		if err != nil {
			return chartproofv1.ReasonOwnedObjectProtected, fmt.Sprintf("%s: looking up the release with UID %s: %v", what, uid, err), false
		}
		if !found {
			a = Actor{Release: types.NamespacedName{Name: "(gone, UID " + uid + ")"}}
		}
		actors = append(actors, a)
	}
	if acting(user) && all(actors, func(a Actor) bool { return a.User != "" && a.User == user.Username }) {
		return chartproofv1.ReasonChartproofActing, fmt.Sprintf("%s: chartproof acting for %s as %s", what, releases(actors), user.Username), true
	}
	if intersects(g.BreakGlassGroups, user.Groups) {
		if !isDryRun(req) {
			g.record(actors, fmt.Sprintf("break-glass: %s %s by %s (groups %s)", strings.ToLower(string(req.Operation)), what, user.Username, strings.Join(user.Groups, ",")))
		}
		return chartproofv1.ReasonBreakGlass, fmt.Sprintf("%s: break-glass change by %s, recorded on %s", what, user.Username, releases(actors)), true
	}
	return chartproofv1.ReasonOwnedObjectProtected, fmt.Sprintf("%s was deployed by VerifiedHelmRelease %s; only chartproof acting for it may %s it, not %s (change the release's chart or values instead)",
		what, releases(actors), strings.ToLower(string(req.Operation)), user.Username), false
}

// record puts a Warning event on each release that exists.
func (g *OwnedObjects) record(actors []Actor, note string) {
	if g.Recorder == nil {
		return
	}
	for _, a := range actors {
		if a.Release.Namespace == "" {
			continue
		}
		ref := &corev1.ObjectReference{
			APIVersion: chartproofv1.GroupVersion.String(), Kind: "VerifiedHelmRelease",
			Namespace: a.Release.Namespace, Name: a.Release.Name,
		}
		g.Recorder.Eventf(ref, nil, corev1.EventTypeWarning, chartproofv1.ReasonBreakGlass, "Admission", "%s", note)
	}
}

// ownersOf returns the owner labels of the object before and after the
// change, distinct: an update that moves an object to another release must
// be allowed for both.
func ownersOf(req admission.Request) ([]string, error) {
	var out []string
	for _, raw := range []([]byte){req.OldObject.Raw, req.Object.Raw} {
		if len(raw) == 0 {
			continue
		}
		var o struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("reading the object's labels: %w", err)
		}
		if uid := o.Metadata.Labels[chartproofv1.LabelOwner]; uid != "" && !slices.Contains(out, uid) {
			out = append(out, uid)
		}
	}
	return out, nil
}

// acting reports whether user carries the agent extra: chartproof
// impersonates it.
func acting(user authenticationv1.UserInfo) bool {
	return slices.Contains(user.Extra[identity.AgentExtra], identity.AgentValue)
}

func describe(req admission.Request) string {
	what := req.Kind.Kind + " " + req.Name
	if req.Namespace != "" {
		what = fmt.Sprintf("%s %s/%s", req.Kind.Kind, req.Namespace, req.Name)
	}
	if req.SubResource != "" {
		what += " (" + req.SubResource + ")"
	}
	return what
}

// statusOnly reports whether an update through the status subresource
// leaves everything but the status as it was: the object before and after,
// without their status and the fields the API server itself sets on every
// write. Status is what the object's controllers report (a Pod's kubelet,
// an Ingress controller); its metadata is not theirs to change, and some
// kinds (Pods, Services) let a status request change labels and
// annotations too.
func statusOnly(req admission.Request) (bool, error) {
	var before, after map[string]any
	if err := json.Unmarshal(req.OldObject.Raw, &before); err != nil {
		return false, fmt.Errorf("reading the object before the change: %w", err)
	}
	if err := json.Unmarshal(req.Object.Raw, &after); err != nil {
		return false, fmt.Errorf("reading the object after the change: %w", err)
	}
	for _, o := range []map[string]any{before, after} {
		delete(o, "status")
		if meta, ok := o["metadata"].(map[string]any); ok {
			for _, f := range []string{"resourceVersion", "managedFields", "generation"} {
				delete(meta, f)
			}
		}
	}
	return reflect.DeepEqual(before, after), nil
}

func releases(actors []Actor) string {
	names := make([]string, len(actors))
	for i, a := range actors {
		names[i] = strings.TrimPrefix(a.Release.String(), "/")
	}
	return strings.Join(names, " and ")
}

func isDryRun(req admission.Request) bool { return req.DryRun != nil && *req.DryRun }

func intersects(a, b []string) bool {
	return slices.ContainsFunc(a, func(s string) bool { return slices.Contains(b, s) })
}

func all[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if !f(v) {
			return false
		}
	}
	return true
}

// Webhook returns the handler served at OwnedObjectsPath: panics are
// recovered into a denial, and controller-runtime caps the request body
// (7 MiB: an object of etcd's 1.5 MiB default limit, before and after, with
// room to spare).
func (g *OwnedObjects) Webhook() *admission.Webhook {
	return (&admission.Webhook{Handler: g}).WithRecoverPanic(true)
}
