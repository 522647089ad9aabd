// Package selftest measures a trust policy's false-allow rate in the user's
// own registry (`chartproof selftest`): it pushes a chart signed with the
// key the policy is meant to trust (the control, which must be allowed),
// then the attacks chartproof exists to refuse, each a variant of that
// chart, and judges every one with the same code `chartproof verify` and the
// controller run (internal/gate). An attack the policy allows is a false
// allow.
//
// The attacks (docs/security.md names the threats): the chart unsigned;
// signed by a key the policy must not trust (a fresh one, and each
// --untrusted-key); the control's signature copied onto a changed chart; a
// signed chart's version tag moved to a changed, unsigned one, judged before
// and after through a verification cache as the controller's; and, signed
// with the trusted key so that only the checks of signed content can refuse
// them, the control's chart under a Helm config naming another version, a
// manifest with a second chart layer, and a chart archive with a path that
// leaves the chart.
//
// Every tag a run pushes names the run (control-<run>, <version>-selftest.<run>,
// ...), so nothing already in the repository is moved or overwritten; what
// it pushed stays there, some of it signed with the trusted key.
//
// Signatures are written in cosign's legacy layout (a simple-signing payload
// under the sha256-<hex>.sig tag), which chartproof reads like cosign's
// bundles; a policy that requires a transparency log entry or a keyless
// identity cannot be measured this way, and says so by refusing the control.
package selftest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"sigs.k8s.io/yaml"

	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/tgz"
	"github.com/chartproof/chartproof/internal/verify"
)

// Media types of what the self-test pushes: a Helm chart as Helm pushes it,
// and a cosign legacy signature.
const (
	helmConfigType    = "application/vnd.cncf.helm.config.v1+json"
	helmChartType     = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	simpleSigningType = "application/vnd.dev.cosign.simplesigning.v1+json"
	signatureKey      = "dev.cosignproject.cosign/signature"
	variantKey        = "dev.chartproof.selftest/variant"
)

// Options says what to test and where.
type Options struct {
	// Repository is the scratch place (oci://host[:port]/path) the
	// variants are pushed to: the repository Repository/<chart name>,
	// under tags of their own. The policy must cover it.
	Repository string
	Policy     *policy.Policy
	Verifier   *verify.Verifier
	// Trusted signs the control and the attacks only the checks of signed
	// content can refuse: the key the policy is meant to trust.
	Trusted signature.Signer
	// Untrusted are keys the policy must not trust (another team's, a
	// staging key); a fresh key is always added.
	Untrusted map[string]signature.Signer
	// Client reads as `chartproof verify` does; Remote writes (auth,
	// transport). PlainHTTP is the registry's scheme for both.
	Client    *oci.Client
	Remote    []remote.Option
	PlainHTTP bool
}

// Case is one chart the policy judged.
type Case struct {
	Name   string `json:"name"`
	Attack string `json:"attack"` // what it tries; "" for the control
	Ref    string `json:"ref"`    // oci://...@digest, or :version for the moved tag
	Digest string `json:"digest"` // what the tag resolved to
	// Allowed: the verdict would install it (passed, or audited).
	Allowed      bool   `json:"allowed"`
	Reason       string `json:"reason"`
	Message      string `json:"message"`
	Inconclusive bool   `json:"inconclusive,omitempty"`
}

// Report is the control and the attacks, judged.
type Report struct {
	Control Case `json:"control"`
	// MovedTagBefore is the moved tag's chart judged before the tag
	// moves: a second control, which must be allowed too.
	MovedTagBefore Case   `json:"movedTagBefore"`
	Attacks        []Case `json:"attacks"`
	FalseAllows    int    `json:"falseAllows"`
}

// Judgeable says whether the report measures the policy: the controls were
// allowed and no verdict was inconclusive.
func (r Report) Judgeable() bool {
	for _, c := range []Case{r.Control, r.MovedTagBefore} {
		if !c.Allowed || c.Inconclusive {
			return false
		}
	}
	for _, c := range r.Attacks {
		if c.Inconclusive {
			return false
		}
	}
	return true
}

// Run pushes the control and the attacks to o.Repository and judges each.
// Every tag it pushes is new (it names the run), so nothing already in the
// repository is moved or overwritten. An error is a failure to push; a
// refused control or an inconclusive verdict is in the Report (Judgeable).
func Run(ctx context.Context, o Options, chartArchive []byte, chartName, chartVersion string) (Report, error) {
	// Helm names a chart's repository after the chart, and chartproof
	// checks that it does.
	repo, err := oci.ParseRepository(strings.TrimSuffix(o.Repository, "/") + "/" + chartName)
	if err != nil {
		return Report{}, err
	}
	var nameOpts []name.Option
	if o.PlainHTTP {
		nameOpts = append(nameOpts, name.Insecure)
	}
	target, err := name.NewRepository(repo.String(), nameOpts...)
	if err != nil {
		return Report{}, err
	}
	w := &writer{repo: target, remote: append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)}
	fresh, err := newKey()
	if err != nil {
		return Report{}, err
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Report{}, err
	}
	run := hex.EncodeToString(id[:])
	tag := func(name string) string { return name + "-" + run }

	changed, err := withTemplate(chartArchive, chartName, "templates/chartproof-selftest-injected.yaml",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chartproof-selftest-injected\ndata:\n  injected: \"a template the signer never saw\"\n")
	if err != nil {
		return Report{}, fmt.Errorf("the chart archive: %w", err)
	}
	// chart is a Helm chart manifest whose config names chartName at
	// version, with one layer per archive; variant makes its digest its
	// own.
	chart := func(variant, version string, layers ...[]byte) manifest {
		config := []byte(fmt.Sprintf(`{"name":%q,"version":%q,"apiVersion":"v2"}`, chartName, version))
		m := manifest{config: blob{helmConfigType, config}, annotations: map[string]string{variantKey: variant}}
		for _, l := range layers {
			m.layers = append(m.layers, blob{helmChartType, l})
		}
		return m
	}
	judge := func(name, what, version string, cache *gate.Cache) Case {
		res := gate.Check(ctx, o.Client, nil, gate.Request{URL: "oci://" + repo.String(), Version: version, Policy: o.Policy, Verifier: o.Verifier, Cache: cache})
		res = gate.Load(ctx, o.Client, nil, res)
		ref := "oci://" + repo.String() + ":" + version
		if strings.HasPrefix(version, "sha256:") {
			ref = "oci://" + repo.String() + "@" + version
		}
		return Case{Name: name, Attack: what, Ref: ref, Digest: res.Digest,
			Allowed: res.Verdict.Allowed(), Reason: res.Verdict.Code(), Message: res.Verdict.Message(), Inconclusive: res.Verdict.Inconclusive}
	}

	// The control: the chart signed with the trusted key.
	control, err := w.push(tag("control"), chart("control", chartVersion, chartArchive))
	if err != nil {
		return Report{}, err
	}
	controlSig, err := w.sign(control, o.Trusted)
	if err != nil {
		return Report{}, err
	}
	report := Report{Control: judge("control", "", control, nil)}

	// Each attack pushes its variant and returns its digest, to judge it
	// by as a release pinned to a digest would; the moved tag judges
	// itself (run), before and after the move.
	type attack struct {
		name, what string
		build      func(tag string) (string, error)
		run        func(tag string) (Case, error)
	}
	pushSigned := func(tag string, m manifest, k signature.Signer) (string, error) {
		d, err := w.push(tag, m)
		if err != nil {
			return "", err
		}
		_, err = w.sign(d, k)
		return d, err
	}
	attacks := []attack{
		{name: "unsigned", what: "the chart with no signature at all", build: func(tag string) (string, error) {
			return w.push(tag, chart(tag, chartVersion, chartArchive))
		}},
	}
	type namedKey struct {
		name string
		key  signature.Signer
	}
	untrusted := []namedKey{{"a fresh key", fresh}}
	for _, n := range sortedKeys(o.Untrusted) {
		untrusted = append(untrusted, namedKey{n, o.Untrusted[n]})
	}
	for i, k := range untrusted {
		attacks = append(attacks, attack{name: fmt.Sprintf("other-key-%d", i+1), what: "the chart signed by " + k.name + ", which the policy must not trust", build: func(tag string) (string, error) {
			return pushSigned(tag, chart(tag, chartVersion, chartArchive), k.key)
		}})
	}
	attacks = append(attacks,
		attack{name: "copied-signature", what: "the control's signature copied onto a chart with a template added", build: func(tag string) (string, error) {
			d, err := w.push(tag, chart(tag, chartVersion, changed))
			if err != nil {
				return "", err
			}
			return d, w.putSignature(d, controlSig)
		}},
		attack{name: "tag-moved", what: "a signed chart's version tag moved to a changed, unsigned chart, judged before and after through the controller's cache", run: func(tag string) (Case, error) {
			// Helm's tag is the chart's version, and chartproof checks
			// that it is: both charts are this run's own version.
			version := chartVersion + "-selftest." + run
			signed, err := withVersion(chartArchive, chartName, version)
			if err != nil {
				return Case{}, err
			}
			moved, err := withVersion(changed, chartName, version)
			if err != nil {
				return Case{}, err
			}
			if _, err := pushSigned(version, chart(tag+"-signed", version, signed), o.Trusted); err != nil {
				return Case{}, err
			}
			cache := gate.NewCache(time.Minute)
			report.MovedTagBefore = judge("tag-moved-before", "the signed chart under the tag before it moves (must be allowed)", version, cache)
			if _, err := w.push(version, chart(tag, version, moved)); err != nil {
				return Case{}, err
			}
			return judge("tag-moved", "", version, cache), nil
		}},
		attack{name: "identity-mismatch", what: "the control's chart under a Helm config naming another version, signed with the trusted key", build: func(tag string) (string, error) {
			return pushSigned(tag, chart(tag, chartVersion+"-other", chartArchive), o.Trusted)
		}},
		attack{name: "second-chart-layer", what: "a manifest with the signed chart layer and a second, changed one, signed with the trusted key", build: func(tag string) (string, error) {
			return pushSigned(tag, chart(tag, chartVersion, chartArchive, changed), o.Trusted)
		}},
		attack{name: "hostile-archive", what: "a chart archive whose file escapes the chart (../), signed with the trusted key", build: func(tag string) (string, error) {
			hostile, err := hostileArchive(chartName, chartVersion)
			if err != nil {
				return "", err
			}
			return pushSigned(tag, chart(tag, chartVersion, hostile), o.Trusted)
		}},
	)

	for _, a := range attacks {
		var c Case
		if a.run != nil {
			c, err = a.run(tag(a.name))
		} else {
			var digest string
			if digest, err = a.build(tag(a.name)); err == nil {
				c = judge(a.name, "", digest, nil)
			}
		}
		if err != nil {
			return report, fmt.Errorf("%s: %w", a.name, err)
		}
		c.Name, c.Attack = a.name, a.what
		if c.Allowed {
			report.FalseAllows++
		}
		report.Attacks = append(report.Attacks, c)
	}
	return report, nil
}

// writer pushes manifests, blobs and signatures to one repository.
type writer struct {
	repo   name.Repository
	remote []remote.Option
}

type blob struct {
	mediaType string
	data      []byte
}

type manifest struct {
	config      blob
	layers      []blob
	annotations map[string]string
}

// push uploads m's blobs and m under tag, and returns m's digest.
func (w *writer) push(tag string, m manifest) (string, error) {
	doc := struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Config        v1.Descriptor     `json:"config"`
		Layers        []v1.Descriptor   `json:"layers"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}{SchemaVersion: 2, MediaType: string(types.OCIManifestSchema1), Annotations: m.annotations, Layers: []v1.Descriptor{}}
	var err error
	if doc.Config, err = w.blob(m.config, nil); err != nil {
		return "", err
	}
	for _, l := range m.layers {
		d, err := w.blob(l, nil)
		if err != nil {
			return "", err
		}
		doc.Layers = append(doc.Layers, d)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	if err := remote.Put(w.repo.Tag(tag), rawManifest(raw), w.remote...); err != nil {
		return "", fmt.Errorf("pushing %s:%s: %w", w.repo, tag, err)
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// blob uploads b and returns its descriptor.
func (w *writer) blob(b blob, annotations map[string]string) (v1.Descriptor, error) {
	l := static.NewLayer(b.data, types.MediaType(b.mediaType))
	if err := remote.WriteLayer(w.repo, l, w.remote...); err != nil {
		return v1.Descriptor{}, fmt.Errorf("pushing a blob to %s: %w", w.repo, err)
	}
	d, _ := l.Digest()
	return v1.Descriptor{MediaType: types.MediaType(b.mediaType), Size: int64(len(b.data)), Digest: d, Annotations: annotations}, nil
}

// legacySignature is one signature in cosign's legacy layout: the signed
// simple-signing payload and the signature over it.
type legacySignature struct {
	payload, sig []byte
}

// sign signs digest with k as cosign's legacy layout does and returns the
// signature.
func (w *writer) sign(digest string, k signature.Signer) (legacySignature, error) {
	p, err := json.Marshal(payload.Cosign{Image: w.repo.Digest(digest), ClaimedIdentity: w.repo.String()})
	if err != nil {
		return legacySignature{}, err
	}
	sig, err := k.SignMessage(bytes.NewReader(p))
	if err != nil {
		return legacySignature{}, err
	}
	s := legacySignature{payload: p, sig: sig}
	return s, w.putSignature(digest, s)
}

// putSignature writes s under digest's legacy signature tag, as cosign
// does, whatever digest s names.
func (w *writer) putSignature(digest string, s legacySignature) error {
	layer, err := w.blob(blob{simpleSigningType, s.payload}, map[string]string{signatureKey: base64.StdEncoding.EncodeToString(s.sig)})
	if err != nil {
		return err
	}
	cfg, err := w.blob(blob{string(types.OCIConfigJSON), []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)}, nil)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": cfg, "layers": []v1.Descriptor{layer}})
	if err != nil {
		return err
	}
	tag := strings.Replace(digest, ":", "-", 1) + ".sig"
	if err := remote.Put(w.repo.Tag(tag), rawManifest(raw), w.remote...); err != nil {
		return fmt.Errorf("pushing the signature %s:%s: %w", w.repo, tag, err)
	}
	return nil
}

// rawManifest is manifest bytes to put as they are.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// newKey returns a fresh ECDSA P-256 signer: a key nobody trusts.
func newKey() (signature.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return signature.LoadECDSASignerVerifier(k, crypto.SHA256)
}

// withTemplate returns the chart archive with one more file under the
// chart's directory.
func withTemplate(archive []byte, chartName, path, content string) ([]byte, error) {
	return tgz.Rewrite(archive, nil, tgz.File{Name: chartName + "/" + path, Data: []byte(content)})
}

// withVersion returns the chart archive with its Chart.yaml's version set
// to version.
func withVersion(archive []byte, chartName, version string) ([]byte, error) {
	return tgz.Rewrite(archive, func(hdr *tar.Header, data []byte) ([]byte, error) {
		if hdr.Name != chartName+"/Chart.yaml" {
			return data, nil
		}
		var meta map[string]any
		if err := yaml.Unmarshal(data, &meta); err != nil {
			return nil, fmt.Errorf("Chart.yaml: %w", err)
		}
		meta["version"] = version
		return yaml.Marshal(meta)
	})
}

// hostileArchive is a chart archive with a file whose path leaves the
// chart's directory.
func hostileArchive(chartName, version string) ([]byte, error) {
	return tgz.Write([]tgz.File{
		{Name: chartName + "/Chart.yaml", Data: fmt.Appendf(nil, "apiVersion: v2\nname: %s\nversion: %s\n", chartName, version)},
		{Name: chartName + "/../../../etc/chartproof-selftest", Data: []byte("written outside the chart\n")},
	}, time.Unix(0, 0))
}

func sortedKeys(m map[string]signature.Signer) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SampleChart is the chart the self-test pushes when given none: one
// ConfigMap.
func SampleChart() (archive []byte, chartName, version string, err error) {
	chartName, version = "chartproof-selftest", "0.1.0"
	archive, err = tgz.Write([]tgz.File{
		{Name: chartName + "/Chart.yaml", Data: fmt.Appendf(nil, "apiVersion: v2\nname: %s\nversion: %s\ndescription: the chart chartproof selftest signs and tampers with\n", chartName, version)},
		{Name: chartName + "/values.yaml", Data: []byte("message: verified\n")},
		{Name: chartName + "/templates/configmap.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-selftest\ndata:\n  message: {{ .Values.message | quote }}\n")},
	}, time.Unix(0, 0))
	return archive, chartName, version, err
}
