package verify

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestBundleCounts (DOS-02): a bundle with more log entries, timestamps,
// statement subjects or digests per subject than the caps is refused before
// anything is counted; each has a control twin at the cap, accepted.
func TestBundleCounts(t *testing.T) {
	s := newSigstore(t)
	p, v := compileKeyless(t, s, keylessSpec(1, releaseTags), false)
	good, err := s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: ghCert(), Timestamp: true})
	if err != nil {
		t.Fatal(err)
	}
	// repeat copies a list of the bundle's verification material n times.
	repeat := func(field string, n int) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		vm := m["verificationMaterial"].(map[string]any)
		var list []any
		var set func([]any)
		switch field {
		case "tlogEntries":
			list, set = vm["tlogEntries"].([]any), func(l []any) { vm["tlogEntries"] = l }
		case "rfc3161Timestamps":
			tvd := vm["timestampVerificationData"].(map[string]any)
			list, set = tvd["rfc3161Timestamps"].([]any), func(l []any) { tvd["rfc3161Timestamps"] = l }
		}
		var out []any
		for range n {
			out = append(out, list[0])
		}
		set(out)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// statement names n subjects (digestA first) with d digests each.
	statement := func(n, d int) []byte {
		var subjects []string
		for i := range n {
			digests := []string{fmt.Sprintf(`"sha256":%q`, strings.TrimPrefix(digestA, "sha256:"))}
			if i > 0 {
				digests[0] = fmt.Sprintf(`"sha256":"%064x"`, i)
			}
			for j := 1; j < d; j++ {
				digests = append(digests, fmt.Sprintf(`"alg%d":"%064x"`, j, j))
			}
			subjects = append(subjects, fmt.Sprintf(`{"name":"s%d","digest":{%s}}`, i, strings.Join(digests, ",")))
		}
		return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[%s],"predicateType":%q,"predicate":{}}`,
			strings.Join(subjects, ","), CosignSignPredicate))
	}
	signed := func(stmt []byte) []byte {
		b, err := s.SignKeyless(stmt, testsign.KeylessOptions{Cert: ghCert()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		bundle []byte
		want   string
	}{
		{"control: one log entry, as signed", good, chartproofv1.ReasonVerified},
		{"33 log entries (DOS-02)", repeat("tlogEntries", 33), chartproofv1.ReasonMalformedSignature},
		// One entry twice is not two logs' worth of evidence (BND-04).
		{"the log entry twice (BND-04)", repeat("tlogEntries", 2), chartproofv1.ReasonUntrustedSigner},
		{"control: 32 timestamps", repeat("rfc3161Timestamps", 32), chartproofv1.ReasonVerified},
		{"1000 timestamps (DOS-02)", repeat("rfc3161Timestamps", 1000), chartproofv1.ReasonUntrustedSigner},
		{"control: subjects and digests at the caps", signed(statement(limits.MaxStatementSubjects, 2)), chartproofv1.ReasonVerified},
		{"too many subjects (DOS-02)", signed(statement(limits.MaxStatementSubjects+1, 1)), chartproofv1.ReasonMalformedSignature},
		{"control: 32 digests of a subject", signed(statement(1, limits.MaxSubjectDigests)), chartproofv1.ReasonVerified},
		{"too many digests of a subject (DOS-02)", signed(statement(1, limits.MaxSubjectDigests+1)), chartproofv1.ReasonMalformedSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.bundle) > limits.MaxSignatureLayerBytes {
				t.Fatalf("bundle of %d bytes: over the layer cap, so this would test the size cap instead", len(tc.bundle))
			}
			sig, _ := v.Bundle(tc.bundle)
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s; %s), want %s", got, verdict.Message(), sig.Problem, tc.want)
			}
			if tc.want != chartproofv1.ReasonVerified && !strings.Contains(sig.Problem, "too many") && !strings.Contains(sig.Problem, "more than") && !strings.Contains(sig.Problem, "duplicate") {
				t.Errorf("refused for another reason than the count: %s", sig.Problem)
			}
		})
	}
}
