package admission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	cpadmission "github.com/chartproof/chartproof/internal/admission"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/metrics"
)

const (
	uidA    = "11111111-1111-1111-1111-111111111111"
	uidB    = "22222222-2222-2222-2222-222222222222"
	saA     = "system:serviceaccount:team-a:deployer"
	saB     = "system:serviceaccount:team-b:deployer"
	manager = "system:serviceaccount:chartproof-system:chartproof-manager"
)

// releases: A acts as saA, B as saB; any other UID has no release.
func releases(_ context.Context, uid string) (cpadmission.Actor, bool, error) {
	switch uid {
	case uidA:
		return cpadmission.Actor{Release: types.NamespacedName{Namespace: "team-a", Name: "a"}, User: saA}, true, nil
	case uidB:
		return cpadmission.Actor{Release: types.NamespacedName{Namespace: "team-b", Name: "b"}, User: saB}, true, nil
	case "broken":
		return cpadmission.Actor{}, false, errors.New("cache not synced")
	}
	return cpadmission.Actor{}, false, nil
}

func configMap(owner string) []byte {
	cm := corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "cfg"}}
	if owner != "" {
		cm.Labels = map[string]string{chartproofv1.LabelOwner: owner}
	}
	raw, err := json.Marshal(cm)
	if err != nil {
		panic(err)
	}
	return raw
}

func user(name string, agent bool, groups ...string) authenticationv1.UserInfo {
	u := authenticationv1.UserInfo{Username: name, Groups: groups}
	if agent {
		u.Extra = map[string]authenticationv1.ExtraValue{identity.AgentExtra: {identity.AgentValue}}
	}
	return u
}

func request(op admissionv1.Operation, who authenticationv1.UserInfo, oldOwner, newOwner string) admission.Request {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "req", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Namespace: "team-a", Name: "cfg",
		Operation: op, UserInfo: who,
	}}
	if op != admissionv1.Create {
		req.OldObject = runtime.RawExtension{Raw: configMap(oldOwner)}
	}
	if op != admissionv1.Delete {
		req.Object = runtime.RawExtension{Raw: configMap(newOwner)}
	}
	return req
}

// TestOwnedObjects: who may change what a release deployed, each refusal
// with its admitted twin (the same change by the identity that may).
func TestOwnedObjects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		req    admission.Request
		reason string
	}{
		{"the release's account, chartproof acting", request(admissionv1.Update, user(saA, true), uidA, uidA), chartproofv1.ReasonChartproofActing},
		{"the release's account, its token used directly", request(admissionv1.Update, user(saA, false), uidA, uidA), chartproofv1.ReasonOwnedObjectProtected},
		{"another release's account, chartproof acting", request(admissionv1.Update, user(saB, true), uidA, uidA), chartproofv1.ReasonOwnedObjectProtected},
		{"moving an object to another release: both must be the actor's", request(admissionv1.Update, user(saB, true), uidA, uidB), chartproofv1.ReasonOwnedObjectProtected},
		{"twin: moving within the actor's own release", request(admissionv1.Update, user(saB, true), uidB, uidB), chartproofv1.ReasonChartproofActing},
		{"removing the label is a change of the release's object", request(admissionv1.Update, user("alice", false), uidA, ""), chartproofv1.ReasonOwnedObjectProtected},
		{"a forged label on a new object", request(admissionv1.Create, user("alice", false), "", uidA), chartproofv1.ReasonOwnedObjectProtected},
		{"a release that is gone", request(admissionv1.Delete, user(saA, true), "33333333-3333-3333-3333-333333333333", ""), chartproofv1.ReasonOwnedObjectProtected},
		{"the lookup failing denies", request(admissionv1.Update, user(saA, true), "broken", "broken"), chartproofv1.ReasonOwnedObjectProtected},
		{"the manager", request(admissionv1.Delete, user(manager, false), uidA, ""), chartproofv1.ReasonChartproofActing},
		{"an exempt system identity", request(admissionv1.Update, user("system:serviceaccount:kube-system:deployment-controller", false, "system:serviceaccounts:kube-system"), uidA, uidA), chartproofv1.ReasonExemptIdentity},
		{"break-glass", request(admissionv1.Update, user("oncall", false, "break-glass"), uidA, uidA), chartproofv1.ReasonBreakGlass},
		{"twin: the same user outside the group", request(admissionv1.Update, user("oncall", false, "sre"), uidA, uidA), chartproofv1.ReasonOwnedObjectProtected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := metrics.NewAdmission(reg)
			if err != nil {
				t.Fatal(err)
			}
			rec := events.NewFakeRecorder(4)
			g := &cpadmission.OwnedObjects{Releases: releases, ManagerUser: manager, ExemptUsers: cpadmission.DefaultExemptUsers,
				ExemptGroups: cpadmission.DefaultExemptGroups, BreakGlassGroups: []string{"break-glass"}, Recorder: rec, Metrics: m}
			resp := g.Handle(context.Background(), tc.req)
			if got := resp.AuditAnnotations["reason"]; got != tc.reason {
				t.Fatalf("reason %s (%s), want %s", got, resp.Result.Message, tc.reason)
			}
			wantAllowed := tc.reason != chartproofv1.ReasonOwnedObjectProtected
			if resp.Allowed != wantAllowed {
				t.Errorf("allowed %v (%s), want %v", resp.Allowed, resp.Result.Message, wantAllowed)
			}
			if !wantAllowed && (resp.Result.Code != 403 || !strings.HasPrefix(resp.Result.Message, tc.reason+": ")) {
				t.Errorf("denial %d %q; want 403 starting with the reason", resp.Result.Code, resp.Result.Message)
			}
			outcome := map[bool]string{true: metrics.AdmissionAllowed, false: metrics.AdmissionDenied}[wantAllowed]
			if n := decisions(t, reg, outcome, tc.reason); n != 1 {
				t.Errorf("decisions{%s,%s} = %v, want 1", outcome, tc.reason, n)
			}
			// Only break-glass is recorded on the release.
			if got, want := len(rec.Events), map[bool]int{true: 1, false: 0}[tc.reason == chartproofv1.ReasonBreakGlass]; got != want {
				t.Errorf("%d events, want %d", got, want)
			}
		})
	}
}

// TestBreakGlassDryRun: a dry run is decided alike and records nothing
// (sideEffects: NoneOnDryRun).
func TestBreakGlassDryRun(t *testing.T) {
	rec := events.NewFakeRecorder(4)
	g := &cpadmission.OwnedObjects{Releases: releases, BreakGlassGroups: []string{"break-glass"}, Recorder: rec}
	req := request(admissionv1.Update, user("oncall", false, "break-glass"), uidA, uidA)
	dry := true
	req.DryRun = &dry
	if resp := g.Handle(context.Background(), req); !resp.Allowed || len(rec.Events) != 0 {
		t.Errorf("allowed %v with %d events; want allowed, none recorded", resp.Allowed, len(rec.Events))
	}
}

// TestPanicDenies: a handler that panics answers with a denial, never an
// admission.
func TestPanicDenies(t *testing.T) {
	g := &cpadmission.OwnedObjects{Releases: func(context.Context, string) (cpadmission.Actor, bool, error) { panic("boom") }}
	resp := g.Webhook().Handle(context.Background(), request(admissionv1.Update, user(saA, true), uidA, uidA))
	if resp.Allowed {
		t.Errorf("a panic admitted the request: %+v", resp.Result)
	}
}

// decisions is the value of the decision counter of outcome and reason.
func decisions(t *testing.T, reg *prometheus.Registry, outcome, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == outcome && labels["reason"] == reason && labels["rule"] == cpadmission.RuleOwnedObjects {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestConcurrentReviewsKeepTheirOwn (ADM-05): 200 AdmissionReviews at once,
// each for an object of another release, through the webhook's HTTP
// handler: each answer carries its own request's UID and names its own
// release (the handler keeps no state across reviews; the release lookup is
// the only shared read). Half the requests come from each release's own
// account acting (admitted), half from another user (refused): each gets
// its own outcome.
func TestConcurrentReviewsKeepTheirOwn(t *testing.T) {
	g := &cpadmission.OwnedObjects{Releases: func(_ context.Context, uid string) (cpadmission.Actor, bool, error) {
		return cpadmission.Actor{Release: types.NamespacedName{Namespace: "ns-" + uid, Name: "release-" + uid},
			User: "system:serviceaccount:ns-" + uid + ":deployer"}, true, nil
	}}
	srv := httptest.NewServer(g.Webhook())
	defer srv.Close()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uid := fmt.Sprint(i)
			who := user("system:serviceaccount:ns-"+uid+":deployer", true)
			if i%2 == 1 {
				who = user("mallory", false)
			}
			req := request(admissionv1.Update, who, uid, uid)
			req.UID = types.UID("review-" + uid)
			body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &req.AdmissionRequest})
			if err != nil {
				errs <- err
				return
			}
			resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var out admissionv1.AdmissionReview
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				errs <- err
				return
			}
			r := out.Response
			switch {
			case r == nil || r.UID != req.UID:
				errs <- fmt.Errorf("review %s answered as %+v", req.UID, r)
			case r.Allowed != (i%2 == 0):
				errs <- fmt.Errorf("review %s: allowed %v", req.UID, r.Allowed)
			case !slices.Equal(releaseNamed.FindAllString(responseText(r), -1), []string{"ns-" + uid + "/release-" + uid}):
				errs <- fmt.Errorf("review %s does not name its own release alone: %q", req.UID, responseText(r))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

var releaseNamed = regexp.MustCompile(`ns-[0-9]+/release-[0-9]+`)

// responseText is the message of an answer: its result's, refused or not.
func responseText(r *admissionv1.AdmissionResponse) string {
	if r.Result == nil {
		return ""
	}
	return r.Result.Message
}

// podChange is an update of a Pod labelled for release A through
// subresource, by who; change edits the Pod after the update.
func podChange(t *testing.T, subresource string, who authenticationv1.UserInfo, change func(*corev1.Pod)) admission.Request {
	t.Helper()
	before := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "job", ResourceVersion: "7", UID: "pod-uid",
			Labels: map[string]string{chartproofv1.LabelOwner: uidA, "app": "job"}, Annotations: map[string]string{"note": "chart"}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app@sha256:" + strings.Repeat("a", 64)}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	after := *before.DeepCopy()
	after.ResourceVersion = ""
	after.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: subresource}}
	change(&after)
	raw := func(p corev1.Pod) []byte {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "req", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "team-a", Name: "job",
		SubResource: subresource, Operation: admissionv1.Update, UserInfo: who,
		OldObject: runtime.RawExtension{Raw: raw(before)}, Object: runtime.RawExtension{Raw: raw(after)},
	}}
}

// TestSubresources: the webhook also receives subresource requests whose
// object is the guarded one (config/webhook: "*/*"). A status update that
// changes the status alone is its controllers' to make (the kubelet here);
// one that also changes labels, annotations or the spec is judged as any
// change, and so is an ephemeral container added to a guarded Pod
// (`kubectl debug`). Each refusal has its admitted twin.
func TestSubresources(t *testing.T) {
	kubelet := user("system:node:node-1", false, "system:nodes")
	for _, tc := range []struct {
		name   string
		req    admission.Request
		reason string
	}{
		{"the kubelet reports the Pod's status", podChange(t, "status", kubelet, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
		}), chartproofv1.ReasonStatusOnly},
		{"a status request removing the owner label", podChange(t, "status", kubelet, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			delete(p.Labels, chartproofv1.LabelOwner)
		}), chartproofv1.ReasonOwnedObjectProtected},
		{"a status request relabelling the Pod", podChange(t, "status", user("alice", false), func(p *corev1.Pod) {
			p.Labels["app"] = "payments"
		}), chartproofv1.ReasonOwnedObjectProtected},
		{"a status request changing an annotation", podChange(t, "status", user("alice", false), func(p *corev1.Pod) {
			p.Annotations["note"] = "edited"
		}), chartproofv1.ReasonOwnedObjectProtected},
		{"a status request changing the spec", podChange(t, "status", user("alice", false), func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = "registry.example/evil:latest"
		}), chartproofv1.ReasonOwnedObjectProtected},
		{"twin: chartproof acting changes the labels", podChange(t, "status", user(saA, true), func(p *corev1.Pod) {
			p.Labels["app"] = "payments"
		}), chartproofv1.ReasonChartproofActing},
		{"an ephemeral container added (kubectl debug)", podChange(t, "ephemeralcontainers", user("alice", false), func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}), chartproofv1.ReasonOwnedObjectProtected},
		{"twin: an ephemeral container by break-glass", podChange(t, "ephemeralcontainers", user("oncall", false, "break-glass"), func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}), chartproofv1.ReasonBreakGlass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &cpadmission.OwnedObjects{Releases: releases, ManagerUser: manager, ExemptUsers: cpadmission.DefaultExemptUsers,
				ExemptGroups: cpadmission.DefaultExemptGroups, BreakGlassGroups: []string{"break-glass"}}
			resp := g.Handle(context.Background(), tc.req)
			if got := resp.AuditAnnotations["reason"]; got != tc.reason {
				t.Fatalf("reason %s (%s), want %s", got, resp.Result.Message, tc.reason)
			}
			if want := tc.reason != chartproofv1.ReasonOwnedObjectProtected; resp.Allowed != want {
				t.Errorf("allowed %v (%s), want %v", resp.Allowed, resp.Result.Message, want)
			}
			if !strings.Contains(resp.Result.Message, "("+tc.req.SubResource+")") {
				t.Errorf("message %q does not name the subresource", resp.Result.Message)
			}
		})
	}
}
