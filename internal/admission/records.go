package admission

import (
	"context"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/metrics"
)

// The Helm-records rule: its metric label, the path it is served at, and
// the namespace label that turns it on.
const (
	RuleHelmRecords  = "helm-records"
	HelmRecordsPath  = "/validate-helm-records"
	LabelEnforce     = "delivery.chartproof.dev/enforce"
	helmRecordsOwner = "helm" // the owner label Helm's storage drivers put on every record
)

// HelmRecords refuses, in namespaces labelled for enforcement
// (LabelEnforce=true), a Helm release record (a Secret or ConfigMap labelled
// owner=helm, as Helm's storage drivers write them) that does not carry
// chartproof's owner label: a plain `helm install` or `helm upgrade` of a
// chart chartproof did not verify. Helm writes its record before any object
// of the chart, so the install stops before anything exists. A record that
// carries the owner label is judged by OwnedObjects (both webhooks run), so
// forging the label with `helm install --labels` is refused there.
//
// config/webhook scopes it (namespaceSelector, objectSelector on owner=helm,
// CREATE and UPDATE of secrets and configmaps); config/webhook's
// ValidatingAdmissionPolicy holds the same rule inside the API server while
// the webhook is down.
type HelmRecords struct {
	Metrics *metrics.Admission
}

// Handle decides one admission request.
func (h *HelmRecords) Handle(_ context.Context, req admission.Request) admission.Response {
	reason, msg, allowed := h.decide(req)
	return respond(h.Metrics, RuleHelmRecords, reason, msg, allowed)
}

func (h *HelmRecords) decide(req admission.Request) (reason, msg string, allowed bool) {
	what := describe(req)
	var o struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(req.Object.Raw, &o); err != nil {
		return chartproofv1.ReasonUnmanagedHelmRecord, fmt.Sprintf("%s: reading the record's labels: %v", what, err), false
	}
	labels := o.Metadata.Labels
	switch {
	case labels["owner"] != helmRecordsOwner:
		return chartproofv1.ReasonNotGuarded, what + " is not a Helm release record", true
	case labels[chartproofv1.LabelOwner] != "":
		return chartproofv1.ReasonChartproofActing, what + ": a record of a VerifiedHelmRelease (judged by the owned-objects rule)", true
	}
	return chartproofv1.ReasonUnmanagedHelmRecord, fmt.Sprintf("%s is the record of Helm release %q written by %s, not by chartproof: namespace %s is labelled %s=true, where only VerifiedHelmReleases install charts (install this chart with a VerifiedHelmRelease)",
		what, labels["name"], req.UserInfo.Username, req.Namespace, LabelEnforce), false
}

// Webhook returns the handler served at HelmRecordsPath, panics recovered
// into a denial.
func (h *HelmRecords) Webhook() *admission.Webhook {
	return (&admission.Webhook{Handler: h}).WithRecoverPanic(true)
}
