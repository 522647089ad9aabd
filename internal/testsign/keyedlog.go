package testsign

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// KeyedLogOptions says how SignKeyedLogged logs a keyed bundle.
type KeyedLogOptions struct {
	// LogStatement, when set, makes the log entry record the key's
	// signature over this statement instead: an entry for another artifact.
	LogStatement []byte
	// OtherLog records the entry in a log the trusted root does not list.
	OtherLog bool
}

// SignKeyedLogged makes a keyed bundle like Bundle, recorded in this
// Sigstore's Rekor log as `cosign sign --key` writes it with a Rekor v1
// log: a dsse v0.0.1 entry naming k's public key, integrated one minute
// ago, with a signed entry timestamp and an inclusion proof.
func (s *Sigstore) SignKeyedLogged(statement []byte, k *Key, o KeyedLogOptions) ([]byte, error) {
	sig, err := k.Sign(dsse.PAE(inTotoPayloadType, statement))
	if err != nil {
		return nil, err
	}
	logged, loggedSig := statement, sig
	if o.LogStatement != nil {
		logged = o.LogStatement
		if loggedSig, err = k.Sign(dsse.PAE(inTotoPayloadType, logged)); err != nil {
			return nil, err
		}
	}
	log := s.Virtual
	if o.OtherLog {
		if log, err = ca.NewVirtualSigstore(); err != nil {
			return nil, err
		}
	}
	tle, err := logDSSE(log, logged, loggedSig, []byte(k.PublicPEM()), time.Now().Add(-time.Minute))
	if err != nil {
		return nil, err
	}
	pb := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}},
			TlogEntries: []*protorekor.TransparencyLogEntry{tle},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     statement,
			PayloadType: inTotoPayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig}},
		}},
	}
	return protojson.Marshal(pb)
}

// envelopeJSON is a DSSE envelope over an in-toto statement with one
// signature, as JSON.
func envelopeJSON(statement, sig []byte) ([]byte, error) {
	return json.Marshal(dsse.Envelope{
		PayloadType: inTotoPayloadType,
		Payload:     base64.StdEncoding.EncodeToString(statement),
		Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	})
}

// dsseBody is the canonical body of the Rekor dsse v0.0.1 entry of env
// verified by verifierPEM (a public key or certificate), made by Rekor's
// own types as the log makes it.
func dsseBody(env, verifierPEM []byte) ([]byte, error) {
	ctx := context.Background()
	proposed, err := types.NewProposedEntry(ctx, "dsse", "0.0.1", types.ArtifactProperties{
		ArtifactBytes: env, PublicKeyBytes: [][]byte{verifierPEM}, PKIFormat: "x509",
	})
	if err != nil {
		return nil, fmt.Errorf("testsign: rekor entry: %w", err)
	}
	impl, err := types.CreateVersionedEntry(proposed)
	if err != nil {
		return nil, fmt.Errorf("testsign: rekor entry: %w", err)
	}
	body, err := types.CanonicalizeEntry(ctx, impl)
	if err != nil {
		return nil, fmt.Errorf("testsign: rekor entry: %w", err)
	}
	return body, nil
}

// logDSSE records a DSSE envelope over statement with signature sig,
// verified by verifierPEM (a public key or certificate), in log: the
// canonical dsse v0.0.1 body Rekor would store, its signed entry timestamp
// and an inclusion proof with a signed checkpoint.
func logDSSE(log *ca.VirtualSigstore, statement, sig, verifierPEM []byte, at time.Time) (*protorekor.TransparencyLogEntry, error) {
	env, err := envelopeJSON(statement, sig)
	if err != nil {
		return nil, err
	}
	body, err := dsseBody(env, verifierPEM)
	if err != nil {
		return nil, err
	}
	logID, err := log.RekorLogID()
	if err != nil {
		return nil, err
	}
	rawID, err := hex.DecodeString(logID)
	if err != nil {
		return nil, err
	}
	set, err := log.RekorSignPayload(tlog.RekorPayload{
		Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: at.Unix(), LogIndex: 0, LogID: logID,
	})
	if err != nil {
		return nil, err
	}
	proof, err := log.GetInclusionProof(body)
	if err != nil {
		return nil, err
	}
	entry, err := tlog.NewEntry(body, at.Unix(), 0, rawID, set, proof) //nolint:staticcheck // the constructor sigstore-go's own test CA uses
	if err != nil {
		return nil, err
	}
	tle, ok := proto.Clone(entry.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	if !ok {
		return nil, errors.New("testsign: cloning the log entry")
	}
	// The entry's proto form leaves these out.
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle, nil
}
