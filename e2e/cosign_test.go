package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// Where a signature lands in the registry.
const (
	legacyTag    = "legacy .sig tag"        // sha256-<hex>.sig
	referrersTag = "referrers fallback tag" // sha256-<hex>, an index of referrers
	referrersAPI = "referrers API"          // GET /v2/<repo>/referrers/<digest>
)

// The layouts `chartproof verify` reports, as in its JSON output.
const (
	layoutLegacy = "cosign-legacy"
	layoutBundle = "sigstore-bundle"
)

// The chart every interop case signs.
const (
	chartRepo    = "charts/hello"
	chartVersion = "1.0.0"
)

// TestCosignInterop signs a Helm chart with the real cosign v2 and v3 CLIs,
// in every layout they write, on a registry without the referrers API (the
// distribution binary) and one with it (go-containerregistry's), and checks
// that cosign itself agrees the signature is genuine, and that both the
// real `chartproof verify` and the real manager accept each signature under
// a policy trusting the signing key — the manager installing the chart —
// and refuse it under a policy trusting another key, installing nothing.
func TestCosignInterop(t *testing.T) {
	// One manager for every case, under config/rbac's ServiceAccount,
	// without leader election: a stopped manager does not give its Lease
	// up, and TestManager's would wait for it to expire.
	manager, _ := startManager(t, "--leader-elect=false")
	// Runs once every case has ended: parallel subtests end before their
	// parent's cleanups run.
	t.Cleanup(func() { stopManager(t, manager) })

	cases := []struct {
		name string
		// v3 signs with cosign v3, else v2.
		v3 bool
		// referrersRegistry serves the chart from go-containerregistry's
		// registry with the referrers API, else from the distribution binary.
		referrersRegistry bool
		// signFlags are the flags of `cosign sign` besides --key, --yes,
		// --allow-http-registry and the reference; "$S" and "$R" stand for
		// the signing config and the trusted root.
		signFlags []string
		// where is where the signature must land.
		where string
		// layout is the layout chartproof must report.
		layout string
	}{
		{
			name:      "v2/legacy",
			signFlags: []string{"--tlog-upload=false"},
			where:     legacyTag, layout: layoutLegacy,
		},
		{
			name: "v3/bundle/referrers-tag", v3: true,
			signFlags: []string{"--signing-config", "$S", "--trusted-root", "$R"},
			where:     referrersTag, layout: layoutBundle,
		},
		{
			name: "v3/bundle/referrers-api", v3: true, referrersRegistry: true,
			signFlags: []string{"--signing-config", "$S", "--trusted-root", "$R"},
			where:     referrersAPI, layout: layoutBundle,
		},
		{
			// `--signing-config S --new-bundle-format=false` is refused by
			// cosign v3.1.3 ("must provide --new-bundle-format or --bundle
			// where applicable with --signing-config"); the legacy layout
			// needs the signing config turned off (TOOLING.md).
			name: "v3/legacy", v3: true,
			signFlags: []string{"--tlog-upload=false", "--use-signing-config=false", "--new-bundle-format=false", "--trusted-root", "$R"},
			where:     legacyTag, layout: layoutLegacy,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var host string
			if tc.referrersRegistry {
				host = startReferrersRegistry(t)
			} else {
				host = startRegistry(t).Host
			}
			digest := pushChart(t, host, chartRepo, chartVersion)
			ref := host + "/" + chartRepo + "@" + digest

			v2, v3 := newCosign(t, tools.cosignV2, false), newCosign(t, tools.cosignV3, true)
			signer := v2
			if tc.v3 {
				signer = v3
			}
			key, pub := signer.generateKeyPair("signer")
			_, otherPub := signer.generateKeyPair("other")

			args := []string{"sign", "--key", key}
			for _, f := range tc.signFlags {
				args = append(args, strings.NewReplacer("$S", signer.signingConfig, "$R", signer.trustedRoot).Replace(f))
			}
			signer.mustRun(append(args, "--allow-http-registry", "--yes", ref)...)

			sigManifest := assertSignatureLocation(t, host, digest, tc.where)

			// cosign agrees the signature is genuine: both versions accept it
			// with the signing key, and the signer refuses it with another.
			for _, verifier := range []struct {
				name  string
				c     *cosignCLI
				extra []string
			}{
				{"cosign v2", v2, v2VerifyFlags(tc.layout, v3.trustedRoot)},
				{"cosign v3", v3, []string{"--trusted-root", v3.trustedRoot}},
			} {
				vargs := append([]string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry"}, verifier.extra...)
				if res := verifier.c.run(append(vargs, ref)...); res.code != 0 {
					t.Errorf("%s verify --key cosign.pub %s: got %s, want exit 0", verifier.name, ref, res)
				}
			}
			signerExtra := []string{}
			if tc.v3 {
				signerExtra = []string{"--trusted-root", v3.trustedRoot}
			}
			vargs := append([]string{"verify", "--key", otherPub, "--insecure-ignore-tlog=true", "--allow-http-registry"}, signerExtra...)
			if res := signer.run(append(vargs, ref)...); res.code == 0 {
				t.Errorf("signer's cosign verify with another key %s: got exit 0, want a failure\n%s", ref, res)
			}

			// chartproof accepts it under the signing key...
			pubPEM, keyID := readPublicKey(t, pub)
			otherPEM, _ := readPublicKey(t, otherPub)
			accepted := []acceptance{{Authority: "ci", KeyID: keyID, Layout: tc.layout, Signature: sigManifest}}
			repository := host + "/" + chartRepo
			chartRef := "oci://" + ref
			res, out := chartproofVerify(t, chartRef, writePolicyFile(t, repository, pubPEM))
			if res.code != 0 || !out.Allowed || !out.Passed || out.Digest != digest {
				t.Errorf("chartproof verify under the signing key: got exit %d allowed=%t passed=%t digest %s, want exit 0, allowed, passed, digest %s\n%s",
					res.code, out.Allowed, out.Passed, out.Digest, digest, res)
			}
			// The accepted signature is cosign's artifact, made with this key.
			if diff := cmp.Diff(accepted, out.Accepted); diff != "" {
				t.Errorf("chartproof verify accepted (-want +got):\n%s", diff)
			}

			// ...and refuses it under another key: the same bytes, the same
			// signature, an untrusted signer.
			res, out = chartproofVerify(t, chartRef, writePolicyFile(t, repository, otherPEM))
			if res.code != 1 || out.Allowed || out.Inconclusive || !slices.Equal(out.codes(), []string{"UntrustedSigner"}) {
				t.Errorf("chartproof verify under another key: got exit %d allowed=%t inconclusive=%t reasons %v, want exit 1, denied, reasons [UntrustedSigner]\n%s",
					res.code, out.Allowed, out.Inconclusive, out.codes(), res)
			}

			// The manager does the same.
			checkManagerInstalls(t, manager, repository, digest, pubPEM, otherPEM, accepted)
		})
	}
}

// checkManagerInstalls has manager install chartVersion of repository
// (host/path, plain HTTP), which resolves to digest, in a new namespace:
// under a TrustPolicy trusting signingPEM it must install exactly digest,
// having accepted the signatures accepted; under one trusting otherPEM it
// must refuse it with UntrustedSigner and install nothing. The releases are
// deleted (uninstalled) when the test ends, so that no later manager acts on
// them.
func checkManagerInstalls(t *testing.T, manager *process, repository, digest, signingPEM, otherPEM string, accepted []acceptance) {
	t.Helper()
	ns := newNamespace(t, "e2e-interop-")
	mustCreate(t, newTrustPolicy(ns, "signer", repository, signingPEM))
	mustCreate(t, newTrustPolicy(ns, "other", repository, otherPEM))
	t.Cleanup(func() { deleteReleases(t, manager, ns, "trusted", "untrusted") })
	mustCreate(t, newRelease(ns, "trusted", "oci://"+repository, chartVersion, "signer"))
	mustCreate(t, newRelease(ns, "untrusted", "oci://"+repository, chartVersion, "other"))

	vhr := waitCondition(t, manager, ns, "trusted", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
	if inst := vhr.Status.Installed; inst == nil || inst.Digest != digest || !inst.Verified || inst.ChartVersion != chartVersion {
		t.Errorf("trusted: status.installed: got %+v, want digest %s, chart version %s, verified", inst, digest, chartVersion)
	}
	if vhr.Status.ResolvedDigest != digest {
		t.Errorf("trusted: status.resolvedDigest: got %s, want %s", vhr.Status.ResolvedDigest, digest)
	}
	if diff := cmp.Diff(accepted, evidence(vhr)); diff != "" {
		t.Errorf("trusted: status.evidence (-want +got):\n%s", diff)
	}
	checkInstalled(t, ns, "trusted", digest)

	// The same digest and signature, under a policy trusting another key.
	vhr = waitCondition(t, manager, ns, "untrusted", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner)
	ready := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != chartproofv1.ReasonUntrustedSigner {
		t.Errorf("untrusted: Ready: got %+v, want False UntrustedSigner", ready)
	}
	if vhr.Status.Installed != nil || vhr.Status.ResolvedDigest != digest || len(vhr.Status.Evidence) != 0 {
		t.Errorf("untrusted: status: installed %+v, resolvedDigest %s, evidence %+v; want nothing installed, resolvedDigest %s, no evidence",
			vhr.Status.Installed, vhr.Status.ResolvedDigest, vhr.Status.Evidence, digest)
	}
	checkNothingInstalled(t, ns, "untrusted")
}

// v2VerifyFlags are the extra flags cosign v2 needs to verify a signature
// in layout: a cosign v3 bundle only verifies with a trusted root
// (TOOLING.md).
func v2VerifyFlags(layout, trustedRoot string) []string {
	if layout == layoutBundle {
		return []string{"--trusted-root", trustedRoot}
	}
	return nil
}

// assertSignatureLocation checks that the signature of digest is where the
// case says, and nowhere else: the repository's tags are exactly the chart's
// and the signature's, and the referrers API answers as the registry does.
// It returns the digest of the manifest that holds the signature.
func assertSignatureLocation(t *testing.T, host, digest, where string) string {
	t.Helper()
	repo, err := name.NewRepository(host+"/"+chartRepo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	digestTag := strings.Replace(digest, ":", "-", 1)
	want := []string{chartVersion}
	switch where {
	case legacyTag:
		want = append(want, digestTag+".sig")
	case referrersTag:
		want = append(want, digestTag)
	}
	slices.Sort(tags)
	slices.Sort(want)
	if diff := cmp.Diff(want, tags); diff != "" {
		t.Fatalf("tags of %s after signing (%s) (-want +got):\n%s", repo, where, diff)
	}

	code, body, err := httpGet(fmt.Sprintf("http://%s/v2/%s/referrers/%s", host, chartRepo, digest))
	if err != nil {
		t.Fatal(err)
	}
	if where != referrersAPI && code != http.StatusNotFound {
		// The distribution registry has no referrers API: clients fall back
		// to the tag.
		t.Fatalf("referrers API of %s on the distribution registry: got status %d, want 404", digest, code)
	}

	switch where {
	case legacyTag:
		desc, err := remote.Head(repo.Tag(digestTag + ".sig"))
		if err != nil {
			t.Fatal(err)
		}
		return desc.Digest.String()
	case referrersTag:
		desc, err := remote.Get(repo.Tag(digestTag))
		if err != nil {
			t.Fatal(err)
		}
		return oneBundleReferrer(t, "referrers fallback tag", desc.Manifest, testsign.BundleMediaType)
	default:
		if code != http.StatusOK {
			t.Fatalf("referrers API of %s: got status %d, want 200\n%s", digest, code, body)
		}
		// go-containerregistry's registry lists a referrer's config media
		// type as its artifact type: for a bundle, the OCI empty config's.
		return oneBundleReferrer(t, "referrers API", body, "application/vnd.oci.empty.v1+json")
	}
}

// oneBundleReferrer checks that an index lists exactly one manifest, with
// artifactType, and returns its digest.
func oneBundleReferrer(t *testing.T, what string, raw []byte, artifactType string) string {
	t.Helper()
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, raw)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s lists %d manifests, want 1 (the bundle)\n%s", what, len(idx.Manifests), raw)
	}
	if got := idx.Manifests[0].ArtifactType; got != artifactType {
		t.Errorf("%s artifactType: got %q, want %q", what, got, artifactType)
	}
	return idx.Manifests[0].Digest.String()
}
