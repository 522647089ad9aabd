// Package gate runs one verification from a chart reference to a verdict:
// resolve the version to one digest, check the manifest's shape, collect and
// check the signatures, let internal/policy decide, and — only when asked
// and only when the verdict allows it — read the chart archive by that same
// digest and load it safely. The controller and `chartproof verify` both go
// through Check, so they give the same verdict.
package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	helmchart "helm.sh/helm/v3/pkg/chart"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/chart"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/revocation"
	"github.com/chartproof/chartproof/internal/strictjson"
	"github.com/chartproof/chartproof/internal/verify"
)

// Registry is what Check needs from a registry client (*oci.Client).
type Registry interface {
	verify.Registry
	Resolve(ctx context.Context, repo oci.Repository, version string) (oci.Resolved, error)
}

// Observer records verdicts (metrics). It may be nil.
type Observer interface {
	Observe(v policy.Verdict, took time.Duration)
}

// Request is one verification.
type Request struct {
	// URL is the chart repository, oci://host[:port]/path/name.
	URL string
	// Version is a tag, a semver range or a sha256 digest.
	Version string
	// SignatureRepository, when set, is where the cosign signatures of
	// the chart's digest are read (oci://host[:port]/path, cosign's
	// COSIGN_REPOSITORY); empty means the chart's own repository.
	SignatureRepository string
	// Policy is the compiled trust policy the release names; Verifier was
	// built from it.
	Policy   *policy.Policy
	Verifier *verify.Verifier
	// Mandatory are the mandatory ClusterTrustPolicies that bind the
	// release (policy.Policy.Binds), each with its verifier. Those whose
	// repositories cover the chart judge it too (policy.Combine); the
	// others, and one that is the named policy, are left out.
	Mandatory []Judge
	// RequireClusterPolicy denies a release no ClusterTrustPolicy judges
	// (policy.Combine, NoClusterPolicy).
	RequireClusterPolicy bool
	// Cache, when set, keeps signatures that passed and chart layers for a
	// while (see Cache).
	Cache *Cache
	// Floor is the newest chart the release verified and installed, which
	// it does not move below unless AllowDowngrade (policy.Evidence).
	Floor          *chartproofv1.ChartRecord
	AllowDowngrade bool
	// Revocation checks the certificate paths of x509 authorities (CRL,
	// OCSP) at every verification, after the signatures are collected or
	// taken from the Cache; nil checks them keeping nothing.
	Revocation *revocation.Checker
}

// Judge is a policy and the verifier built from it.
type Judge struct {
	Policy   *policy.Policy
	Verifier *verify.Verifier
}

// Result is what Check established and decided.
type Result struct {
	// Repository is the normalized repository, host[:port]/path/name.
	Repository string
	// Digest and Tag are what the version resolved to; empty when it could
	// not be resolved.
	Digest, Tag string
	// Verdict is the decision. Act only on Verdict.Allowed().
	Verdict policy.Verdict
	// Chart is the loaded chart, read by Digest; set only by Load, and only
	// when the verdict with the content checked still allows an install.
	Chart *helmchart.Chart
	// Cached says the signatures came from the Cache: checked earlier by
	// the same policies' verifiers, for this digest.
	Cached bool

	cache          *Cache
	repo           oci.Repository
	layer          v1.Descriptor
	config         v1.Descriptor
	judged         []judged // the named policy first, then the mandatory ones
	requireCluster bool
}

// judged is one policy and the evidence gathered for it: the signatures as
// its verifier checked them.
type judged struct {
	policy   *policy.Policy
	evidence policy.Evidence
}

// decide is the verdict on res's evidence: each policy's own, combined.
func (res *Result) decide() policy.Verdict {
	var mandatory []policy.Verdict
	for _, j := range res.judged[1:] {
		mandatory = append(mandatory, policy.Evaluate(j.policy, j.evidence))
	}
	named := policy.Evaluate(res.judged[0].policy, res.judged[0].evidence)
	if len(mandatory) == 0 && !res.requireCluster {
		return named
	}
	return policy.Combine(named, mandatory, res.requireCluster)
}

// Check resolves the version to one digest and verifies it. It never
// returns an error: every failure is a reason in the verdict, and the zero
// verdict is a denial. It does not download the chart: re-verifying an
// installed digest costs only the manifest and signature requests.
func Check(ctx context.Context, reg Registry, obs Observer, req Request) Result {
	start := time.Now()
	res := check(ctx, reg, req)
	if obs != nil {
		obs.Observe(res.Verdict, time.Since(start))
	}
	return res
}

func check(ctx context.Context, reg Registry, req Request) Result {
	reg = withCache(reg, req.Cache)
	res := Result{cache: req.Cache, requireCluster: req.RequireClusterPolicy}
	res.judged = []judged{{policy: req.Policy}}
	// fail records a failure to gather evidence: every policy sees it.
	fail := func(f *policy.Failure) Result {
		for i := range res.judged {
			res.judged[i].evidence.Failure = f
		}
		res.Verdict = res.decide()
		return res
	}

	repo, err := oci.ParseRepository(req.URL)
	if err != nil {
		return fail(&policy.Failure{Code: chartproofv1.ReasonInvalidSpec, Message: err.Error()})
	}
	res.repo, res.Repository = repo, repo.String()
	res.judged[0].evidence.Repository = res.Repository
	sigRepo := repo
	if req.SignatureRepository != "" {
		if sigRepo, err = oci.ParseRepository(req.SignatureRepository); err != nil {
			return fail(&policy.Failure{Code: chartproofv1.ReasonInvalidSpec, Message: "signature repository: " + err.Error()})
		}
		res.judged[0].evidence.SignatureRepository = sigRepo.String()
	}
	if req.Policy == nil || !req.Policy.Covers(res.Repository) ||
		(req.SignatureRepository != "" && !req.Policy.AllowsSignatureRepository(sigRepo.String())) {
		res.Verdict = res.decide() // out of scope: no registry request at all
		return res
	}
	verifiers := []*verify.Verifier{req.Verifier}
	for _, m := range req.Mandatory {
		if m.Policy == nil || !m.Policy.Covers(res.Repository) || m.Policy.Fingerprint == req.Policy.Fingerprint {
			continue
		}
		res.judged = append(res.judged, judged{policy: m.Policy, evidence: policy.Evidence{
			Repository: res.Repository, SignatureRepository: res.judged[0].evidence.SignatureRepository,
		}})
		verifiers = append(verifiers, m.Verifier)
	}

	resolved, err := reg.Resolve(ctx, repo, req.Version)
	if err != nil {
		return fail(failure(fmt.Errorf("resolve %s: %w", reference(repo, req.Version), err)))
	}
	res.Digest, res.Tag = resolved.Digest, resolved.Tag
	now := time.Now()
	for i := range res.judged {
		e := &res.judged[i].evidence
		e.Digest, e.Tag, e.Now = resolved.Digest, resolved.Tag, now
		e.Floor, e.AllowDowngrade = req.Floor, req.AllowDowngrade
	}

	manifest, err := oci.ParseChartManifest(resolved.Manifest)
	if err != nil {
		return fail(failure(fmt.Errorf("manifest %s: %w", resolved.Digest, err)))
	}
	res.layer, res.config = manifest.Chart, manifest.Config
	// What a Notation signature names: the manifest as the registry serves
	// it (a Helm chart's manifest is an OCI image manifest).
	target := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(resolved.Manifest))}
	if target.Digest, err = v1.NewHash(resolved.Digest); err != nil {
		return fail(failure(fmt.Errorf("%w: digest %q: %v", oci.ErrInvalidManifest, resolved.Digest, err)))
	}
	for i := range res.judged {
		res.judged[i].evidence.ChartLayer = manifest.Chart.Digest.String()
	}
	// The provenance layer is read once, and only for a policy that has a
	// Helm provenance authority; a read that fails fails that policy's
	// evidence, as any registry failure does (THREATS PRV-06).
	provenance := sync.OnceValues(func() ([]byte, error) { // fetch may run on the cache's goroutine
		data, err := reg.Blob(ctx, repo, *manifest.Provenance, limits.MaxProvenanceBytes)
		if err != nil {
			return nil, fmt.Errorf("provenance layer %s: %w", manifest.Provenance.Digest, err)
		}
		return data, nil
	})

	// Each policy's verifier checks the signatures; the registry is read
	// once per policy (the cache keeps what passed, per policy).
	res.Cached = true
	for i := range res.judged {
		j := &res.judged[i]
		if j.evidence.SignatureRepository != "" && !j.policy.AllowsSignatureRepository(j.evidence.SignatureRepository) {
			continue // a mandatory policy that does not allow it: refused, nothing read for it
		}
		collect := func() ([]policy.Signature, error) {
			sigs, err := verify.Collect(ctx, reg, verifiers[i], sigRepo, resolved.Digest)
			if err == nil && verifiers[i].HasNotation() {
				var more []policy.Signature
				more, err = verify.CollectNotation(ctx, reg, verifiers[i], repo, target)
				sigs = append(sigs, more...)
			}
			if err == nil && verifiers[i].HasAttestations() {
				var atts []policy.Signature
				atts, err = verify.CollectAttestations(ctx, reg, verifiers[i], sigRepo, resolved.Digest)
				sigs = append(sigs, atts...)
			}
			if err != nil || manifest.Provenance == nil || !verifiers[i].HasProvenance() {
				return sigs, err
			}
			data, err := provenance()
			if err != nil {
				return nil, err
			}
			return append(sigs, verifiers[i].Provenance(manifest.Provenance.Digest.String(), data)), nil
		}
		pol := j.policy
		fetch := func() ([]policy.Signature, error) {
			sigs, err := collect()
			return req.Revocation.Annotate(ctx, pol, sigs), err
		}
		// What passes is kept longer than what does not. passes may run on
		// the cache's goroutine after this one moved on, so it reads a copy
		// of the evidence.
		base := j.evidence
		passes := func(sigs []policy.Signature) bool {
			e := base
			e.Signatures, e.Attestations = splitAttestations(sigs)
			return policy.Evaluate(j.policy, e).Passed()
		}
		var cached bool
		j.evidence.Signatures, cached, err = req.Cache.collect(ctx, signatureKey(repo, sigRepo, resolved.Digest, j.policy), fetch, passes)
		if cached {
			// What a CRL or an OCSP responder says is asked again (within
			// its refresh interval), never taken from the cache.
			j.evidence.Signatures = req.Revocation.Annotate(ctx, j.policy, j.evidence.Signatures)
		}
		j.evidence.Signatures, j.evidence.Attestations = splitAttestations(j.evidence.Signatures)
		res.Cached = res.Cached && cached
		if err != nil {
			j.evidence.Failure = failure(err)
		}
	}
	res.Verdict = res.decide()
	return res
}

// splitAttestations parts what was collected (and cached) together: the
// signatures, and the attestations (Attestation set). Neither shares the
// slice it came from.
func splitAttestations(all []policy.Signature) (sigs, atts []policy.Signature) {
	for _, s := range all {
		if s.Attestation != nil {
			atts = append(atts, s)
		} else {
			sigs = append(sigs, s)
		}
	}
	return sigs, atts
}

// Load reads the chart archive of a Check result by the digest that was
// verified — its layer descriptor comes from the manifest Check read, so
// nothing is resolved again — checks every byte against the descriptor,
// loads it without touching the disk, and judges again with the content as
// evidence. The returned Result has Chart set only when that verdict allows
// an install. Observer sees the verdict only when the content changed it.
// The chart's name and version are evidence too: a Helm provenance file
// must name them.
func Load(ctx context.Context, reg Registry, obs Observer, res Result) Result {
	if !res.Verdict.Allowed() {
		return res
	}
	start := time.Now()
	// The Helm config is read while the chart is (their round trips
	// overlap), and checked after it.
	var (
		config    []byte
		configErr error
		read      = make(chan struct{})
	)
	go func() {
		defer close(read)
		config, configErr = res.cache.blob(ctx, res.repo, res.config, func() ([]byte, error) {
			return reg.Blob(ctx, res.repo, res.config, limits.MaxConfigBytes)
		})
	}()
	c, f := loadChart(ctx, reg, res.cache, res.repo, res.layer)
	<-read
	if f == nil {
		f = checkIdentity(c, res.repo, res.Tag)
	}
	if f == nil && configErr != nil {
		f = failure(fmt.Errorf("helm config %s: %w", res.config.Digest, configErr))
	}
	if f == nil {
		f = checkConfig(config, res.config, c)
	}
	res.judged = slices.Clone(res.judged) // res is the caller's copy; its evidence is not
	for i := range res.judged {
		res.judged[i].evidence.Content = f
		if c != nil {
			res.judged[i].evidence.Chart = &policy.ChartMeta{Name: c.Metadata.Name, Version: c.Metadata.Version}
		}
	}
	res.Verdict = res.decide()
	if f != nil || !res.Verdict.Allowed() {
		// The content failed, or now that it is known the signatures no
		// longer bind it (a provenance file of another version).
		if obs != nil {
			obs.Observe(res.Verdict, time.Since(start))
		}
		return res
	}
	res.Chart = c
	return res
}

// loadChart reads the chart layer by its descriptor (digest and size checked
// as it is read, or earlier when it comes from the cache) and loads it
// without touching the disk.
func loadChart(ctx context.Context, reg Registry, cache *Cache, repo oci.Repository, layer v1.Descriptor) (*helmchart.Chart, *policy.Failure) {
	data, err := cache.blob(ctx, repo, layer, func() ([]byte, error) {
		return reg.Blob(ctx, repo, layer, limits.MaxChartLayerBytes)
	})
	if err != nil {
		return nil, failure(fmt.Errorf("chart layer %s: %w", layer.Digest, err))
	}
	c, err := chart.Load(data)
	if err != nil {
		return nil, failure(err)
	}
	return c, nil
}

// checkIdentity refuses a chart that is not the one its reference names
// (THREATS BND-12): Chart.yaml's name must be the repository's last path
// segment, and, when the version was resolved through a tag, Chart.yaml's
// version must be that tag, written as Helm pushes it ('+' as '_'). Helm
// checks both when it pushes, not when it pulls; a signed archive moved to
// another repository or tag is refused here.
func checkIdentity(c *helmchart.Chart, repo oci.Repository, tag string) *policy.Failure {
	name := path.Base(repo.Path)
	if c.Metadata.Name != name {
		return &policy.Failure{Code: chartproofv1.ReasonInvalidChart, Message: fmt.Sprintf(
			"chart identity: Chart.yaml name %q differs from the repository %s, whose chart name is %q", c.Metadata.Name, repo, name)}
	}
	if tag != "" && strings.ReplaceAll(c.Metadata.Version, "+", "_") != tag {
		return &policy.Failure{Code: chartproofv1.ReasonInvalidChart, Message: fmt.Sprintf(
			"chart identity: Chart.yaml version %q differs from the tag %q it was pulled by", c.Metadata.Version, tag)}
	}
	return nil
}

// checkConfig refuses a chart whose Helm config blob disagrees with its
// Chart.yaml (THREATS BND-12). Helm writes the chart's metadata there, as
// JSON, and tools that list charts read it without the archive; so its name
// and version must be the archive's. data was read by the descriptor of
// the verified manifest, digest and size checked.
func checkConfig(data []byte, config v1.Descriptor, c *helmchart.Chart) *policy.Failure {
	var meta struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := strictjson.Check(data); err != nil {
		return &policy.Failure{Code: chartproofv1.ReasonInvalidChart, Message: fmt.Sprintf("helm config %s: %v", config.Digest, err)}
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return &policy.Failure{Code: chartproofv1.ReasonInvalidChart, Message: fmt.Sprintf("helm config %s: %v", config.Digest, err)}
	}
	if meta.Name != c.Metadata.Name || meta.Version != c.Metadata.Version {
		return &policy.Failure{Code: chartproofv1.ReasonInvalidChart, Message: fmt.Sprintf(
			"chart identity: the Helm config says %s %s, Chart.yaml says %s %s", meta.Name, meta.Version, c.Metadata.Name, c.Metadata.Version)}
	}
	return nil
}

// failure turns an error from gathering evidence into a fact with a reason
// code. Anything not recognised is inconclusive: it denies, as everything
// does, but is counted as an outage rather than an attack.
func failure(err error) *policy.Failure {
	f := &policy.Failure{Message: err.Error()}
	switch {
	case errors.Is(err, oci.ErrDigestMismatch):
		f.Code = chartproofv1.ReasonDigestMismatch
	case errors.Is(err, oci.ErrLimitExceeded), errors.Is(err, chart.ErrLimitExceeded):
		f.Code = chartproofv1.ReasonLimitExceeded
	case errors.Is(err, oci.ErrInvalidManifest):
		f.Code = chartproofv1.ReasonInvalidManifest
	case errors.Is(err, chart.ErrInvalidChart):
		f.Code = chartproofv1.ReasonInvalidChart
	case errors.Is(err, oci.ErrUnauthorized):
		f.Code = chartproofv1.ReasonRegistryUnauthorized
	case errors.Is(err, oci.ErrNotFound):
		f.Code = chartproofv1.ReasonVersionNotFound
	case errors.Is(err, oci.ErrInvalidReference):
		f.Code = chartproofv1.ReasonInvalidSpec
	default: // unavailable, unauthorized, timeouts, cancellations
		f.Code, f.Inconclusive = chartproofv1.ReasonRegistryUnavailable, true
	}
	return f
}

// reference is repo:tag, or repo@digest when the version is a digest.
func reference(repo oci.Repository, version string) string {
	if strings.HasPrefix(version, "sha256:") {
		return repo.String() + "@" + version
	}
	return repo.String() + ":" + version
}
