package controllers_test

import (
	"bytes"
	"context"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/release"
	"github.com/chartproof/chartproof/internal/testchart"
)

// TestOwnWritesRemembered (issue 11: a release's own writes wake nobody):
// what a release's account writes on the real API server, a Helm install (its
// record Secret, through Helm's storage driver, and the chart's ConfigMap,
// through Helm's kube client) and an update through the drift client, is
// remembered at the resourceVersion the API server answered. Its twins are
// not: the same object written by someone else afterwards, and that version
// answered again to the account's patch that changes nothing (a patch
// merges into what someone else wrote) and to its dry run.
func TestOwnWritesRemembered(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	writes := identity.NewWrites(identity.DefaultWritesTTL)
	acct, err := identity.NewFactory(restConfig, identity.Options{Scheme: scheme, Writes: writes}).For(ns, testServiceAccount)
	if err != nil {
		t.Fatal(err)
	}

	archive, err := testchart.Archive("hello", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	chrt, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.Releases.Apply(ctx, release.Request{
		Namespace: ns, Name: "app", Chart: chrt,
		Stamp: release.Stamp{Release: ns + "/app", Digest: "sha256:" + string(bytes.Repeat([]byte("0"), 64)), Owner: "owner-uid"},
	}); err != nil {
		t.Fatal(err)
	}
	var records corev1.SecretList
	if err := k8s.List(ctx, &records, client.InNamespace(ns), client.MatchingLabels{"owner": "helm", "name": "app"}); err != nil {
		t.Fatal(err)
	}
	if len(records.Items) != 1 {
		t.Fatalf("%d release records; want 1", len(records.Items))
	}
	rec := records.Items[0]
	if !writes.Ours(rec.UID, rec.ResourceVersion) {
		t.Errorf("the release record %s at resourceVersion %s, written by Helm's storage driver, is not remembered", rec.Name, rec.ResourceVersion)
	}
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-hello"}, cm); err != nil {
		t.Fatal(err)
	}
	if !writes.Ours(cm.UID, cm.ResourceVersion) {
		t.Errorf("the chart's ConfigMap at resourceVersion %s, written by Helm's kube client, is not remembered", cm.ResourceVersion)
	}

	// Someone else writes the ConfigMap: that version is not chartproof's.
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data = map[string]string{"planted": "by hand"}
	if err := k8s.Patch(ctx, cm, patch); err != nil {
		t.Fatal(err)
	}
	if writes.Ours(cm.UID, cm.ResourceVersion) {
		t.Errorf("the ConfigMap at resourceVersion %s, written by the test's admin, is remembered as chartproof's", cm.ResourceVersion)
	}
	// The account writes it back with an update: remembered again.
	cm.Data = nil
	if err := acct.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if !writes.Ours(cm.UID, cm.ResourceVersion) {
		t.Errorf("the ConfigMap at resourceVersion %s, updated by the account's client, is not remembered", cm.ResourceVersion)
	}

	// Someone else writes it again; the account's patch that changes
	// nothing, and its dry run, answer with that version: not remembered.
	patch = client.MergeFrom(cm.DeepCopy())
	cm.Data = map[string]string{"planted": "again"}
	if err := k8s.Patch(ctx, cm, patch); err != nil {
		t.Fatal(err)
	}
	theirs := cm.ResourceVersion
	noop := cm.DeepCopy()
	if err := acct.Client.Patch(ctx, noop, client.RawPatch("application/merge-patch+json", []byte(`{"data":{"planted":"again"}}`))); err != nil {
		t.Fatal(err)
	}
	dry := cm.DeepCopy()
	if err := acct.Client.Patch(ctx, dry, client.RawPatch("application/merge-patch+json", []byte(`{"data":{"planted":"dry"}}`)), client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if noop.ResourceVersion != theirs {
		t.Fatalf("the no-op patch answered resourceVersion %s; want %s, the test's own premise", noop.ResourceVersion, theirs)
	}
	if writes.Ours(cm.UID, theirs) {
		t.Errorf("the ConfigMap at resourceVersion %s, written by the test's admin, is remembered after the account's no-op patch and dry run", theirs)
	}
}
