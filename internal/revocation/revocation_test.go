package revocation_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/revocation"
	"github.com/chartproof/chartproof/internal/testsign"
)

// pkiServer is a root -> intermediate -> leaf PKI whose CRLs and OCSP
// responder are served on loopback, each changeable by the test.
type pkiServer struct {
	root, inter *testsign.CA
	leaf        *x509.Certificate
	srv         *httptest.Server

	mu    sync.Mutex
	files map[string][]byte // CRLs by path
	ocsp  int               // the OCSP responder's answer for the leaf
	// ocspEdit changes the answer before it is signed; ocspBy signs it
	// instead of the leaf's issuer.
	ocspEdit func(*ocsp.Response)
	ocspBy   *testsign.CA
	hits     map[string]int // requests by path
	blocks   chan struct{}  // when set, every request waits for it
}

// how a certificate names its revocation source.
const (
	viaNone = iota
	viaCRL
	viaOCSP
)

func newPKIServer(t *testing.T, leafVia, interVia int) *pkiServer {
	t.Helper()
	p := &pkiServer{files: map[string][]byte{}, hits: map[string]int{}, ocsp: ocsp.Good}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	name := func(via int, crl string) func(*x509.Certificate) {
		return func(c *x509.Certificate) {
			switch via {
			case viaCRL:
				c.CRLDistributionPoints = []string{p.srv.URL + crl}
			case viaOCSP:
				c.OCSPServer = []string{p.srv.URL + "/ocsp"}
			}
		}
	}
	var err error
	if p.root, err = testsign.NewRootCA("release root", nil); err != nil {
		t.Fatal(err)
	}
	if p.inter, err = p.root.NewIntermediate("release intermediate", name(interVia, "/root.crl")); err != nil {
		t.Fatal(err)
	}
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	if p.leaf, err = p.inter.Issue(key, "release@chartproof.test", name(leafVia, "/inter.crl")); err != nil {
		t.Fatal(err)
	}
	// Both CRLs list nothing, for a week.
	p.setCRL(t, "/root.crl", p.root, nil, time.Now().Add(7*24*time.Hour))
	p.setCRL(t, "/inter.crl", p.inter, nil, time.Now().Add(7*24*time.Hour))
	return p
}

func (p *pkiServer) setCRL(t *testing.T, path string, by *testsign.CA, revoked []*x509.Certificate, nextUpdate time.Time) {
	t.Helper()
	der, err := by.CRL(revoked, nextUpdate, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.files[path] = der
	p.mu.Unlock()
}

func (p *pkiServer) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.hits[r.URL.Path]++
	block, body, answer, edit, by := p.blocks, p.files[r.URL.Path], p.ocsp, p.ocspEdit, p.ocspBy
	p.mu.Unlock()
	if by == nil {
		by = p.inter
	}
	if block != nil {
		<-block
	}
	if strings.HasPrefix(r.URL.Path, "/ocsp") {
		var raw []byte
		if r.Method == http.MethodPost {
			raw, _ = io.ReadAll(r.Body)
		} else {
			raw, _ = base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/ocsp/"))
		}
		req, err := ocsp.ParseRequest(raw)
		if err != nil || req.SerialNumber.Cmp(p.leaf.SerialNumber) != 0 {
			http.Error(w, "bad OCSP request", http.StatusBadRequest)
			return
		}
		resp, err := by.OCSPResponseWith(p.leaf, answer, edit)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(resp)
		return
	}
	if body == nil {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write(body)
}

func (p *pkiServer) chain() []*x509.Certificate {
	return []*x509.Certificate{p.leaf, p.inter.Cert, p.root.Cert}
}

func (p *pkiServer) hit(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, v := range p.hits {
		if strings.HasPrefix(k, path) {
			n += v
		}
	}
	return n
}

var defaults = policy.X509Revocation{Refresh: policy.DefaultRevocationRefresh, Timeout: 2 * time.Second, ID: "test"}

// TestCheck: what CRLs and OCSP responders say of a path (THREATS PKI-08,
// PKI-09), each refusal beside its control twin.
func TestCheck(t *testing.T) {
	type row struct {
		name              string
		leafVia, interVia int
		setup             func(t *testing.T, p *pkiServer)
		want              string
		wantText          string
	}
	other, err := testsign.NewRootCA("another root", nil)
	if err != nil {
		t.Fatal(err)
	}
	week := time.Now().Add(7 * 24 * time.Hour)
	rows := []row{
		{name: "control: leaf and intermediate by CRL, nothing listed", leafVia: viaCRL, interVia: viaCRL, want: policy.RevocationGood},
		{name: "revoked leaf in its issuer's CRL", leafVia: viaCRL, interVia: viaCRL, setup: func(t *testing.T, p *pkiServer) {
			p.setCRL(t, "/inter.crl", p.inter, []*x509.Certificate{p.leaf}, week)
		}, want: policy.RevocationRevoked, wantText: "release signing"},
		{name: "revoked intermediate in the root's CRL", leafVia: viaCRL, interVia: viaCRL, setup: func(t *testing.T, p *pkiServer) {
			p.setCRL(t, "/root.crl", p.root, []*x509.Certificate{p.inter.Cert}, week)
		}, want: policy.RevocationRevoked, wantText: "release intermediate"},
		{name: "stale CRL (past its nextUpdate)", leafVia: viaCRL, interVia: viaCRL, setup: func(t *testing.T, p *pkiServer) {
			p.setCRL(t, "/inter.crl", p.inter, nil, time.Now().Add(-time.Second))
		}, want: policy.RevocationUnknown, wantText: "expired"},
		{name: "CRL signed by another issuer", leafVia: viaCRL, interVia: viaCRL, setup: func(t *testing.T, p *pkiServer) {
			p.setCRL(t, "/inter.crl", other, nil, week)
		}, want: policy.RevocationUnknown, wantText: "not signed by CA"},
		{name: "CRL endpoint down", leafVia: viaCRL, interVia: viaCRL, setup: func(t *testing.T, p *pkiServer) {
			p.mu.Lock()
			delete(p.files, "/inter.crl")
			p.mu.Unlock()
		}, want: policy.RevocationUnknown, wantText: "404"},
		{name: "control: OCSP good", leafVia: viaOCSP, want: policy.RevocationGood},
		{name: "OCSP revoked", leafVia: viaOCSP, setup: func(t *testing.T, p *pkiServer) { p.ocsp = ocsp.Revoked },
			want: policy.RevocationRevoked, wantText: "OCSP"},
		{name: "OCSP unknown", leafVia: viaOCSP, setup: func(t *testing.T, p *pkiServer) { p.ocsp = ocsp.Unknown },
			want: policy.RevocationUnknown, wantText: "OCSP"},
		{name: "stale OCSP answer (past its nextUpdate)", leafVia: viaOCSP, setup: func(t *testing.T, p *pkiServer) {
			p.ocspEdit = func(r *ocsp.Response) {
				r.ThisUpdate, r.NextUpdate = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Minute)
			}
		}, want: policy.RevocationUnknown, wantText: "expired OCSP response"},
		{name: "OCSP answer for another certificate (replayed)", leafVia: viaOCSP, setup: func(t *testing.T, p *pkiServer) {
			p.ocspEdit = func(r *ocsp.Response) { r.SerialNumber = new(big.Int).Add(r.SerialNumber, big.NewInt(1)) }
		}, want: policy.RevocationUnknown, wantText: "no response matching"},
		{name: "OCSP answer signed by another CA (unauthorized responder)", leafVia: viaOCSP, setup: func(t *testing.T, p *pkiServer) {
			p.ocspBy = other
		}, want: policy.RevocationUnknown, wantText: "bad OCSP signature"},
		{name: "control: no certificate names a responder or a CRL", want: policy.RevocationGood},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKIServer(t, tc.leafVia, tc.interVia)
			if tc.setup != nil {
				tc.setup(t, p)
			}
			st := revocation.New(nil).Check(context.Background(), p.chain(), time.Time{}, defaults)
			t.Logf("%s: %s", st.Status, st.Detail)
			if st.Status != tc.want || !strings.Contains(st.Detail, tc.wantText) {
				t.Fatalf("status %s (%s); want %s naming %q", st.Status, st.Detail, tc.want, tc.wantText)
			}
			if tc.leafVia == viaNone && tc.interVia == viaNone && p.hit("/") != 0 {
				t.Errorf("%d requests for a path that names no responder", p.hit("/"))
			}
		})
	}
}

// TestClusterCRL: a CRL the cluster serves for a distribution point is used
// instead of fetching it: it revokes the leaf although the URL serves an
// empty CRL, and the URL is never asked; the control, without it, fetches.
func TestClusterCRL(t *testing.T) {
	p := newPKIServer(t, viaCRL, viaNone)
	if st := revocation.New(nil).Check(context.Background(), p.chain(), time.Time{}, defaults); st.Status != policy.RevocationGood || p.hit("/inter.crl") != 1 {
		t.Fatalf("control: %s (%s) after %d fetches; want Good, fetched once", st.Status, st.Detail, p.hit("/inter.crl"))
	}
	der, err := p.inter.CRL([]*x509.Certificate{p.leaf}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := defaults
	o.CRLs, o.ID = map[string][]byte{p.srv.URL + "/inter.crl": der}, "cluster"
	if st := revocation.New(nil).Check(context.Background(), p.chain(), time.Time{}, o); st.Status != policy.RevocationRevoked {
		t.Fatalf("with the cluster's CRL: %s (%s); want Revoked", st.Status, st.Detail)
	}
	if n := p.hit("/inter.crl"); n != 1 {
		t.Errorf("the distribution point was fetched %d times in all; want once (the control's)", n)
	}
}

// TestRefresh: an answer is used at most the refresh interval, whatever the
// CRL's nextUpdate (a week away) says; within it, nothing is fetched again.
func TestRefresh(t *testing.T) {
	p := newPKIServer(t, viaCRL, viaNone)
	clk := clocktesting.NewFakeClock(time.Now())
	c := revocation.NewWithClock(nil, clk)
	check := func() policy.RevocationStatus {
		return c.Check(context.Background(), p.chain(), time.Time{}, defaults)
	}
	if st := check(); st.Status != policy.RevocationGood {
		t.Fatalf("first: %s (%s); want Good", st.Status, st.Detail)
	}
	p.setCRL(t, "/inter.crl", p.inter, []*x509.Certificate{p.leaf}, time.Now().Add(7*24*time.Hour))
	clk.Step(defaults.Refresh - time.Second)
	if st := check(); st.Status != policy.RevocationGood || p.hit("/inter.crl") != 1 {
		t.Fatalf("within the refresh interval: %s, %d fetches; want the kept Good, one fetch", st.Status, p.hit("/inter.crl"))
	}
	clk.Step(2 * time.Second)
	if st := check(); st.Status != policy.RevocationRevoked {
		t.Fatalf("past the refresh interval: %s (%s); want Revoked, fetched again", st.Status, st.Detail)
	}
}

// TestTimeout: a responder that does not answer makes the status unknown
// once the timeout passes; the check does not wait for it.
func TestTimeout(t *testing.T) {
	p := newPKIServer(t, viaOCSP, viaNone)
	block := make(chan struct{})
	p.mu.Lock()
	p.blocks = block
	p.mu.Unlock()
	defer close(block)
	o := defaults
	o.Timeout = 200 * time.Millisecond
	st := revocation.New(nil).Check(context.Background(), p.chain(), time.Time{}, o)
	if st.Status != policy.RevocationUnknown || p.hit("/ocsp") == 0 {
		t.Fatalf("status %s (%s) after %d requests; want Unknown, asked", st.Status, st.Detail, p.hit("/ocsp"))
	}
}

// TestAnswerAgeFollowsCRL: an answer read from a kept CRL is as old as that
// CRL, so it is kept only for what is left of the CRL's refresh interval: a
// leaf checked just before the CRL is due, against the kept CRL, is checked
// again, against a fresh one, once the interval has passed since the CRL was
// fetched — not a whole interval after its own check.
func TestAnswerAgeFollowsCRL(t *testing.T) {
	p := newPKIServer(t, viaCRL, viaNone)
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.inter.Issue(key, "other@chartproof.test", func(c *x509.Certificate) {
		c.CRLDistributionPoints = []string{p.srv.URL + "/inter.crl"}
	})
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	c := revocation.NewWithClock(nil, clk)
	check := func(leaf *x509.Certificate) policy.RevocationStatus {
		return c.Check(context.Background(), []*x509.Certificate{leaf, p.inter.Cert, p.root.Cert}, time.Time{}, defaults)
	}
	if st := check(p.leaf); st.Status != policy.RevocationGood { // fetches the CRL
		t.Fatalf("first leaf: %s (%s)", st.Status, st.Detail)
	}
	clk.Step(defaults.Refresh - 10*time.Second)
	if st := check(second); st.Status != policy.RevocationGood || p.hit("/inter.crl") != 1 {
		t.Fatalf("second leaf against the kept CRL: %s, %d fetches; want Good, one fetch", st.Status, p.hit("/inter.crl"))
	}
	p.setCRL(t, "/inter.crl", p.inter, []*x509.Certificate{second}, time.Now().Add(7*24*time.Hour))
	clk.Step(11 * time.Second) // past the CRL's interval, well within the second answer's own
	if st := check(second); st.Status != policy.RevocationRevoked {
		t.Fatalf("second leaf once the CRL is due: %s (%s); want Revoked", st.Status, st.Detail)
	}
}

// TestBackgroundRefresh: a path a verification asked about is checked again
// in the background once its answer is as old as the refresh interval; an
// unchanged status announces nothing (the control), a revocation published
// since is announced once and answered at once to the next verification
// (no fetch of its own); a path nobody asked about for a day is checked no
// more.
func TestBackgroundRefresh(t *testing.T) {
	p := newPKIServer(t, viaCRL, viaNone)
	clk := clocktesting.NewFakeClock(time.Now())
	c := revocation.NewWithClock(nil, clk)
	var changes atomic.Int32
	c.OnChange(func() { changes.Add(1) })
	ctx := context.Background()
	check := func() policy.RevocationStatus { return c.Check(ctx, p.chain(), time.Time{}, defaults) }

	if st := check(); st.Status != policy.RevocationGood || p.hit("/inter.crl") != 1 {
		t.Fatalf("first: %s (%s), %d fetches; want Good, one fetch", st.Status, st.Detail, p.hit("/inter.crl"))
	}
	c.Refresh(ctx)
	if n := p.hit("/inter.crl"); n != 1 {
		t.Fatalf("refresh within the interval fetched %d times in all; want 1", n)
	}
	clk.Step(defaults.Refresh)
	c.Refresh(ctx)
	if n, ch := p.hit("/inter.crl"), changes.Load(); n != 2 || ch != 0 {
		t.Fatalf("control: refresh past the interval, nothing revoked: %d fetches, %d changes; want 2, 0", n, ch)
	}

	p.setCRL(t, "/inter.crl", p.inter, []*x509.Certificate{p.leaf}, time.Now().Add(7*24*time.Hour))
	clk.Step(defaults.Refresh)
	c.Refresh(ctx)
	if n, ch := p.hit("/inter.crl"), changes.Load(); n != 3 || ch != 1 {
		t.Fatalf("revoked: %d fetches, %d changes; want 3, 1", n, ch)
	}
	if st := check(); st.Status != policy.RevocationRevoked || p.hit("/inter.crl") != 3 {
		t.Fatalf("after the refresh: %s, %d fetches; want Revoked from the refresh, no fetch", st.Status, p.hit("/inter.crl"))
	}

	clk.Step(24 * time.Hour) // nobody asks for a day
	c.Refresh(ctx)
	clk.Step(defaults.Refresh)
	c.Refresh(ctx)
	if n := p.hit("/inter.crl"); n != 3 {
		t.Fatalf("a path nobody asked about for a day was fetched %d times in all; want 3", n)
	}
}

// TestInvalidityDate (THREATS PKI-08): a CRL entry whose invalidity date
// (the key known compromised since) is after the verified signing time
// leaves what was signed before it counting; signed after it, or with no
// verified signing time (judged at now), the certificate is revoked.
func TestInvalidityDate(t *testing.T) {
	compromised := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name     string
		signedAt time.Time
		want     string
	}{
		{"signed before the invalidity date", compromised.Add(-time.Hour), policy.RevocationGood},
		{"signed after the invalidity date", compromised.Add(time.Hour), policy.RevocationRevoked},
		{"no verified signing time", time.Time{}, policy.RevocationRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKIServer(t, viaCRL, viaNone)
			value, err := asn1.MarshalWithParams(compromised, "generalized")
			if err != nil {
				t.Fatal(err)
			}
			der, err := p.inter.CRL([]*x509.Certificate{p.leaf}, time.Now().Add(7*24*time.Hour), func(l *x509.RevocationList) {
				l.RevokedCertificateEntries[0].ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 24}, Value: value}}
			})
			if err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			p.files["/inter.crl"] = der
			p.mu.Unlock()
			if st := revocation.New(nil).Check(context.Background(), p.chain(), tc.signedAt, defaults); st.Status != tc.want {
				t.Fatalf("status %s (%s); want %s", st.Status, st.Detail, tc.want)
			}
		})
	}
}

// TestDeltaCRL (THREATS PKI-08): a base CRL that names a delta CRL (its
// Freshest CRL extension) is complete only with it: a leaf revoked in the
// delta alone is revoked; a delta that cannot be read, one for another
// base, or an extension that does not parse leaves the status unknown. The
// control's delta lists nothing.
func TestDeltaCRL(t *testing.T) {
	week := time.Now().Add(7 * 24 * time.Hour)
	const baseNumber = 100
	for _, tc := range []struct {
		name      string
		freshest  func(p *pkiServer) []byte // the extension's value
		revoked   bool                      // the delta lists the leaf
		indicator int64                     // the delta's base CRL number
		down      bool                      // the delta is not served
		want      string
		wantText  string
	}{
		{name: "control: the delta lists nothing", indicator: baseNumber, want: policy.RevocationGood},
		{name: "leaf revoked in the delta alone", revoked: true, indicator: baseNumber, want: policy.RevocationRevoked, wantText: "release signing"},
		{name: "delta CRL down", indicator: baseNumber, down: true, want: policy.RevocationUnknown, wantText: "delta CRL"},
		{name: "delta of a later base", revoked: true, indicator: baseNumber + 1, want: policy.RevocationUnknown, wantText: "delta CRL indicator"},
		{name: "malformed Freshest CRL extension", freshest: func(*pkiServer) []byte { return []byte{0x30, 0x03, 0x30} },
			indicator: baseNumber, want: policy.RevocationUnknown, wantText: "malformed Freshest CRL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKIServer(t, viaCRL, viaNone)
			freshest := distributionPoints(t, p.srv.URL+"/inter-delta.crl")
			if tc.freshest != nil {
				freshest = tc.freshest(p)
			}
			base, err := p.inter.CRL(nil, week, func(l *x509.RevocationList) {
				l.Number = big.NewInt(baseNumber)
				l.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 46}, Value: freshest}}
			})
			if err != nil {
				t.Fatal(err)
			}
			var revoked []*x509.Certificate
			if tc.revoked {
				revoked = append(revoked, p.leaf)
			}
			indicator, err := asn1.Marshal(big.NewInt(tc.indicator))
			if err != nil {
				t.Fatal(err)
			}
			delta, err := p.inter.CRL(revoked, week, func(l *x509.RevocationList) {
				l.Number = big.NewInt(baseNumber + 5)
				l.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: indicator}}
			})
			if err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			p.files["/inter.crl"] = base
			if !tc.down {
				p.files["/inter-delta.crl"] = delta
			}
			p.mu.Unlock()
			st := revocation.New(nil).Check(context.Background(), p.chain(), time.Time{}, defaults)
			if st.Status != tc.want || !strings.Contains(st.Detail, tc.wantText) {
				t.Fatalf("status %s (%s); want %s naming %q", st.Status, st.Detail, tc.want, tc.wantText)
			}
		})
	}
}

// distributionPoints is the DER of CRL distribution points naming urls, the
// syntax of a certificate's extension and of a CRL's Freshest CRL.
func distributionPoints(t *testing.T, urls ...string) []byte {
	t.Helper()
	type name struct {
		FullName []asn1.RawValue `asn1:"optional,tag:0"`
	}
	type point struct {
		Name name `asn1:"optional,tag:0"`
	}
	var points []point
	for _, u := range urls {
		points = append(points, point{Name: name{FullName: []asn1.RawValue{{Tag: 6, Class: asn1.ClassContextSpecific, Bytes: []byte(u)}}}})
	}
	der, err := asn1.Marshal(points)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestDeltaCRLNamedByCertificate (THREATS PKI-08): a delta CRL named only by
// the certificate (its own Freshest CRL extension), not by the base CRL,
// cannot be tied to that base: the status is unknown. The control is the
// same leaf without the extension.
func TestDeltaCRLNamedByCertificate(t *testing.T) {
	p := newPKIServer(t, viaCRL, viaNone)
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		freshest bool
		want     string
	}{
		{"control: no Freshest CRL in the certificate", false, policy.RevocationGood},
		{"Freshest CRL in the certificate only", true, policy.RevocationUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := p.inter.Issue(key, "release@chartproof.test", func(c *x509.Certificate) {
				c.CRLDistributionPoints = []string{p.srv.URL + "/inter.crl"}
				if tc.freshest {
					c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 46}, Value: distributionPoints(t, p.srv.URL+"/inter-delta.crl")}}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			st := revocation.New(nil).Check(context.Background(), []*x509.Certificate{leaf, p.inter.Cert, p.root.Cert}, time.Time{}, defaults)
			if st.Status != tc.want {
				t.Fatalf("status %s (%s); want %s", st.Status, st.Detail, tc.want)
			}
		})
	}
}

// TestWatchFollowsOwner: a path is watched under its owner's latest
// settings only, so what superseded settings held (their CRLs) is not kept
// and not checked again; a change of settings is not announced (the trust
// change re-queued its releases). The control: the new settings of another
// owner leave the first owner's path watched.
func TestWatchFollowsOwner(t *testing.T) {
	for _, tc := range []struct {
		name        string
		secondOwner string
		wantFetches int // of the distribution point by the refresh
	}{
		{"settings replaced by the same owner", "TrustPolicy ns/p authority pki", 0},
		{"control: another owner's settings", "TrustPolicy ns/q authority pki", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKIServer(t, viaCRL, viaNone)
			clk := clocktesting.NewFakeClock(time.Now())
			c := revocation.NewWithClock(nil, clk)
			var changes atomic.Int32
			c.OnChange(func() { changes.Add(1) })
			ctx := context.Background()
			first := defaults
			first.Owner, first.ID = "TrustPolicy ns/p authority pki", "first"
			if st := c.Check(ctx, p.chain(), time.Time{}, first); st.Status != policy.RevocationGood {
				t.Fatalf("first settings: %s (%s)", st.Status, st.Detail)
			}
			revoking, err := p.inter.CRL([]*x509.Certificate{p.leaf}, time.Now().Add(7*24*time.Hour), nil)
			if err != nil {
				t.Fatal(err)
			}
			second := defaults
			second.Owner, second.ID = tc.secondOwner, "second"
			second.CRLs = map[string][]byte{p.srv.URL + "/inter.crl": revoking}
			if st := c.Check(ctx, p.chain(), time.Time{}, second); st.Status != policy.RevocationRevoked {
				t.Fatalf("second settings: %s (%s)", st.Status, st.Detail)
			}
			fetched := p.hit("/inter.crl")
			clk.Step(defaults.Refresh)
			c.Refresh(ctx)
			if n := p.hit("/inter.crl") - fetched; n != tc.wantFetches || changes.Load() != 0 {
				t.Fatalf("refresh fetched %d times, %d changes; want %d, none", n, changes.Load(), tc.wantFetches)
			}
		})
	}
}
