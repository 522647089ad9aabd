package admission_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	cpadmission "github.com/chartproof/chartproof/internal/admission"
)

var secretName = types.NamespacedName{Namespace: "chartproof-system", Name: "chartproof-webhook-tls"}

// clock is a settable time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func webhookConfiguration() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "chartproof"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "owned-objects.delivery.chartproof.dev"}, {Name: "records.delivery.chartproof.dev"}}}
}

// state is what the Secret, the configuration and the server hold.
type state struct {
	cas     []*x509.Certificate // the Secret's bundle
	leaf    *x509.Certificate   // the Secret's serving certificate
	served  *x509.Certificate
	injects [][]byte // each webhook's caBundle
}

func read(t *testing.T, c client.Client, certs *cpadmission.Certificates) state {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(context.Background(), secretName, &s); err != nil {
		t.Fatal(err)
	}
	var st state
	st.cas = parseCerts(t, s.Data[cpadmission.SecretCABundle])
	st.leaf = parseCerts(t, s.Data[cpadmission.SecretCert])[0]
	served, err := certs.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.served, err = x509.ParseCertificate(served.Certificate[0]); err != nil {
		t.Fatal(err)
	}
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := c.Get(context.Background(), types.NamespacedName{Name: "chartproof"}, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, w := range cfg.Webhooks {
		st.injects = append(st.injects, w.ClientConfig.CABundle)
	}
	if string(st.injects[0]) != string(s.Data[cpadmission.SecretCABundle]) || string(st.injects[1]) != string(st.injects[0]) {
		t.Errorf("the configuration's bundles are not the Secret's")
	}
	if !st.served.Equal(st.leaf) {
		t.Errorf("serving %s, the Secret holds %s", st.served.SerialNumber, st.leaf.SerialNumber)
	}
	return st
}

func parseCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// signedBy returns the index in cas of the CA that signed leaf, or -1.
func signedBy(leaf *x509.Certificate, cas []*x509.Certificate) int {
	for i, ca := range cas {
		if leaf.CheckSignatureFrom(ca) == nil {
			return i
		}
	}
	return -1
}

// TestCertificatesRotate walks a CA through its life: made, served and
// injected; renewed with the old CA kept beside the new one and the serving
// certificate still the old CA's until the new one propagated; then the
// serving certificate from the new CA; the old CA gone once expired; the
// serving certificate renewed before its end. At every step, what is served
// is signed by a CA the configuration held since before (no admission can
// fail on a rotation).
func TestCertificatesRotate(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(webhookConfiguration()).Build()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	hosts := []string{"chartproof-webhook.chartproof-system.svc", "127.0.0.1"}
	newCerts := func() *cpadmission.Certificates {
		return &cpadmission.Certificates{Client: c, Secret: secretName, Configuration: "chartproof", Hosts: hosts,
			CAValidity: 100 * time.Hour, CARenewBefore: 30 * time.Hour, CertValidity: 20 * time.Hour, CertRenewBefore: 5 * time.Hour,
			Propagation: time.Minute, Now: clk.now}
	}
	certs := newCerts()
	if _, err := certs.GetCertificate(nil); err == nil {
		t.Fatal("a certificate served before Ensure")
	}
	ensure := func(what string) state {
		t.Helper()
		if err := certs.Ensure(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		st := read(t, c, certs)
		if signedBy(st.served, st.cas) < 0 {
			t.Fatalf("%s: the served certificate's CA is not in the bundle", what)
		}
		return st
	}

	first := ensure("made")
	if len(first.cas) != 1 || signedBy(first.leaf, first.cas) != 0 {
		t.Fatalf("made: %d CAs; want one, signing the serving certificate", len(first.cas))
	}
	if got := append(append([]string{}, first.leaf.DNSNames...), first.leaf.IPAddresses[0].String()); len(got) != 2 || got[0] != hosts[0] || got[1] != hosts[1] {
		t.Errorf("hosts %v, want %v", got, hosts)
	}
	// A second replica converges on the same Secret.
	other := newCerts()
	if err := other.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if st := read(t, c, other); !st.served.Equal(first.leaf) {
		t.Error("a second replica serves another certificate")
	}

	clk.t = clk.t.Add(16 * time.Hour) // the serving certificate is due (5 h before its end)
	renewed := ensure("serving certificate renewed")
	if renewed.leaf.Equal(first.leaf) || len(renewed.cas) != 1 {
		t.Errorf("renewal: new leaf %v, %d CAs; want a new one from the same CA", !renewed.leaf.Equal(first.leaf), len(renewed.cas))
	}

	clk.t = clk.t.Add(50 * time.Hour) // 66 h: the serving certificate expired (at 36 h)
	if st := ensure("expired serving certificate replaced"); st.leaf.Equal(renewed.leaf) || !st.leaf.NotAfter.After(clk.t) {
		t.Error("an expired serving certificate was kept")
	}
	clk.t = clk.t.Add(5 * time.Hour) // 71 h: the CA is due (30 h before its end)
	overlap := ensure("CA renewed")
	if len(overlap.cas) != 2 || signedBy(overlap.served, overlap.cas) != 0 {
		t.Fatalf("CA renewal: %d CAs, served by CA %d; want both, still the old one's certificate until the new CA propagated", len(overlap.cas), signedBy(overlap.served, overlap.cas))
	}
	clk.t = clk.t.Add(30 * time.Second)
	if st := ensure("not yet propagated"); signedBy(st.served, st.cas) != 0 {
		t.Errorf("the new CA signed the serving certificate before it propagated")
	}
	clk.t = clk.t.Add(31 * time.Second)
	switched := ensure("new CA propagated")
	if len(switched.cas) != 2 || signedBy(switched.served, switched.cas) != 1 {
		t.Fatalf("after propagation: %d CAs, served by CA %d; want both, the new one's certificate", len(switched.cas), signedBy(switched.served, switched.cas))
	}

	clk.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(88 * time.Hour) // the new CA's serving certificate is due
	if st := ensure("serving certificate renewed from the new CA"); st.leaf.Equal(switched.leaf) || signedBy(st.leaf, st.cas) != 1 {
		t.Error("the serving certificate was not renewed from the new CA")
	}
	// From here on only the old CA's expiry is due: the serving
	// certificate is good until 108 h, and renewed from 103 h.
	clk.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(100*time.Hour + time.Second) // the first CA expired
	expired := ensure("old CA expired")
	if len(expired.cas) != 1 || !expired.cas[0].Equal(switched.cas[1]) {
		t.Errorf("after the old CA expired: %d CAs; want the new one alone", len(expired.cas))
	}

	// A Secret that does not parse is replaced, not trusted.
	var s corev1.Secret
	if err := c.Get(ctx, secretName, &s); err != nil {
		t.Fatal(err)
	}
	s.Data[cpadmission.SecretCAKey] = []byte("not a key")
	if err := c.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if st := ensure("unparsable Secret"); st.cas[0].Equal(expired.cas[0]) {
		t.Error("a Secret that does not parse was kept")
	}
}

// TestCertificatesHostOrder: a replica given the same hosts in another
// order (and an IP address written another way) serves the certificate the
// Secret holds, rather than reissuing it at every check.
func TestCertificatesHostOrder(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(webhookConfiguration()).Build()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	replica := func(hosts ...string) *cpadmission.Certificates {
		return &cpadmission.Certificates{Client: c, Secret: secretName, Configuration: "chartproof", Hosts: hosts, Now: clk.now}
	}
	first := replica("chartproof-webhook.chartproof-system.svc", "10.0.0.5", "::1")
	if err := first.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	made := read(t, c, first)
	reordered := replica("0:0:0:0:0:0:0:1", "10.0.0.5", "chartproof-webhook.chartproof-system.svc")
	for range 2 {
		clk.t = clk.t.Add(time.Minute)
		if err := reordered.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if st := read(t, c, reordered); !st.leaf.Equal(made.leaf) {
			t.Fatal("the same hosts in another order reissued the serving certificate")
		}
	}
	// Twin: another host is a reason to reissue.
	moved := replica("chartproof-webhook.chartproof-system.svc", "10.0.0.6", "::1")
	if err := moved.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if st := read(t, c, moved); st.leaf.Equal(made.leaf) {
		t.Error("a changed host kept the serving certificate")
	}
}

// TestCertificatesStaleReplica: a replica that read the Secret before
// another added a CA does not write its older bundle back into the
// configuration, which would drop the new CA while it propagates.
func TestCertificatesStaleReplica(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(webhookConfiguration()).Build()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ahead, behind := &clock{t: start}, &clock{t: start}
	newCerts := func(cl client.Client, clk *clock) *cpadmission.Certificates {
		return &cpadmission.Certificates{Client: cl, Secret: secretName, Configuration: "chartproof", Hosts: []string{"127.0.0.1"},
			CAValidity: 100 * time.Hour, CARenewBefore: 30 * time.Hour, CertValidity: 20 * time.Hour, CertRenewBefore: 5 * time.Hour,
			Propagation: time.Minute, Now: clk.now}
	}
	a := newCerts(c, ahead)
	if err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	// Replica B reads the Secret (nothing due for it); before it writes
	// the configuration, A renews the CA.
	ahead.t = start.Add(71 * time.Hour)
	renewed := false
	b := newCerts(interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration); ok && !renewed {
				renewed = true
				if err := a.Ensure(ctx); err != nil {
					return err
				}
			}
			return cl.Get(ctx, key, obj, opts...)
		},
	}), behind)
	behind.t = start.Add(time.Hour)
	if err := b.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if !renewed {
		t.Fatal("the test did not renew the CA between B's reads")
	}
	st := read(t, c, a)
	if len(st.cas) != 2 {
		t.Fatalf("%d CAs in the Secret; want the renewal's two", len(st.cas))
	}
	if got := parseCerts(t, st.injects[0]); len(got) != 2 {
		t.Errorf("the configuration holds %d CAs after the stale replica's check; want both", len(got))
	}
}
