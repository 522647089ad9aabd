package testsign

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
)

// Annotations of a cosign legacy signature layer (cosign pkg/oci/static).
const (
	SignatureAnnotation   = "dev.cosignproject.cosign/signature"
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	ChainAnnotation       = "dev.sigstore.cosign/chain"
	BundleAnnotation      = "dev.sigstore.cosign/bundle"
	TimestampAnnotation   = "dev.sigstore.cosign/rfc3161timestamp"
)

// LegacyOptions says how to sign and log a layer of cosign's legacy layout.
type LegacyOptions struct {
	// Cert is the leaf certificate of a keyless signature; ignored when Key
	// is set.
	Cert Cert
	// Key signs instead of a certificate's key: a keyed signature, logged
	// with its public key (as `cosign sign --key` v2 writes it by default).
	Key *Key
	// KeyCert, with Key, is the key's certificate: the layer carries it and
	// Chain, and the log records it, as `cosign sign --key K --certificate
	// C --certificate-chain CH` writes them.
	KeyCert *x509.Certificate
	// LoggedAt is the log's integrated time; zero means one minute ago (one
	// minute ahead for UntrustedCA, whose certificates start now).
	LoggedAt time.Time
	// LogIndex is the entry's index in the log.
	LogIndex int64
	// NoLog leaves the Rekor bundle annotation out.
	NoLog bool
	// Timestamp adds an RFC 3161 timestamp annotation from the timestamp
	// authority, over the signature, made now.
	Timestamp bool
	// TimestampBy, when set, makes the RFC 3161 timestamp annotation from
	// the signature's bytes instead (another authority, a broken token).
	TimestampBy func(sig []byte) ([]byte, error)
	// LogPayload, when set, makes the log entry record a signature (by the
	// same key) over this payload instead: an entry for another artifact.
	LogPayload []byte
	// Chain replaces the chain annotation. By default it is the chain of
	// the certificate's CA: the Sigstore's intermediate and root, or, for
	// UntrustedCA, the VirtualSigstore's own (untrusted) CA.
	Chain *string
}

// SignLegacy makes a layer of cosign's legacy layout over payload (a
// simple-signing payload), as `cosign sign` v2 writes it with
// --new-bundle-format=false: the signature, the certificate and its chain
// (keyless), and the Rekor bundle: a hashedrekord v0.0.1 entry over the
// payload's sha256, the signature and the certificate (or public key), with
// the signed entry timestamp of this Sigstore's Rekor log. Push it with
// Registry.AppendLegacyLayer.
func (s *Sigstore) SignLegacy(payload []byte, o LegacyOptions) (Blob, error) {
	var (
		sign      func([]byte) ([]byte, error)
		signerPEM []byte // the certificate or public key, as the log records it
		ann       = map[string]string{}
	)
	switch {
	case o.Key != nil && o.KeyCert != nil:
		sign, signerPEM = o.Key.Sign, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.KeyCert.Raw})
		ann[CertificateAnnotation] = string(signerPEM)
		if o.Chain != nil {
			ann[ChainAnnotation] = *o.Chain
		}
	case o.Key != nil:
		sign, signerPEM = o.Key.Sign, []byte(o.Key.PublicPEM())
	default:
		leafCert, key, err := s.leaf(o.Cert)
		if err != nil {
			return Blob{}, err
		}
		sign = func(msg []byte) ([]byte, error) {
			sum := sha256.Sum256(msg)
			return ecdsa.SignASN1(rand.Reader, key, sum[:])
		}
		signerPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafCert.Raw})
		ann[CertificateAnnotation] = string(signerPEM)
		chain := o.Chain
		if chain == nil {
			c := s.chainPEM(o.Cert.UntrustedCA)
			chain = &c
		}
		ann[ChainAnnotation] = *chain
	}
	sig, err := sign(payload)
	if err != nil {
		return Blob{}, err
	}
	ann[SignatureAnnotation] = base64.StdEncoding.EncodeToString(sig)
	if o.Timestamp || o.TimestampBy != nil {
		stamp := s.Virtual.TimestampResponse
		if o.TimestampBy != nil {
			stamp = o.TimestampBy
		}
		tsr, err := stamp(sig)
		if err != nil {
			return Blob{}, err
		}
		raw, err := json.Marshal(struct{ SignedRFC3161Timestamp []byte }{tsr})
		if err != nil {
			return Blob{}, err
		}
		ann[TimestampAnnotation] = string(raw)
	}
	if !o.NoLog {
		logged, loggedSig := payload, sig
		if o.LogPayload != nil {
			logged = o.LogPayload
			if loggedSig, err = sign(logged); err != nil {
				return Blob{}, err
			}
		}
		at := o.LoggedAt
		if at.IsZero() {
			at = time.Now().Add(-time.Minute)
			if o.Key == nil && o.Cert.UntrustedCA {
				at = time.Now().Add(time.Minute)
			}
		}
		b, err := s.RekorBundle(HashedRekord(logged, loggedSig, signerPEM), at, o.LogIndex)
		if err != nil {
			return Blob{}, err
		}
		ann[BundleAnnotation] = string(b)
	}
	return Blob{MediaType: SimpleSigningMediaType, Data: payload, Annotations: ann}, nil
}

// chainPEM is the PEM chain above a leaf: intermediates, then root.
func (s *Sigstore) chainPEM(untrustedCA bool) string {
	certs := []*x509.Certificate{s.intermediate, s.rootCert}
	if untrustedCA {
		certs = nil
		for _, ca := range s.Virtual.FulcioCertificateAuthorities() {
			if f, ok := ca.(*root.FulcioCertificateAuthority); ok {
				certs = append(append(certs, f.Intermediates...), f.Root)
			}
		}
	}
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

// HashedRekord is the canonical body of a Rekor hashedrekord v0.0.1 entry:
// the sha256 of artifact, the signature, and the signer's PEM certificate
// or public key.
func HashedRekord(artifact, sig, signerPEM []byte) []byte {
	sum := sha256.Sum256(artifact)
	body := map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "hashedrekord",
		"spec": map[string]any{
			"data": map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{
				"content":   base64.StdEncoding.EncodeToString(sig),
				"publicKey": map[string]any{"content": base64.StdEncoding.EncodeToString(signerPEM)},
			},
		},
	}
	raw, err := json.Marshal(body) // maps marshal with sorted keys: canonical JSON
	if err != nil {
		panic(err) // strings and maps always marshal
	}
	return raw
}

// RekorBundle records body in this Sigstore's Rekor log at time at and
// index and returns cosign's bundle annotation for it: the payload (base64
// body, integrated time, log index, log ID) and its signed entry timestamp.
func (s *Sigstore) RekorBundle(body []byte, at time.Time, index int64) ([]byte, error) {
	logID, err := s.Virtual.RekorLogID()
	if err != nil {
		return nil, err
	}
	p := tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(body),
		IntegratedTime: at.Unix(),
		LogIndex:       index,
		LogID:          logID,
	}
	set, err := s.Virtual.RekorSignPayload(p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		SignedEntryTimestamp []byte
		Payload              tlog.RekorPayload
	}{set, p})
}

// AttestLegacy makes a layer of cosign v2's `.att` tag over statement (an
// in-toto statement of predicateType), as `cosign attest` v2 writes it
// keyless: a DSSE envelope signed by c's certificate key, the certificate
// and its chain, and the Rekor bundle of a dsse v0.0.1 entry (cosign v2's
// default --rekor-entry-type). Push it with Registry.AppendLegacyAttestationLayer.
func (s *Sigstore) AttestLegacy(statement []byte, predicateType string, c Cert) (Blob, error) {
	leafCert, key, err := s.leaf(c)
	if err != nil {
		return Blob{}, err
	}
	sum := sha256.Sum256(dsse.PAE(inTotoPayloadType, statement))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return Blob{}, err
	}
	envelope, err := envelopeJSON(statement, sig)
	if err != nil {
		return Blob{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafCert.Raw})
	body, err := dsseBody(envelope, certPEM)
	if err != nil {
		return Blob{}, err
	}
	at := time.Now().Add(-time.Minute)
	if c.UntrustedCA {
		at = time.Now().Add(time.Minute)
	}
	b, err := s.RekorBundle(body, at, 0)
	if err != nil {
		return Blob{}, err
	}
	ann := map[string]string{
		SignatureAnnotation:   "",
		CertificateAnnotation: string(certPEM),
		ChainAnnotation:       s.chainPEM(c.UntrustedCA),
		BundleAnnotation:      string(b),
	}
	if predicateType != "" {
		ann["predicateType"] = predicateType
	}
	return Blob{MediaType: DSSEMediaType, Data: envelope, Annotations: ann}, nil
}
