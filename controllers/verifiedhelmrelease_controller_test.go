package controllers_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"
	dto "github.com/prometheus/client_model/go"
	"helm.sh/helm/v3/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

const waitTimeout = 60 * time.Second

// fixture is one test's chart repository, key and namespace.
type fixture struct {
	t    *testing.T
	ns   string
	repo string // path in the registry
	key  *testsign.Key
	reg  testsign.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	return &fixture{t: t, ns: ns, repo: "charts/" + ns + "/hello", key: key, reg: testsign.Registry{Host: regHost}}
}

func (f *fixture) url() string { return "oci://" + f.reg.Host + "/" + f.repo }

// useRegistry moves the fixture to another registry (TLS, authentication, a
// hostile handler), with its chart at charts/hello there.
func (f *fixture) useRegistry(reg testsign.Registry) {
	f.reg, f.repo = reg, "charts/hello"
}

// push pushes chart hello at version and returns its digest.
func (f *fixture) push(version string) string {
	f.t.Helper()
	archive, err := testchart.Archive("hello", version)
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := f.reg.PushChart(f.repo, version, archive, "hello", version)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) signLegacy(digest string, k *testsign.Key) {
	f.t.Helper()
	if err := f.reg.SignLegacy(f.repo, digest, digest, k); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) signBundle(digest string, k *testsign.Key, fallbackTag bool) {
	f.t.Helper()
	b, err := testsign.Bundle(testsign.Statement(regHost+"/"+f.repo, digest), k)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.reg.AttachBundle(f.repo, digest, b, fallbackTag); err != nil {
		f.t.Fatal(err)
	}
}

// policy creates a TrustPolicy trusting key for this fixture's repository.
func (f *fixture) policy(name string, key *testsign.Key, mode chartproofv1.Mode, repos ...string) {
	f.t.Helper()
	if len(repos) == 0 {
		repos = []string{regHost + "/charts/" + f.ns + "/*"}
	}
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: repos,
			Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: key.PublicPEM()}}},
			Mode:         mode,
		},
	}
	if err := k8s.Create(context.Background(), tp); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) release(name, version, policyName string, mut ...func(*chartproofv1.VerifiedHelmRelease)) *chartproofv1.VerifiedHelmRelease {
	f.t.Helper()
	vhr := &chartproofv1.VerifiedHelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: chartproofv1.VerifiedHelmReleaseSpec{
			Chart:              chartproofv1.ChartSource{URL: f.url(), Version: version, Insecure: true},
			TrustPolicyRef:     chartproofv1.TrustPolicyReference{Kind: "TrustPolicy", Name: policyName},
			ServiceAccountName: testServiceAccount,
		},
	}
	for _, m := range mut {
		m(vhr)
	}
	if err := k8s.Create(context.Background(), vhr); err != nil {
		f.t.Fatal(err)
	}
	return vhr
}

func (f *fixture) get(name string) *chartproofv1.VerifiedHelmRelease {
	f.t.Helper()
	var vhr chartproofv1.VerifiedHelmRelease
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &vhr); err != nil {
		f.t.Fatal(err)
	}
	return &vhr
}

// waitCondition waits until the release's condition has status and reason
// for its current generation.
func (f *fixture) waitCondition(name, condType string, status metav1.ConditionStatus, reason string) *chartproofv1.VerifiedHelmRelease {
	f.t.Helper()
	var vhr *chartproofv1.VerifiedHelmRelease
	waitFor(f.t, waitTimeout, fmt.Sprintf("%s %s=%s reason %s", name, condType, status, reason), func() (bool, string) {
		vhr = f.get(name)
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, condType)
		if c == nil {
			return false, fmt.Sprintf("no %s condition; conditions %+v", condType, vhr.Status.Conditions)
		}
		return c.Status == status && c.Reason == reason && c.ObservedGeneration == vhr.Generation,
			fmt.Sprintf("%s=%s reason %s: %s", condType, c.Status, c.Reason, c.Message)
	})
	return vhr
}

// waitReady waits until the release is Ready at Helm revision rev, and an
// event with reason (InstallSucceeded, UpgradeSucceeded) says how it got
// there. Ready's own reason may already have moved on to ReleaseUpToDate
// when another reconcile ran in between (a policy event, the interval).
func (f *fixture) waitReady(name string, rev int, reason string) *chartproofv1.VerifiedHelmRelease {
	f.t.Helper()
	var vhr *chartproofv1.VerifiedHelmRelease
	waitFor(f.t, waitTimeout, fmt.Sprintf("%s Ready=True at revision %d", name, rev), func() (bool, string) {
		vhr = f.get(name)
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		if c == nil || vhr.Status.Installed == nil {
			return false, fmt.Sprintf("conditions %+v installed %+v", vhr.Status.Conditions, vhr.Status.Installed)
		}
		return c.Status == metav1.ConditionTrue && vhr.Status.Installed.Revision == rev && c.ObservedGeneration == vhr.Generation,
			fmt.Sprintf("Ready=%s %s: %s; revision %d", c.Status, c.Reason, c.Message, vhr.Status.Installed.Revision)
	})
	f.waitEvent(name, reason)
	return vhr
}

// waitEvent waits for an event with reason about the release.
func (f *fixture) waitEvent(name, reason string) {
	f.t.Helper()
	waitFor(f.t, waitTimeout, fmt.Sprintf("a %s event for %s", reason, name), func() (bool, string) {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(f.ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Regarding.Name == name && e.Reason == reason {
				return true, ""
			}
			seen = append(seen, e.Reason)
		}
		return false, fmt.Sprintf("events %v", seen)
	})
}

// configMap returns the chart's ConfigMap of release name, or nil.
func (f *fixture) configMap(releaseName string) *corev1.ConfigMap {
	f.t.Helper()
	var cm corev1.ConfigMap
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: releaseName + "-hello"}, &cm)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return &cm
}

// assertInstalled checks the cluster: Helm's List shows the release, and
// every object the chart made carries the stamp of this release and digest.
func (f *fixture) assertInstalled(releaseName, digest string) {
	f.t.Helper()
	cfg := new(action.Configuration)
	getter := genericclioptions.NewConfigFlags(false)
	getter.KubeConfig, getter.Namespace = &kubeconfig, &f.ns
	if err := cfg.Init(getter, f.ns, "secret", func(string, ...any) {}); err != nil {
		f.t.Fatal(err)
	}
	list := action.NewList(cfg)
	rels, err := list.Run()
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, r := range rels {
		names = append(names, r.Name+":"+r.Info.Status.String())
	}
	if !contains(names, releaseName+":deployed") {
		f.t.Fatalf("helm list in %s = %v, want %s deployed", f.ns, names, releaseName)
	}
	want := map[string]string{
		chartproofv1.AnnotationRelease:     f.ns + "/" + releaseName,
		chartproofv1.AnnotationChartDigest: digest,
	}
	objs := []client.Object{&corev1.ConfigMap{}, &corev1.Service{}, &corev1.ServiceAccount{}, &appsv1.Deployment{}}
	for _, o := range objs {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: releaseName + "-hello"}, o); err != nil {
			f.t.Fatalf("%T %s-hello: %v", o, releaseName, err)
		}
		got := map[string]string{}
		for k := range want {
			got[k] = o.GetAnnotations()[k]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			f.t.Errorf("%T %s stamp (-want +got):\n%s", o, o.GetName(), diff)
		}
	}
}

func TestSignedChartInstalls(t *testing.T) {
	tests := []struct {
		name string
		sign func(f *fixture, digest string)
	}{
		{"cosign legacy .sig tag", func(f *fixture, d string) { f.signLegacy(d, f.key) }},
		{"sigstore bundle through the referrers API", func(f *fixture, d string) { f.signBundle(d, f.key, false) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			digest := f.push("1.0.0")
			tc.sign(f, digest)
			f.policy("trusted", f.key, "")
			f.release("app", "1.0.0", "trusted")
			vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
			if vhr.Status.Installed == nil || vhr.Status.Installed.Digest != digest || vhr.Status.ResolvedDigest != digest {
				t.Fatalf("status installed %+v resolved %s, want digest %s", vhr.Status.Installed, vhr.Status.ResolvedDigest, digest)
			}
			if vhr.Status.ShortDigest != strings.TrimPrefix(digest, "sha256:")[:12] {
				t.Errorf("shortDigest = %q, want the first 12 hex of %s", vhr.Status.ShortDigest, digest)
			}
			if len(vhr.Status.Evidence) != 1 || vhr.Status.Evidence[0].Authority != "ci" {
				t.Errorf("evidence = %+v, want one entry for authority ci", vhr.Status.Evidence)
			}
			f.assertInstalled("app", digest)
			f.checkGolden("app", "installed-"+strings.ReplaceAll(tc.name, " ", "-"))
		})
	}
}

// TestRefusals: each attack is refused with its reason code and leaves
// nothing in the cluster; its control twin, the same setup without the
// attack, installs.
func TestRefusals(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fixture) (version string) // pushes and signs; returns the version to deploy
		policyFn func(f *fixture)
		wantCode string
	}{
		{
			name:     "unsigned chart",
			setup:    func(f *fixture) string { f.push("1.0.0"); return "1.0.0" },
			wantCode: chartproofv1.ReasonNoSignature,
		},
		{
			name: "signed with another key",
			setup: func(f *fixture) string {
				other, _ := testsign.NewKey("p256")
				f.signLegacy(f.push("1.0.0"), other)
				return "1.0.0"
			},
			wantCode: chartproofv1.ReasonUntrustedSigner,
		},
		{
			name: "signature copied from another chart (BND-01)",
			setup: func(f *fixture) string {
				signedDigest := f.push("0.9.0")
				f.signLegacy(signedDigest, f.key)
				target := f.push("1.0.0")
				// Copy 0.9.0's signature manifest under 1.0.0's .sig tag: a
				// valid signature by the trusted key, naming 0.9.0.
				if err := f.reg.SignLegacy(f.repo, target, signedDigest, f.key); err != nil {
					f.t.Fatal(err)
				}
				return "1.0.0"
			},
			wantCode: chartproofv1.ReasonSubjectMismatch,
		},
		{
			name: "repository not covered by the policy",
			setup: func(f *fixture) string {
				f.signLegacy(f.push("1.0.0"), f.key)
				return "1.0.0"
			},
			policyFn: func(f *fixture) { f.policy("trusted", f.key, "", regHost+"/elsewhere/**") },
			wantCode: chartproofv1.ReasonNoPolicyMatch,
		},
		{
			name: "bytes changed under the same digest",
			setup: func(f *fixture) string {
				d := f.push("1.0.0")
				f.signLegacy(d, f.key)
				layer := chartLayerDigest(f, d)
				evil, err := testchart.Archive("hello", "6.6.6")
				if err != nil {
					f.t.Fatal(err)
				}
				tamper.set(f.repo, layer, evil)
				return "1.0.0"
			},
			wantCode: chartproofv1.ReasonDigestMismatch,
		},
	}
	for _, tc := range tests {
		for _, attack := range []bool{true, false} {
			name := tc.name
			if !attack {
				name = "control twin of " + tc.name
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				if attack {
					tc.setup(f)
					if tc.policyFn != nil {
						tc.policyFn(f)
					} else {
						f.policy("trusted", f.key, "")
					}
				} else {
					f.signLegacy(f.push("1.0.0"), f.key)
					f.policy("trusted", f.key, "")
				}
				f.release("app", "1.0.0", "trusted")
				if !attack {
					f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
					return
				}
				vhr := f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, tc.wantCode)
				for _, ct := range []string{chartproofv1.ConditionReady, chartproofv1.ConditionReleased} {
					if c := apimeta.FindStatusCondition(vhr.Status.Conditions, ct); c == nil || c.Status != metav1.ConditionFalse {
						t.Errorf("%s = %+v, want False", ct, c)
					}
				}
				if vhr.Status.Installed != nil {
					t.Errorf("status.installed = %+v, want nothing installed", vhr.Status.Installed)
				}
				if cm := f.configMap("app"); cm != nil {
					t.Errorf("ConfigMap %s exists in the cluster, want nothing installed", cm.Name)
				}
				if n := verificationCount(t, "denied", tc.wantCode); n < 1 {
					t.Errorf("chartproof_verifications_total{result=denied,reason=%s} = %v, want >= 1", tc.wantCode, n)
				}
				f.waitEvent("app", tc.wantCode)
				f.checkGolden("app", "refused-"+tc.wantCode)
			})
		}
	}
}

// TestTagMovedAfterSigning: the installed release stays when its tag is
// moved to an unsigned digest; the upgrade is blocked and says why.
func TestTagMovedAfterSigning(t *testing.T) {
	f := newFixture(t)
	signed := f.push("1.0.0")
	f.signLegacy(signed, f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: time.Second}
	})
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	// Move the tag: push other bytes (an unsigned chart) under 1.0.0.
	archive, err := testchart.Archive("hello", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	moved, err := f.reg.PushChart(f.repo, "1.0.0", append(archive, 0), "hello", "1.0.0") // trailing byte: another digest
	if err != nil {
		t.Fatal(err)
	}
	if moved == signed {
		t.Fatal("the moved tag resolves to the signed digest; the test would prove nothing")
	}
	vhr := f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonUpgradeBlocked)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified); c.Reason != chartproofv1.ReasonNoSignature {
		t.Errorf("Verified reason = %s, want %s", c.Reason, chartproofv1.ReasonNoSignature)
	}
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReleased); c.Status != metav1.ConditionTrue || c.Reason != chartproofv1.ReasonUpgradeBlocked {
		t.Errorf("Released = %s/%s, want True/%s: the installed release stays, and it is not up to date", c.Status, c.Reason, chartproofv1.ReasonUpgradeBlocked)
	}
	if vhr.Status.Installed == nil || vhr.Status.Installed.Digest != signed || !vhr.Status.Installed.Verified {
		t.Fatalf("installed = %+v, want %s to stay, and to still verify", vhr.Status.Installed, signed)
	}
	f.assertInstalled("app", signed)
	f.waitEvent("app", chartproofv1.ReasonNoSignature)
	f.checkGolden("app", "upgrade-blocked")
}

// TestAuditModeInstallsAndReports: an unsigned chart under an Audit policy
// is installed, Verified=False says why, and Ready is True with reason
// AuditOnly, never Stalled (issue 13, item 6: Audit mode must not fail a
// GitOps health check).
func TestAuditModeInstallsAndReports(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.policy("audit", f.key, chartproofv1.ModeAudit)
	f.release("app", "1.0.0", "audit")
	vhr := f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionTrue, chartproofv1.ReasonAuditOnly)
	for _, t2 := range []string{chartproofv1.ConditionStalled, chartproofv1.ConditionReconciling} {
		if c := apimeta.FindStatusCondition(vhr.Status.Conditions, t2); c != nil {
			t.Errorf("%s = %+v; want none once the Audit install is done", t2, c)
		}
	}
	f.waitEvent("app", chartproofv1.ReasonAuditOnly)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified); c.Status != metav1.ConditionFalse || c.Reason != chartproofv1.ReasonNoSignature {
		t.Errorf("Verified = %s/%s, want False/%s", c.Status, c.Reason, chartproofv1.ReasonNoSignature)
	}
	if vhr.Status.Installed == nil || vhr.Status.Installed.Verified {
		t.Errorf("installed = %+v, want installed and not verified", vhr.Status.Installed)
	}
	f.assertInstalled("app", digest)
	if n := verificationCount(t, "audited", chartproofv1.ReasonNoSignature); n < 1 {
		t.Errorf("audited NoSignature count = %v, want >= 1", n)
	}
}

func TestPolicyNotFoundStalls(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.release("app", "1.0.0", "missing")
	vhr := f.waitCondition("app", chartproofv1.ConditionStalled, metav1.ConditionTrue, chartproofv1.ReasonPolicyNotFound)
	if cm := f.configMap("app"); cm != nil {
		t.Errorf("ConfigMap %s exists, want nothing installed", cm.Name)
	}
	// Control: creating the policy is a trust change, and installs at once.
	_ = vhr
	f.policy("missing", f.key, "")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
}

func TestValuesUpgradeAndDeletion(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.signLegacy(digest, f.key)
	f.policy("trusted", f.key, "")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "vals"}, Data: map[string]string{"values.yaml": "message: from-configmap\n"}}
	if err := k8s.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.ValuesFrom = []chartproofv1.ValuesReference{{Kind: "ConfigMap", Name: "vals"}}
	})
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if got := f.configMap("app").Data["message"]; got != "from-configmap" {
		t.Fatalf("message = %q, want from-configmap", got)
	}

	vhr := f.get("app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Values = jsonValues(t, `{"message":"from-spec"}`)
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	vhr = f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
	if got := f.configMap("app").Data["message"]; got != "from-spec" {
		t.Fatalf("message = %q, want from-spec", got)
	}
	if vhr.Status.Installed.Revision != 2 {
		t.Errorf("revision = %d, want 2", vhr.Status.Installed.Revision)
	}

	if err := k8s.Delete(context.Background(), vhr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "release objects removed", func() (bool, string) {
		cm := f.configMap("app")
		return cm == nil, "ConfigMap still exists"
	})
}

func TestSuspend(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.Suspend = true })
	f.waitCondition("app", chartproofv1.ConditionReconciling, metav1.ConditionFalse, chartproofv1.ReasonSuspended)
	if cm := f.configMap("app"); cm != nil {
		t.Fatalf("ConfigMap %s exists while suspended", cm.Name)
	}
	// Control: resuming installs.
	vhr := f.get("app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Suspend = false
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
}

// chartLayerDigest reads the chart layer's digest from the manifest.
func chartLayerDigest(f *fixture, digest string) string {
	f.t.Helper()
	raw, err := f.reg.RawManifest(f.repo, digest)
	if err != nil {
		f.t.Fatal(err)
	}
	i := strings.Index(raw, testsign.HelmChartMediaType)
	j := strings.Index(raw[i:], "sha256:")
	return raw[i+j : i+j+71]
}

func jsonValues(t *testing.T, s string) *apiextensionsv1.JSON {
	t.Helper()
	return &apiextensionsv1.JSON{Raw: []byte(s)}
}

func verificationCount(t *testing.T, result, reason string) float64 {
	t.Helper()
	mfs, err := promReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "chartproof_verifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "result") == result && label(m, "reason") == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestInvalidPolicyStalls(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	// A key in a Secret that does not exist: the policy cannot be compiled.
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "trusted"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities: []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{
				SecretRef: &chartproofv1.SecretKeyReference{Name: "ci-key"},
			}}},
		},
	}
	if err := k8s.Create(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	f.release("app", "1.0.0", "trusted")
	f.waitCondition("app", chartproofv1.ConditionStalled, metav1.ConditionTrue, chartproofv1.ReasonInvalidPolicy)
	if cm := f.configMap("app"); cm != nil {
		t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
	}
	// Control: the Secret appears. That alone is a trust change: the
	// release is verified and installed, and the policy reports Ready,
	// without the policy being touched.
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "ci-key"}, Data: map[string][]byte{"cosign.pub": []byte(f.key.PublicPEM())}}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	waitFor(t, waitTimeout, "the policy's Ready condition", func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(tp), tp); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(tp.Status.Conditions, chartproofv1.ConditionReady)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == metav1.ConditionTrue, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
	})
}

// TestReverifiesOnInterval: an installed, unchanged release is verified
// again every interval and reported up to date.
func TestReverifiesOnInterval(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: time.Second}
	})
	first := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	layer := "/v2/" + f.repo + "/blobs/" + chartLayerDigest(f, first.Status.Installed.Digest)
	installReads := tamper.getCount(layer)
	// Re-verifying an installed, unchanged release reads signatures, not
	// the chart: the chart layer was read once, for the install.
	var vhr *chartproofv1.VerifiedHelmRelease
	for i := 0; i < 2; i++ { // two re-verifications
		prev := f.get("app").Status.LastVerifiedTime
		waitFor(t, waitTimeout, "a re-verification", func() (bool, string) {
			vhr = f.get("app")
			return vhr.Status.LastVerifiedTime.After(prev.Time), "lastVerifiedTime has not moved"
		})
	}
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c.Status != metav1.ConditionTrue {
		t.Errorf("Ready = %+v after re-verification, want True", c)
	}
	if installReads != 1 || tamper.getCount(layer) != installReads {
		t.Errorf("chart layer reads: %d at install, %d after re-verifications; want 1 and no more", installReads, tamper.getCount(layer))
	}
	if !vhr.Status.LastVerifiedTime.After(first.Status.LastVerifiedTime.Time) {
		t.Errorf("lastVerifiedTime %v did not move past %v", vhr.Status.LastVerifiedTime, first.Status.LastVerifiedTime)
	}
	if vhr.Status.Installed.Revision != 1 {
		t.Errorf("revision = %d, want 1: re-verification must not upgrade", vhr.Status.Installed.Revision)
	}
}

func TestInstallFailsIntoMissingNamespace(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) { v.Spec.TargetNamespace = "does-not-exist" })
	vhr := f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonInstallFailed)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified); c.Status != metav1.ConditionTrue {
		t.Errorf("Verified = %+v, want True: the chart verified, the install failed", c)
	}
}

func TestUpgradeFailureKeepsRelease(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	vhr := f.get("app")
	patch := client.MergeFrom(vhr.DeepCopy())
	vhr.Spec.Values = jsonValues(t, `{"replicaCount":"many"}`) // the API server refuses the Deployment
	if err := k8s.Patch(context.Background(), vhr, patch); err != nil {
		t.Fatal(err)
	}
	vhr = f.waitCondition("app", chartproofv1.ConditionReleased, metav1.ConditionFalse, chartproofv1.ReasonUpgradeFailed)
	if vhr.Status.Installed == nil || vhr.Status.Installed.Revision != 1 {
		t.Errorf("installed = %+v, want revision 1 kept", vhr.Status.Installed)
	}
	if got := f.configMap("app"); got == nil {
		t.Error("the release's ConfigMap is gone after a failed upgrade")
	}
}

func TestUninstallFailureKeepsFinalizer(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	// Corrupt Helm's release record: the uninstall cannot read it.
	var s corev1.Secret
	key := types.NamespacedName{Namespace: f.ns, Name: "sh.helm.release.v1.app.v1"}
	if err := k8s.Get(context.Background(), key, &s); err != nil {
		t.Fatal(err)
	}
	s.Data["release"] = []byte("not a release")
	if err := k8s.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(context.Background(), f.get("app")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "an UninstallFailed event", func() (bool, string) {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(f.ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.Reason == chartproofv1.ReasonUninstallFailed && e.Regarding.Name == "app" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events, none UninstallFailed", len(evs.Items))
	})
	if vhr := f.get("app"); !contains(vhr.Finalizers, "delivery.chartproof.dev/finalizer") {
		t.Fatalf("finalizers = %v, want the finalizer kept while the release is not uninstalled", vhr.Finalizers)
	}
	// Control: with the record repaired (removed), the deletion completes.
	if err := k8s.Delete(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "the VerifiedHelmRelease to go", func() (bool, string) {
		var vhr chartproofv1.VerifiedHelmRelease
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "app"}, &vhr)
		return apierrors.IsNotFound(err), fmt.Sprintf("still there: %v", err)
	})
}

// TestRegistryDownIsInconclusive: an unreachable registry is an outage, not
// a refusal: Verified=Unknown, Reconciling (chartproof retries by itself),
// nothing installed.
func TestRegistryDownIsInconclusive(t *testing.T) {
	f := newFixture(t)
	down := httptest.NewServer(nil)
	downHost := strings.TrimPrefix(down.URL, "http://")
	down.Close() // nothing listens there any more
	f.policy("trusted", f.key, "", downHost+"/**")
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Chart.URL = "oci://" + downHost + "/charts/hello"
	})
	vhr := f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionUnknown, chartproofv1.ReasonRegistryUnavailable)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReconciling); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Reconciling = %+v, want True: an outage is retried", c)
	}
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionStalled); c != nil {
		t.Errorf("Stalled = %+v, want absent for an outage", c)
	}
	if n := verificationCount(t, "inconclusive", chartproofv1.ReasonRegistryUnavailable); n < 1 {
		t.Errorf("inconclusive RegistryUnavailable count = %v, want >= 1", n)
	}
	// Control: the same release against the live registry installs.
	f2 := newFixture(t)
	f2.signLegacy(f2.push("1.0.0"), f2.key)
	f2.policy("trusted", f2.key, "")
	f2.release("app", "1.0.0", "trusted")
	f2.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
}

// TestRangeNeverFallsBack: a semver range takes its highest match; when that
// digest is refused, nothing older is installed in its place. The control
// twin, with the highest match signed, installs it.
func TestRangeNeverFallsBack(t *testing.T) {
	for _, signHighest := range []bool{false, true} {
		t.Run(fmt.Sprintf("highest signed=%v", signHighest), func(t *testing.T) {
			f := newFixture(t)
			f.signLegacy(f.push("1.0.0"), f.key)
			highest := f.push("1.1.0")
			if signHighest {
				f.signLegacy(highest, f.key)
			}
			f.policy("trusted", f.key, "")
			f.release("app", ">=1.0.0 <2.0.0", "trusted")
			if signHighest {
				vhr := f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
				if vhr.Status.Installed.Digest != highest || vhr.Status.ResolvedVersion != "1.1.0" {
					t.Fatalf("installed %s (resolved %s), want 1.1.0 %s", vhr.Status.Installed.Digest, vhr.Status.ResolvedVersion, highest)
				}
				return
			}
			vhr := f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonNoSignature)
			if vhr.Status.ResolvedDigest != highest || vhr.Status.Installed != nil {
				t.Fatalf("resolved %s installed %+v; want %s refused and nothing installed", vhr.Status.ResolvedDigest, vhr.Status.Installed, highest)
			}
			if cm := f.configMap("app"); cm != nil {
				t.Fatalf("ConfigMap %s exists: an older version was installed in place of the refused one", cm.Name)
			}
		})
	}
}

// TestTrustChangeReverifiesInstalled: replacing the policy's key is a trust
// change; the installed release is verified again at once (no interval
// passes here: it is 10m), turns Verified=False, and stays installed. The
// control is the state before the change: Ready.
func TestTrustChangeReverifiesInstalled(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.signLegacy(digest, f.key)
	f.policy("trusted", f.key, "")
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	other, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	var tp chartproofv1.TrustPolicy
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "trusted"}, &tp); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(tp.DeepCopy())
	tp.Spec.Authorities[0].Key.PublicKey = other.PublicPEM()
	if err := k8s.Patch(context.Background(), &tp, patch); err != nil {
		t.Fatal(err)
	}
	vhr := f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
	if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c.Status != metav1.ConditionFalse {
		t.Errorf("Ready = %s, want False once the installed digest no longer verifies", c.Status)
	}
	if vhr.Status.Installed == nil || vhr.Status.Installed.Digest != digest || vhr.Status.Installed.Verified {
		t.Errorf("installed = %+v, want %s kept and marked not verified", vhr.Status.Installed, digest)
	}
	f.assertInstalled("app", digest)
}

// TestStallingRegistryTimesOut: a registry that accepts the connection and
// never answers cannot hold a worker: the verification ends at the
// reconciler's deadline, inconclusive (DOS-03). The control, the same
// registry answering, installs.
func TestStallingRegistryTimesOut(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stall=%v", stall), func(t *testing.T) {
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if stall && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/1.0.0") {
					select {
					case <-release:
					case <-r.Context().Done():
					}
					return
				}
				inner.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			f := newFixture(t)
			host := strings.TrimPrefix(srv.URL, "http://")
			f.useRegistry(testsign.Registry{Host: host})
			f.signLegacy(f.push("1.0.0"), f.key)
			f.policy("trusted", f.key, "", host+"/**")
			f.release("app", "1.0.0", "trusted")
			if !stall {
				f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
				return
			}
			f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionUnknown, chartproofv1.ReasonRegistryUnavailable)
		})
	}
}

// TestSecretRotationReverifies: the policy's key lives in a Secret; putting
// another key in that Secret is a trust change, and the installed release
// is verified again at once (the interval is 10m), turning Verified=False.
// The control is the state before the rotation: Ready.
func TestSecretRotationReverifies(t *testing.T) {
	f := newFixture(t)
	digest := f.push("1.0.0")
	f.signLegacy(digest, f.key)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "ci-key"}, Data: map[string][]byte{"cosign.pub": []byte(f.key.PublicPEM())}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "trusted"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities: []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{
				SecretRef: &chartproofv1.SecretKeyReference{Name: "ci-key"},
			}}},
		},
	}
	if err := k8s.Create(context.Background(), tp); err != nil {
		t.Fatal(err)
	}
	f.release("app", "1.0.0", "trusted")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	other, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(secret.DeepCopy())
	secret.Data["cosign.pub"] = []byte(other.PublicPEM())
	if err := k8s.Patch(context.Background(), secret, patch); err != nil {
		t.Fatal(err)
	}
	vhr := f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
	if vhr.Status.Installed == nil || vhr.Status.Installed.Digest != digest {
		t.Fatalf("installed = %+v, want %s kept", vhr.Status.Installed, digest)
	}
	f.assertInstalled("app", digest)
}

// TestReleasesShareOneVerification: releases of the same chart under the
// same policy share what one verification established (gate.Cache): the
// signatures are read once and the chart layer once, for three installs.
// Its twin: a release under another policy naming the same key (another
// fingerprint) reads the signatures again.
func TestReleasesShareOneVerification(t *testing.T) {
	f := newFixture(t)
	d := f.push("1.0.0")
	f.signLegacy(d, f.key)
	f.policy("trusted", f.key, "")
	sigPath := "/v2/" + f.repo + "/manifests/sha256-" + strings.TrimPrefix(d, "sha256:") + ".sig"
	layer := "/v2/" + f.repo + "/blobs/" + chartLayerDigest(f, d)
	sigs0, blobs0 := tamper.getCount(sigPath), tamper.getCount(layer) // signing reads the .sig manifest too
	for _, name := range []string{"a", "b", "c"} {
		f.release(name, "1.0.0", "trusted")
	}
	for _, name := range []string{"a", "b", "c"} {
		f.waitReady(name, 1, chartproofv1.ReasonInstallSucceeded)
	}
	if sigs, blobs := tamper.getCount(sigPath)-sigs0, tamper.getCount(layer)-blobs0; sigs != 1 || blobs != 1 {
		t.Errorf("three installs read the signature manifest %d times and the chart layer %d times; want once each", sigs, blobs)
	}

	f.policy("same-key", f.key, "")
	f.release("d", "1.0.0", "same-key")
	f.waitReady("d", 1, chartproofv1.ReasonInstallSucceeded)
	if sigs := tamper.getCount(sigPath) - sigs0; sigs != 2 {
		t.Errorf("another policy read the signature manifest %d times in all; want 2: a cache entry is one policy's", sigs)
	}
}
