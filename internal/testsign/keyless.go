package testsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Sigstore is a throwaway Sigstore for keyless tests. Its transparency log
// (Rekor v1: signed entry timestamps, inclusion proofs with checkpoints) and
// timestamp authority are sigstore-go's pkg/testing/ca VirtualSigstore's.
// Its certificate authority is its own, so tests can issue Fulcio-style
// certificates with URI or email SANs, CI extensions and any validity
// window. The VirtualSigstore's own certificate authority is left out of
// TrustedRootJSON: certificates from it are from an untrusted CA.
type Sigstore struct {
	Virtual *ca.VirtualSigstore

	rootCert, intermediate *x509.Certificate
	intermediateKey        *ecdsa.PrivateKey
	// created is when the Sigstore was made; every validity window in its
	// trusted root is created±10h.
	created time.Time
}

// NewSigstore makes a Sigstore with fresh keys.
func NewSigstore() (*Sigstore, error) {
	return NewSigstoreWith(SigstoreOptions{})
}

// SigstoreOptions change how NewSigstoreWith makes a Sigstore.
type SigstoreOptions struct {
	// IntermediateNotBefore and IntermediateNotAfter, when set, bound the
	// intermediate CA certificate (default: the Sigstore's ±10h window).
	IntermediateNotBefore, IntermediateNotAfter time.Time
}

// NewSigstoreWith makes a Sigstore with fresh keys and the options o.
func NewSigstoreWith(o SigstoreOptions) (*Sigstore, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, err
	}
	s := &Sigstore{Virtual: vs, created: time.Now()}
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "testsign-root", Organization: []string{"chartproof.test"}},
		NotBefore: s.created.Add(-10 * time.Hour), NotAfter: s.created.Add(10 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	if s.rootCert, err = createCert(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey); err != nil {
		return nil, err
	}
	if s.intermediateKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "testsign-intermediate", Organization: []string{"chartproof.test"}},
		NotBefore: orDefault(o.IntermediateNotBefore, s.created.Add(-10*time.Hour)), NotAfter: orDefault(o.IntermediateNotAfter, s.created.Add(10*time.Hour)),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}
	if s.intermediate, err = createCert(interTmpl, s.rootCert, &s.intermediateKey.PublicKey, rootKey); err != nil {
		return nil, err
	}
	return s, nil
}

func orDefault(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

func createCert(tmpl, parent *x509.Certificate, pub any, priv crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// TrustedRootJSON is the trusted_root.json of this Sigstore: its certificate
// authority, the VirtualSigstore's Rekor log and timestamp authority, and,
// when withCTLog is true, the VirtualSigstore's CT log (certificates here
// carry no SCTs, so that root refuses them).
func (s *Sigstore) TrustedRootJSON(withCTLog bool) ([]byte, error) {
	start, end := s.created.Add(-10*time.Hour), s.created.Add(10*time.Hour)
	cas := []root.CertificateAuthority{&root.FulcioCertificateAuthority{
		Root: s.rootCert, Intermediates: []*x509.Certificate{s.intermediate},
		ValidityPeriodStart: start, ValidityPeriodEnd: end, URI: "https://fulcio.chartproof.test",
	}}
	rekor, err := rawIDLogs(s.Virtual.RekorLogs(), start, end)
	if err != nil {
		return nil, err
	}
	ct := map[string]*root.TransparencyLog{}
	if withCTLog {
		if ct, err = rawIDLogs(s.Virtual.CTLogs(), start, end); err != nil {
			return nil, err
		}
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, ct, s.Virtual.TimestampingAuthorities(), rekor)
	if err != nil {
		return nil, err
	}
	return tr.MarshalJSON()
}

// rawIDLogs copies logs with their ID as raw bytes (VirtualSigstore keeps
// the hex string, which a trusted_root.json round trip would not preserve)
// and a validity window of [start, end].
func rawIDLogs(in map[string]*root.TransparencyLog, start, end time.Time) (map[string]*root.TransparencyLog, error) {
	out := map[string]*root.TransparencyLog{}
	for id, l := range in {
		raw, err := hex.DecodeString(id)
		if err != nil {
			return nil, err
		}
		c := *l
		c.ID, c.ValidityPeriodStart, c.ValidityPeriodEnd = raw, start, end
		if c.SignatureHashFunc == 0 {
			c.SignatureHashFunc = crypto.SHA256
		}
		if c.BaseURL == "" || c.BaseURL == "test" {
			c.BaseURL = "https://ct.chartproof.test"
		}
		out[id] = &c
	}
	return out, nil
}

// Cert describes a Fulcio-style leaf certificate.
type Cert struct {
	// Email or URI is the Subject Alternative Name; set exactly one.
	Email, URI string
	// Issuer is the OIDC issuer, in extension 1.3.6.1.4.1.57264.1.8.
	Issuer string
	// Extensions are further Fulcio extensions by the JSON name of
	// sigstore-go's certificate.Extensions (githubWorkflowRef,
	// sourceRepositoryURI, ...).
	Extensions map[string]string
	// NotBefore and NotAfter default to now-5m and now+5m.
	NotBefore, NotAfter time.Time
	// UntrustedCA issues the certificate from the VirtualSigstore's own
	// certificate authority, which TrustedRootJSON leaves out. Its validity
	// is then the VirtualSigstore's: [now, now+10m]; Email only.
	UntrustedCA bool
}

// KeylessOptions says how to sign and log a keyless bundle.
type KeylessOptions struct {
	Cert Cert
	// LoggedAt is the log's integrated time; zero means one minute ago (one
	// minute ahead for UntrustedCA, whose certificates start now).
	LoggedAt time.Time
	// NoLog leaves the transparency log entry out (an RFC 3161 timestamp is
	// then added, so the log is the only thing missing).
	NoLog bool
	// Timestamp adds an RFC 3161 timestamp from the timestamp authority,
	// made now.
	Timestamp bool
	// TamperInclusionProof flips a bit of the inclusion proof's root hash.
	TamperInclusionProof bool
	// CheckpointFromOtherLog replaces the checkpoint with one over the same
	// tree signed by a log key the trusted root does not list.
	CheckpointFromOtherLog bool
	// LogStatement, when set, makes the log entry record a signature (by
	// the same certificate) over this statement instead: an entry for
	// another artifact.
	LogStatement []byte
}

var fulcioOIDs = map[string]struct {
	oid  asn1.ObjectIdentifier
	utf8 bool // DER UTF8String (the 1.8+ extensions) rather than raw bytes
}{
	// oidcIssuerV1 is the deprecated issuer extension (raw bytes), which
	// Fulcio still sets beside "issuer" and cosign's legacy-layout verify
	// reads alone; sigstore-go reads it as the issuer too.
	"oidcIssuerV1":                        {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, false},
	"githubWorkflowTrigger":               {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 2}, false},
	"githubWorkflowSHA":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 3}, false},
	"githubWorkflowName":                  {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 4}, false},
	"githubWorkflowRepository":            {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 5}, false},
	"githubWorkflowRef":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 6}, false},
	"issuer":                              {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, true},
	"buildSignerURI":                      {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 9}, true},
	"buildSignerDigest":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 10}, true},
	"runnerEnvironment":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 11}, true},
	"sourceRepositoryURI":                 {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}, true},
	"sourceRepositoryDigest":              {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 13}, true},
	"sourceRepositoryRef":                 {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 14}, true},
	"sourceRepositoryIdentifier":          {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 15}, true},
	"sourceRepositoryOwnerURI":            {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 16}, true},
	"sourceRepositoryOwnerIdentifier":     {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 17}, true},
	"buildConfigURI":                      {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 18}, true},
	"buildConfigDigest":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 19}, true},
	"buildTrigger":                        {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 20}, true},
	"runInvocationURI":                    {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 21}, true},
	"sourceRepositoryVisibilityAtSigning": {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 22}, true},
}

// leaf issues the certificate c describes, with a fresh P-256 key.
func (s *Sigstore) leaf(c Cert) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if c.UntrustedCA {
		cert, key, err := s.Virtual.GenerateLeafCert(c.Email, c.Issuer)
		if err != nil {
			return nil, nil, err
		}
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("testsign: VirtualSigstore key is %T", key)
		}
		return cert, k, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		NotBefore:    c.NotBefore, NotAfter: c.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-5 * time.Minute)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(5 * time.Minute)
	}
	switch {
	case (c.Email == "") == (c.URI == ""):
		return nil, nil, errors.New("testsign: a certificate needs exactly one of Email and URI")
	case c.Email != "":
		tmpl.EmailAddresses = []string{c.Email}
	default:
		u, err := url.Parse(c.URI)
		if err != nil {
			return nil, nil, err
		}
		tmpl.URIs = []*url.URL{u}
	}
	exts := map[string]string{"issuer": c.Issuer}
	for k, v := range c.Extensions {
		exts[k] = v
	}
	for name, value := range exts {
		o, ok := fulcioOIDs[name]
		if !ok {
			return nil, nil, fmt.Errorf("testsign: unknown Fulcio extension %q", name)
		}
		der := []byte(value)
		if o.utf8 {
			if der, err = asn1.MarshalWithParams(value, "utf8"); err != nil {
				return nil, nil, err
			}
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: o.oid, Value: der})
	}
	cert, err := createCert(tmpl, s.intermediate, &key.PublicKey, s.intermediateKey)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// signDSSE signs statement as a DSSE envelope of in-toto type.
func signDSSE(key *ecdsa.PrivateKey, statement []byte) (*dsse.Envelope, []byte, error) {
	pae := dsse.PAE(inTotoPayloadType, statement)
	sum := sha256.Sum256(pae)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return nil, nil, err
	}
	return &dsse.Envelope{
		PayloadType: inTotoPayloadType,
		Payload:     base64.StdEncoding.EncodeToString(statement),
		Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	}, sig, nil
}

// SignKeyless makes a Sigstore bundle v0.3 with a DSSE envelope over
// statement, signed with a fresh key certified by a leaf certificate, and
// logged in the Rekor log, as `cosign sign` v3 writes it keyless.
func (s *Sigstore) SignKeyless(statement []byte, o KeylessOptions) ([]byte, error) {
	leafCert, key, err := s.leaf(o.Cert)
	if err != nil {
		return nil, err
	}
	env, sig, err := signDSSE(key, statement)
	if err != nil {
		return nil, err
	}
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leafCert.Raw}},
	}
	if o.Timestamp || o.NoLog {
		tsr, err := s.Virtual.TimestampResponse(sig)
		if err != nil {
			return nil, err
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
		}
	}
	if !o.NoLog {
		tle, err := s.logEntry(leafCert, key, env, sig, o)
		if err != nil {
			return nil, err
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	pb := &protobundle.Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     statement,
			PayloadType: inTotoPayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig}},
		}},
	}
	return protojson.Marshal(pb)
}

// logEntry records env (or, with LogStatement, a signature over another
// statement) in the Rekor log: a dsse v0.0.1 entry with a signed entry
// timestamp and an inclusion proof with a signed checkpoint.
func (s *Sigstore) logEntry(leafCert *x509.Certificate, key *ecdsa.PrivateKey, env *dsse.Envelope, sig []byte, o KeylessOptions) (*protorekor.TransparencyLogEntry, error) {
	if o.LogStatement != nil {
		var err error
		if env, sig, err = signDSSE(key, o.LogStatement); err != nil {
			return nil, err
		}
	}
	at := o.LoggedAt
	if at.IsZero() {
		at = time.Now().Add(-time.Minute)
		if o.Cert.UntrustedCA {
			at = time.Now().Add(time.Minute)
		}
	}
	entry, err := s.Virtual.GenerateTlogEntry(leafCert, env, sig, at.Unix(), true)
	if err != nil {
		return nil, err
	}
	tle, ok := proto.Clone(entry.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	if !ok {
		return nil, errors.New("testsign: cloning the log entry")
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	set, err := s.Virtual.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		return nil, err
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	if o.TamperInclusionProof {
		tle.InclusionProof.RootHash[0] ^= 1
	}
	if o.CheckpointFromOtherLog {
		other, err := ca.NewVirtualSigstore()
		if err != nil {
			return nil, err
		}
		proof, err := other.GetInclusionProof(tle.CanonicalizedBody)
		if err != nil {
			return nil, err
		}
		tle.InclusionProof.Checkpoint = &protorekor.Checkpoint{Envelope: *proof.Checkpoint}
	}
	return tle, nil
}
