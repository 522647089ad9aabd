package admission

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/chartproof/chartproof/internal/metrics"
)

// Keys of the webhook's Secret. ca.crt is the bundle the API server trusts:
// every CA not yet expired, the newest last; ca.key is the newest CA's key.
const (
	SecretCABundle = "ca.crt"
	SecretCAKey    = "ca.key"
	SecretCert     = "tls.crt"
	SecretKey      = "tls.key"
	// annotationCAAdded is when the newest CA joined the bundle (RFC 3339):
	// a serving certificate it signs is issued only Propagation later.
	annotationCAAdded = "delivery.chartproof.dev/ca-added"
)

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,resourceNames=chartproof,verbs=get;patch

// Certificates makes and rotates the webhook's own CA and serving
// certificate, without cert-manager (issue 16, item 2). They are kept in a
// Secret, so that every replica serves the same; served from memory
// (GetCertificate), so there is no volume-mount delay; and the CA bundle is
// written into the webhook configuration.
//
// A rotation never fails an admission: a new CA joins the bundle beside
// the old one and is written into the webhook configuration first; the
// serving certificate it signs is issued only Propagation later, once the
// API server trusts it, and the old CA leaves the bundle only when it
// expires. Replicas race on the Secret with optimistic concurrency; each
// converges on what it holds.
type Certificates struct {
	// Client reads and writes the Secret and the webhook configuration:
	// uncached, with the manager's identity.
	Client client.Client
	// Secret holds the CA and the serving certificate.
	Secret types.NamespacedName
	// Configuration is the ValidatingWebhookConfiguration whose webhooks
	// get the CA bundle; "" writes none.
	Configuration string
	// Hosts are the serving certificate's DNS names or IP addresses: the
	// Service's names (name.namespace.svc, ...svc.cluster.local).
	Hosts []string

	CAValidity, CARenewBefore     time.Duration // defaults 1 year, 90 days
	CertValidity, CertRenewBefore time.Duration // defaults 90 days, 30 days
	// Propagation is how long a new CA is in the bundle before it signs
	// the serving certificate (default 2 minutes).
	Propagation time.Duration
	// Interval is how often the Secret and the configuration are checked
	// (default 1 minute).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Metrics, when set, tells when the served certificate and the newest
	// CA expire.
	Metrics *metrics.Admission

	serving atomic.Pointer[tls.Certificate]
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (c *Certificates) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if cert := c.serving.Load(); cert != nil {
		return cert, nil
	}
	return nil, errors.New("admission: no serving certificate yet")
}

// Ready reports whether a certificate is served (a readyz check).
func (c *Certificates) Ready(*http.Request) error {
	if c.serving.Load() == nil {
		return errors.New("no serving certificate yet")
	}
	return nil
}

// Start keeps the certificates current until ctx ends (a manager
// Runnable, run on every replica).
func (c *Certificates) Start(ctx context.Context) error {
	interval := c.Interval
	if interval == 0 {
		interval = time.Minute
	}
	for {
		if err := c.Ensure(ctx); err != nil && ctx.Err() == nil {
			log.FromContext(ctx).Error(err, "admission: keeping the webhook's certificates current")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// NeedLeaderElection is false: every replica serves the webhook.
func (c *Certificates) NeedLeaderElection() bool { return false }

// Ensure makes, renews or rotates what is due, writes the bundle into the
// webhook configuration and serves the Secret's certificate.
func (c *Certificates) Ensure(ctx context.Context) error {
	var (
		s corev1.Secret
		b bundle
	)
	// Replicas race on the Secret: the loser reads the winner's and
	// converges on it.
	for attempt := 0; ; attempt++ {
		var err error
		if s, b, err = c.update(ctx); err == nil {
			break
		} else if attempt == 2 || !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			return err
		}
	}
	if err := c.inject(ctx, &s); err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(s.Data[SecretCert], s.Data[SecretKey])
	if err != nil {
		return err
	}
	c.serving.Store(&cert)
	c.Metrics.CertificateExpires(metrics.CertificateServing, b.leaf.NotAfter)
	c.Metrics.CertificateExpires(metrics.CertificateCA, b.cas[len(b.cas)-1].NotAfter)
	return nil
}

// update reads the Secret, rotates what is due and writes it back; it
// returns the Secret and what it holds, parsed.
func (c *Certificates) update(ctx context.Context) (corev1.Secret, bundle, error) {
	var s corev1.Secret
	err := c.Client.Get(ctx, c.Secret, &s)
	switch {
	case apierrors.IsNotFound(err):
		s = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.Secret.Namespace, Name: c.Secret.Name}, Type: corev1.SecretTypeOpaque}
	case err != nil:
		return s, bundle{}, err
	}
	b, err := parseBundle(&s)
	if err != nil {
		// A Secret that does not parse is replaced, never trusted.
		log.FromContext(ctx).Info("admission: the webhook's Secret does not parse; making new certificates", "secret", c.Secret, "error", err.Error())
		b = bundle{}
	}
	changed, err := c.rotate(&b, s.Annotations[annotationCAAdded])
	if err != nil || !changed {
		return s, b, err
	}
	if err := b.write(&s); err != nil {
		return s, b, err
	}
	if s.ResourceVersion == "" {
		return s, b, c.Client.Create(ctx, &s)
	}
	return s, b, c.Client.Update(ctx, &s)
}

// rotate brings b up to date: expired CAs leave the bundle; a CA near
// its end gets a successor; the serving certificate is reissued at once
// when it cannot be served (none, expired, its CA gone, other hosts), and
// when it nears its end or a successor CA signs it only once that CA has
// propagated, so the API server trusts it before it is served.
func (c *Certificates) rotate(b *bundle, caAdded string) (changed bool, err error) {
	now := c.now()
	propagation := or(c.Propagation, 2*time.Minute)
	held := len(b.cas)
	b.cas = slices.DeleteFunc(b.cas, func(ca *x509.Certificate) bool { return !now.Before(ca.NotAfter) })
	changed = len(b.cas) < held // an expired CA leaves the bundle
	if len(b.cas) == 0 || b.caKey == nil || !b.caKey.PublicKey.Equal(b.cas[len(b.cas)-1].PublicKey) {
		*b = bundle{} // nothing usable to sign with: start over
	}
	b.caAdded, _ = time.Parse(time.RFC3339Nano, caAdded) // none: long propagated
	if len(b.cas) == 0 || now.After(b.cas[len(b.cas)-1].NotAfter.Add(-or(c.CARenewBefore, 90*24*time.Hour))) {
		ca, key, err := newCA(now, or(c.CAValidity, 365*24*time.Hour))
		if err != nil {
			return false, err
		}
		b.caAdded = now
		if len(b.cas) == 0 {
			b.caAdded = now.Add(-propagation) // nothing to overlap with
		}
		b.cas, b.caKey, changed = append(b.cas, ca), key, true
	}
	newest := b.cas[len(b.cas)-1]
	unusable := b.leaf == nil || !now.Before(b.leaf.NotAfter) || !b.serves(c.Hosts) ||
		!slices.ContainsFunc(b.cas, func(ca *x509.Certificate) bool { return b.leaf.CheckSignatureFrom(ca) == nil })
	renew := unusable || now.After(b.leaf.NotAfter.Add(-or(c.CertRenewBefore, 30*24*time.Hour))) || b.leaf.CheckSignatureFrom(newest) != nil
	if unusable || (renew && !now.Before(b.caAdded.Add(propagation))) {
		if b.leaf, b.leafKey, err = newLeaf(now, or(c.CertValidity, 90*24*time.Hour), newest, b.caKey, c.Hosts); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// inject writes the CA bundle of s into every webhook of the configuration
// that does not hold it yet. A configuration not installed yet is no
// error: it is checked again at the next interval.
//
// Only the replica whose Secret is still the current one writes: one that
// read it before another replica added a CA would otherwise put back the
// older bundle, and the new CA could sign a serving certificate the API
// server no longer trusts. The configuration is read first and written
// with its resourceVersion, so a newer bundle written in between makes the
// write fail rather than be undone.
func (c *Certificates) inject(ctx context.Context, s *corev1.Secret) error {
	if c.Configuration == "" {
		return nil
	}
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := c.Client.Get(ctx, types.NamespacedName{Name: c.Configuration}, &cfg); err != nil {
		if apierrors.IsNotFound(err) {
			log.FromContext(ctx).V(1).Info("admission: the webhook configuration is not installed", "name", c.Configuration)
			return nil
		}
		return err
	}
	var current corev1.Secret
	if err := c.Client.Get(ctx, c.Secret, &current); err != nil {
		return err
	}
	if current.ResourceVersion != s.ResourceVersion {
		return nil // another replica moved the Secret on: it writes, or this one at its next check
	}
	caBundle := s.Data[SecretCABundle]
	patch := client.MergeFromWithOptions(cfg.DeepCopy(), client.MergeFromWithOptimisticLock{})
	changed := false
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, caBundle) {
			cfg.Webhooks[i].ClientConfig.CABundle, changed = caBundle, true
		}
	}
	if !changed {
		return nil
	}
	return c.Client.Patch(ctx, &cfg, patch)
}

func (c *Certificates) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// bundle is the Secret's content, parsed.
type bundle struct {
	cas     []*x509.Certificate
	caKey   *ecdsa.PrivateKey
	caAdded time.Time
	leaf    *x509.Certificate
	leafKey *ecdsa.PrivateKey
}

func parseBundle(s *corev1.Secret) (bundle, error) {
	var b bundle
	if len(s.Data) == 0 {
		return b, nil
	}
	rest := s.Data[SecretCABundle]
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return bundle{}, fmt.Errorf("%s: %w", SecretCABundle, err)
		}
		b.cas = append(b.cas, ca)
	}
	var err error
	if b.caKey, err = parseKey(s.Data[SecretCAKey]); err != nil {
		return bundle{}, fmt.Errorf("%s: %w", SecretCAKey, err)
	}
	block, _ := pem.Decode(s.Data[SecretCert])
	if block == nil {
		return bundle{}, fmt.Errorf("%s: no PEM certificate", SecretCert)
	}
	if b.leaf, err = x509.ParseCertificate(block.Bytes); err != nil {
		return bundle{}, fmt.Errorf("%s: %w", SecretCert, err)
	}
	if b.leafKey, err = parseKey(s.Data[SecretKey]); err != nil {
		return bundle{}, fmt.Errorf("%s: %w", SecretKey, err)
	}
	return b, nil
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	return x509.ParseECPrivateKey(block.Bytes)
}

func (b *bundle) write(s *corev1.Secret) error {
	var cas []byte
	for _, ca := range b.cas {
		cas = append(cas, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	}
	caKey, err := x509.MarshalECPrivateKey(b.caKey)
	if err != nil {
		return err
	}
	leafKey, err := x509.MarshalECPrivateKey(b.leafKey)
	if err != nil {
		return err
	}
	s.Data = map[string][]byte{
		SecretCABundle: cas,
		SecretCAKey:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKey}),
		SecretCert:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.leaf.Raw}),
		SecretKey:      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: leafKey}),
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[annotationCAAdded] = b.caAdded.UTC().Format(time.RFC3339Nano)
	return nil
}

// serves reports whether the serving certificate names exactly hosts, in
// any order, IP addresses in their canonical form (--webhook-hosts keeps
// the order it was given; the certificate lists DNS names first).
func (b *bundle) serves(hosts []string) bool {
	have := slices.Clone(b.leaf.DNSNames)
	for _, ip := range b.leaf.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, len(hosts))
	for i, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		want[i] = h
	}
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(have, want)
}

func newCA(now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("chartproof webhook CA %s", now.UTC().Format(time.RFC3339))},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// newLeaf issues a serving certificate for hosts (DNS names and IP
// addresses) signed by ca.
func newLeaf(now time.Time, validity time.Duration, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "chartproof webhook"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	return leaf, key, err
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
