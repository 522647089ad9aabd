package policy_test

import (
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

func pgpKey(t *testing.T, name string, o testsign.PGPKeyOptions) *testsign.PGPKey {
	t.Helper()
	k, err := testsign.NewPGPKey(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func provAuthority(name, keyring string, fingerprints ...string) chartproofv1.Authority {
	return chartproofv1.Authority{Name: name, HelmProvenance: &chartproofv1.HelmProvenanceAuthority{PublicKeys: keyring, Fingerprints: fingerprints}}
}

func provSpec(authorities ...chartproofv1.Authority) chartproofv1.TrustPolicySpec {
	return chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: authorities}
}

// THREATS PRV-02: the keyring is given with an allowlist, and only the
// allowed keys are kept; an allowlisted key missing from the keyring, a
// weak key, a keyring with private keys or a key shared by two authorities
// is refused when the policy is applied.
func TestCompileProvenance(t *testing.T) {
	release := pgpKey(t, "release", testsign.PGPKeyOptions{})
	other := pgpKey(t, "other", testsign.PGPKeyOptions{})
	weak := pgpKey(t, "weak", testsign.PGPKeyOptions{RSABits: 1024})
	ring := testsign.ArmoredKeyring(release, other)

	p := compile(t, provSpec(provAuthority("helm", ring, strings.ToLower(release.Fingerprint()))))
	hp := p.Authorities[0].Provenance
	if hp == nil || len(hp.Keyring) != 1 || policy.Fingerprint(hp.Keyring[0].PrimaryKey) != release.Fingerprint() {
		t.Fatalf("compiled keyring holds %v, want only %s", hp, release.Fingerprint())
	}
	if hp.Fingerprints[0] != release.Fingerprint() {
		t.Errorf("fingerprint %q, want it uppercase: %s", hp.Fingerprints[0], release.Fingerprint())
	}

	var private strings.Builder
	if err := release.Entity.SerializePrivate(&private, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
		spec       chartproofv1.TrustPolicySpec
	}{
		{"fingerprint not in the keyring", "is not a primary key of keyring", provSpec(provAuthority("helm", testsign.ArmoredKeyring(other), release.Fingerprint()))},
		{"no fingerprints", "lists no fingerprints", provSpec(provAuthority("helm", ring))},
		{"malformed fingerprint", "not 40 or 64 hex digits", provSpec(provAuthority("helm", ring, "ABCD"))},
		{"not a keyring", "not an ASCII-armored OpenPGP public keyring", provSpec(provAuthority("helm", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n", release.Fingerprint()))},
		{"RSA-1024", "below 2048", provSpec(provAuthority("helm", testsign.ArmoredKeyring(weak), weak.Fingerprint()))},
		{"one key, two authorities", "one key, one authority", provSpec(provAuthority("a", ring, release.Fingerprint()), provAuthority("b", ring, release.Fingerprint()))},
		{"two kinds", "more than one of", provSpec(chartproofv1.Authority{Name: "helm", Key: &chartproofv1.KeyAuthority{PublicKey: pemFor["alice"]},
			HelmProvenance: &chartproofv1.HelmProvenanceAuthority{PublicKeys: ring, Fingerprints: []string{release.Fingerprint()}}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, tc.spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A keyring from a ConfigMap or Secret follows the namespace rules of every
// reference, and the default key is pubring.asc.
func TestCompileProvenanceKeyringRef(t *testing.T) {
	release := pgpKey(t, "release", testsign.PGPKeyOptions{})
	objs := objects{
		"configmap:ns/keys/pubring.asc": []byte(release.ArmoredPublic()),
		"secret:sec/keys/ring":          []byte(release.ArmoredPublic()),
	}
	ref := func(cm, sec *chartproofv1.KeyringKeyReference) chartproofv1.TrustPolicySpec {
		return provSpec(chartproofv1.Authority{Name: "helm", HelmProvenance: &chartproofv1.HelmProvenanceAuthority{
			KeyringRef:   &chartproofv1.KeyringReference{ConfigMapRef: cm, SecretRef: sec},
			Fingerprints: []string{release.Fingerprint()},
		}})
	}
	tp := policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}
	ctp := policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}
	if _, err := policy.Compile(tp, ref(&chartproofv1.KeyringKeyReference{Name: "keys"}, nil), objs); err != nil {
		t.Errorf("TrustPolicy, ConfigMap of its namespace: %v", err)
	}
	if _, err := policy.Compile(ctp, ref(nil, &chartproofv1.KeyringKeyReference{Name: "keys", Namespace: "sec", Key: "ring"}), objs); err != nil {
		t.Errorf("ClusterTrustPolicy, Secret of a named namespace: %v", err)
	}
	if _, err := policy.Compile(tp, ref(nil, &chartproofv1.KeyringKeyReference{Name: "keys", Namespace: "sec", Key: "ring"}), objs); err == nil {
		t.Error("a TrustPolicy read a keyring of another namespace")
	}
	if _, err := policy.Compile(ctp, ref(&chartproofv1.KeyringKeyReference{Name: "keys"}, nil), objs); err == nil {
		t.Error("a ClusterTrustPolicy's keyring reference without a namespace compiled")
	}
}

// provSig is a provenance file the "helm" authority's key verified, saying
// what facts says, vouching for layer.
func provSig(facts policy.ProvenanceFacts, layer string) policy.Signature {
	return policy.Signature{Layout: policy.LayoutHelmProvenance, Ref: "sha256:prov", Authority: "helm", KeyID: "FPR",
		Subjects: []string{layer}, Provenance: &facts}
}

// THREATS PRV-03 and PRV-07: a verified provenance file counts only for the
// chart layer of the manifest decided, with a file entry named after its
// own Chart.yaml copy, which must name the repository's chart and, once
// the archive is read, the archive's name and version.
func TestEvaluateProvenance(t *testing.T) {
	release := pgpKey(t, "release", testsign.PGPKeyOptions{})
	p := compile(t, provSpec(provAuthority("helm", release.ArmoredPublic(), release.Fingerprint())))
	const layer = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	good := policy.ProvenanceFacts{Name: "app", Version: "1.2.3", File: "app-1.2.3.tgz"}
	ev := func(s policy.Signature, chart *policy.ChartMeta) policy.Evidence {
		return policy.Evidence{Repository: repo, Digest: digestA, ChartLayer: layer, Chart: chart, Signatures: []policy.Signature{s}}
	}
	loaded := &policy.ChartMeta{Name: "app", Version: "1.2.3"}
	tests := []struct {
		name     string
		ev       policy.Evidence
		wantCode string
	}{
		{"control, before the archive is read", ev(provSig(good, layer), nil), chartproofv1.ReasonVerified},
		{"control, archive read", ev(provSig(good, layer), loaded), chartproofv1.ReasonVerified},
		{"wrong hash", ev(provSig(good, digestB), loaded), chartproofv1.ReasonSubjectMismatch},
		{"the manifest's digest is not the layer's", ev(provSig(good, digestA), loaded), chartproofv1.ReasonSubjectMismatch},
		{"no chart layer known", policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{provSig(good, layer)}}, chartproofv1.ReasonSubjectMismatch},
		{"file entry of another name", ev(provSig(policy.ProvenanceFacts{Name: "app", Version: "1.2.3", File: "other-1.2.3.tgz"}, layer), loaded), chartproofv1.ReasonProvenanceMismatch},
		{"Chart.yaml copy of another chart", ev(provSig(policy.ProvenanceFacts{Name: "other", Version: "1.2.3", File: "other-1.2.3.tgz"}, layer), nil), chartproofv1.ReasonProvenanceMismatch},
		{"Chart.yaml copy of another version", ev(provSig(policy.ProvenanceFacts{Name: "app", Version: "9.9.9", File: "app-9.9.9.tgz"}, layer), loaded), chartproofv1.ReasonProvenanceMismatch},
		{"a provenance layout for a key authority", policy.Evidence{Repository: repo, Digest: digestA, ChartLayer: layer,
			Signatures: []policy.Signature{{Layout: policy.LayoutCosignLegacy, Ref: "sha256:sig", Authority: "helm", KeyID: "FPR", Subjects: []string{digestA}}}}, chartproofv1.ReasonUntrustedSigner},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := policy.Evaluate(p, tc.ev)
			if v.Code() != tc.wantCode {
				t.Fatalf("Code() = %s, want %s: %s", v.Code(), tc.wantCode, v.Message())
			}
			if tc.wantCode == chartproofv1.ReasonVerified && (len(v.Accepted) != 1 || v.Accepted[0].KeyID != "FPR" || v.Accepted[0].Layout != policy.LayoutHelmProvenance) {
				t.Fatalf("accepted %+v", v.Accepted)
			}
		})
	}
}
