package policy

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// DefaultCertificatesKey is the ConfigMap key a certificates configMapRef
// reads when it names none.
const DefaultCertificatesKey = "ca.crt"

// maxStoreCertificates bounds the certificates of one trust store.
const maxStoreCertificates = 32

// Notation is a Notation authority's trust material: a trust policy
// document of one statement, in Notation's own form, and its trust store.
type Notation struct {
	// Document is the statement: strict verification, the trust stores
	// below, the trusted identities. Its registry scope is "*": the policy's
	// repositories scope it.
	Document *trustpolicy.Document
	// Store holds the certificates of each trust store type the document
	// names (one named store each, NotationStoreName).
	Store map[truststore.Type][]*x509.Certificate
}

// NotationStoreName is the name of each trust store of a compiled Notation
// authority.
const NotationStoreName = "chartproof"

// GetCertificates implements notation-go's truststore.X509TrustStore.
func (n *Notation) GetCertificates(_ context.Context, storeType truststore.Type, namedStore string) ([]*x509.Certificate, error) {
	certs, ok := n.Store[storeType]
	if !ok || namedStore != NotationStoreName {
		return nil, truststore.TrustStoreError{Msg: fmt.Sprintf("no trust store %s of type %s", namedStore, storeType)}
	}
	return certs, nil
}

func compileNotation(ref Ref, name string, na chartproofv1.NotationAuthority, read Reader) (*Notation, error) {
	out := &Notation{Store: map[truststore.Type][]*x509.Certificate{}}
	var stores []string
	for _, s := range []struct {
		typ truststore.Type
		src *chartproofv1.CertificatesSource
	}{{truststore.TypeCA, na.TrustStore.CA}, {truststore.TypeSigningAuthority, na.TrustStore.SigningAuthority}, {truststore.TypeTSA, na.TrustStore.TSA}} {
		if s.src == nil {
			continue
		}
		certs, err := readCertificates(ref, "notation trust store "+string(s.typ), *s.src, read)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if err := storeCertificateOK(s.typ, c); err != nil {
				return nil, fmt.Errorf("notation trust store %s: certificate %q: %w", s.typ, c.Subject, err)
			}
		}
		out.Store[s.typ] = certs
		stores = append(stores, string(s.typ)+":"+NotationStoreName)
	}
	if out.Store[truststore.TypeCA] == nil && out.Store[truststore.TypeSigningAuthority] == nil {
		return nil, errors.New("notation trust store has neither ca nor signingAuthority certificates")
	}
	for _, id := range na.TrustedIdentities {
		switch {
		case id == "*" && !na.AllowAnyIdentity:
			return nil, errors.New("notation trusted identity \"*\" trusts every certificate of the trust store: set allowAnyIdentity: true to mean it (THREATS NOT-03)")
		case id == "*" && len(na.TrustedIdentities) > 1:
			return nil, errors.New("notation trusted identity \"*\" cannot be listed with other identities")
		case id != "*" && !strings.HasPrefix(id, "x509.subject:"):
			return nil, fmt.Errorf("notation trusted identity %q is not x509.subject: <distinguished name>", id)
		}
	}
	if len(na.TrustedIdentities) == 0 {
		return nil, errors.New("notation authority lists no trusted identities")
	}
	out.Document = &trustpolicy.Document{
		Version: "1.0",
		TrustPolicies: []trustpolicy.TrustPolicy{{
			Name:                  name,
			RegistryScopes:        []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: trustpolicy.LevelStrict.Name},
			TrustStores:           stores,
			TrustedIdentities:     na.TrustedIdentities,
		}},
	}
	if err := out.Document.Validate(); err != nil {
		return nil, fmt.Errorf("notation: %w", err)
	}
	return out, nil
}

// storeCertificateOK applies Notation's rules for what a trust store may
// hold (THREATS PKI-12): CA certificates or self-signed signing
// certificates, and, for timestamp authorities, root CA certificates only;
// and chartproof's key strength rules.
func storeCertificateOK(typ truststore.Type, c *x509.Certificate) error {
	if err := truststore.ValidateCertificates([]*x509.Certificate{c}); err != nil {
		return err
	}
	if typ == truststore.TypeTSA {
		if !c.IsCA || c.CheckSignatureFrom(c) != nil {
			return errors.New("a tsa trust store holds root CA certificates only")
		}
	}
	if _, _, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: c.RawSubjectPublicKeyInfo})); err != nil {
		return err
	}
	return nil
}

// readCertificates reads PEM certificates, inline or from a ConfigMap;
// what names them in errors ("notation trust store ca", "x509 roots").
func readCertificates(ref Ref, what string, src chartproofv1.CertificatesSource, read Reader) ([]*x509.Certificate, error) {
	var (
		data   []byte
		source = "inline certificates"
	)
	switch {
	case src.Certificates != "" && src.ConfigMapRef != nil:
		return nil, fmt.Errorf("%s sets both certificates and configMapRef", what)
	case src.Certificates != "":
		data = []byte(src.Certificates)
	case src.ConfigMapRef != nil:
		o := *src.ConfigMapRef
		if o.Key == "" {
			o.Key = DefaultCertificatesKey
		}
		var err error
		if data, source, err = readObjectKey(ref, what+":", "configMap", o.Namespace, o.Name, o.Key, read); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s sets neither certificates nor configMapRef", what)
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if strings.TrimSpace(string(rest)) != "" {
				return nil, fmt.Errorf("%s: %s: data that is not PEM", what, source)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: %s holds a PEM block that is not a CERTIFICATE", what, source)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: a certificate does not parse", what, source)
		}
		certs = append(certs, c)
		if len(certs) > maxStoreCertificates {
			return nil, fmt.Errorf("%s: %s holds more than %d certificates", what, source, maxStoreCertificates)
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: %s holds no certificate", what, source)
	}
	return certs, nil
}
