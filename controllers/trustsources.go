package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/tufroot"
)

// trustSourceIndex indexes policies by the Secrets and ConfigMaps their
// authorities read ("Secret/namespace/name", "ConfigMap/namespace/name").
const trustSourceIndex = ".spec.authorities.sources"

// trustSources lists the objects a policy's trust material comes from. A
// TrustPolicy's references are in its own namespace; a ClusterTrustPolicy's
// name theirs.
func trustSources(policyNamespace string, spec chartproofv1.TrustPolicySpec) []string {
	var out []string
	add := func(kind, namespace, name string) {
		switch {
		case namespace == "":
			namespace = policyNamespace
		case policyNamespace != "" && namespace != policyNamespace:
			// A TrustPolicy reads its own namespace only: Compile refuses
			// the reference, and nothing elsewhere is read or watched.
			return
		}
		out = append(out, kind+"/"+namespace+"/"+name)
	}
	addRoot := func(tr *chartproofv1.TrustedRootReference) {
		if r := tr.SecretRef; r != nil {
			add("Secret", r.Namespace, r.Name)
		}
		if r := tr.ConfigMapRef; r != nil {
			add("ConfigMap", r.Namespace, r.Name)
		}
		if t := tr.TUF; t != nil {
			if t.Root != nil {
				add("ConfigMap", t.Root.Namespace, t.Root.Name)
			}
			if t.ConfigMapRef != nil {
				add("ConfigMap", t.ConfigMapRef.Namespace, t.ConfigMapRef.Name)
			}
		}
	}
	if r := spec.Revocations; r != nil && r.ConfigMapRef != nil {
		add("ConfigMap", r.ConfigMapRef.Namespace, r.ConfigMapRef.Name)
	}
	for _, a := range allAuthorities(spec) {
		for _, tr := range trustedRootsOf(a) {
			addRoot(tr)
		}
		if a.Key != nil && a.Key.SecretRef != nil {
			add("Secret", a.Key.SecretRef.Namespace, a.Key.SecretRef.Name)
		}
		if a.Notation != nil {
			ts := a.Notation.TrustStore
			for _, src := range []*chartproofv1.CertificatesSource{ts.CA, ts.SigningAuthority, ts.TSA} {
				if src != nil && src.ConfigMapRef != nil {
					add("ConfigMap", src.ConfigMapRef.Namespace, src.ConfigMapRef.Name)
				}
			}
		}
		if a.X509 != nil {
			for _, src := range []*chartproofv1.CertificatesSource{&a.X509.Roots, a.X509.Intermediates} {
				if src != nil && src.ConfigMapRef != nil {
					add("ConfigMap", src.ConfigMapRef.Namespace, src.ConfigMapRef.Name)
				}
			}
			if r := a.X509.Revocation; r != nil {
				for _, c := range r.CRLs {
					if c.ConfigMapRef != nil {
						add("ConfigMap", c.ConfigMapRef.Namespace, c.ConfigMapRef.Name)
					}
					if c.SecretRef != nil {
						add("Secret", c.SecretRef.Namespace, c.SecretRef.Name)
					}
				}
			}
		}
		if a.HelmProvenance != nil && a.HelmProvenance.KeyringRef != nil {
			if r := a.HelmProvenance.KeyringRef.SecretRef; r != nil {
				add("Secret", r.Namespace, r.Name)
			}
			if r := a.HelmProvenance.KeyringRef.ConfigMapRef; r != nil {
				add("ConfigMap", r.Namespace, r.Name)
			}
		}
	}
	return out
}

// allAuthorities are a policy's authorities and those of its attestation
// requirements: what they read is read and watched alike.
func allAuthorities(spec chartproofv1.TrustPolicySpec) []chartproofv1.Authority {
	out := slices.Clone(spec.Authorities)
	for _, a := range spec.Attestations {
		out = append(out, a.Authorities...)
	}
	return out
}

// sourceObjects holds the data of the Secrets and ConfigMaps a policy reads,
// fetched before the policy is compiled, so that compiling does no I/O. It
// is the policy.Reader Compile gets.
type sourceObjects struct {
	data map[string]map[string][]byte // "Kind/namespace/name" -> key -> bytes
	errs map[string]error             // "Kind/namespace/name" -> why it could not be read
	tuf  *tufroot.Store               // reads trustedRoot.tuf repositories; nil reads none
}

var _ policy.Reader = sourceObjects{}

// fetchTrustSources reads, from the API server and uncached (chartproof
// does not cache Secret data), every Secret and ConfigMap spec references.
// An object that cannot be read is remembered with its error, which
// Compile then reports as it would any missing reference.
func fetchTrustSources(ctx context.Context, reader client.Reader, tuf *tufroot.Store, policyNamespace string, spec chartproofv1.TrustPolicySpec) sourceObjects {
	objs := sourceObjects{data: map[string]map[string][]byte{}, errs: map[string]error{}, tuf: tuf}
	for _, src := range trustSources(policyNamespace, spec) {
		if _, done := objs.data[src]; done || objs.errs[src] != nil {
			continue
		}
		kind, rest, _ := strings.Cut(src, "/")
		namespace, name, _ := strings.Cut(rest, "/")
		key := types.NamespacedName{Namespace: namespace, Name: name}
		switch kind {
		case "Secret":
			var sec corev1.Secret
			if err := reader.Get(ctx, key, &sec); err != nil {
				objs.errs[src] = err
				continue
			}
			objs.data[src] = sec.Data
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := reader.Get(ctx, key, &cm); err != nil {
				objs.errs[src] = err
				continue
			}
			data := map[string][]byte{}
			for k, v := range cm.BinaryData {
				data[k] = v
			}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			objs.data[src] = data
		}
	}
	return objs
}

// Secret returns one key of a fetched Secret.
func (o sourceObjects) Secret(ref chartproofv1.SecretKeyReference) ([]byte, error) {
	return o.get("Secret", "secret", ref.Namespace, ref.Name, ref.Key)
}

// ConfigMap returns one key of a fetched ConfigMap, from data or binaryData.
func (o sourceObjects) ConfigMap(namespace, name, key string) ([]byte, error) {
	return o.get("ConfigMap", "configmap", namespace, name, key)
}

// TUFTrustedRoot reads a TUF repository's trusted root with the manager's
// TUF client.
func (o sourceObjects) TUFTrustedRoot(repo policy.TUFRepository) (policy.TUFTrustedRoot, error) {
	if o.tuf == nil {
		return policy.TUFTrustedRoot{}, fmt.Errorf("%w: tuf repository %s: the manager runs without a TUF client", policy.ErrTrustedRootUnavailable, repo.Location)
	}
	return o.tuf.TrustedRoot(repo)
}

func (o sourceObjects) get(kind, noun, namespace, name, key string) ([]byte, error) {
	src := kind + "/" + namespace + "/" + name
	if err := o.errs[src]; err != nil {
		return nil, err
	}
	data, ok := o.data[src]
	if !ok {
		// Not among the references trustSources found: a bug, not a
		// missing object; refuse rather than read it here.
		return nil, fmt.Errorf("%s %s/%s was not fetched with the policy", noun, namespace, name)
	}
	b, ok := data[key]
	if !ok {
		return nil, fmt.Errorf("%s %s/%s has no key %q", noun, namespace, name, key)
	}
	return b, nil
}

// indexTrustSources indexes both policy kinds by the Secrets and ConfigMaps
// they read (trustSourceIndex), by whether they have x509 authorities
// (x509Index) and by the TUF repositories they read over HTTP(S)
// (tufIndex).
func indexTrustSources(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.TrustPolicy{}, trustSourceIndex, func(o client.Object) []string {
		return trustSources(o.GetNamespace(), o.(*chartproofv1.TrustPolicy).Spec)
	}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.ClusterTrustPolicy{}, trustSourceIndex, func(o client.Object) []string {
		return trustSources("", o.(*chartproofv1.ClusterTrustPolicy).Spec)
	}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.TrustPolicy{}, x509Index, func(o client.Object) []string {
		return hasX509(o.(*chartproofv1.TrustPolicy).Spec)
	}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.ClusterTrustPolicy{}, x509Index, func(o client.Object) []string {
		return hasX509(o.(*chartproofv1.ClusterTrustPolicy).Spec)
	}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.TrustPolicy{}, tufIndex, func(o client.Object) []string {
		return tufLocations(o.(*chartproofv1.TrustPolicy).Spec)
	}); err != nil {
		return err
	}
	return mgr.GetFieldIndexer().IndexField(ctx, &chartproofv1.ClusterTrustPolicy{}, tufIndex, func(o client.Object) []string {
		return tufLocations(o.(*chartproofv1.ClusterTrustPolicy).Spec)
	})
}

// x509Index indexes policies with an x509 authority under "true": theirs
// are the paths whose CRLs and OCSP answers internal/revocation checks again
// in the background.
const x509Index = ".spec.authorities.x509"

func hasX509(spec chartproofv1.TrustPolicySpec) []string {
	for _, a := range allAuthorities(spec) {
		if a.X509 != nil {
			return []string{"true"}
		}
	}
	return nil
}

// releasesOfX509 maps a change of a revocation status that
// internal/revocation found in the background to the releases of every
// policy with an x509 authority: such changes are rare, and which paths
// each release's evidence holds is not kept.
func (r *VerifiedHelmReleaseReconciler) releasesOfX509(ctx context.Context, _ client.Object) []ctrl.Request {
	return r.releasesOfPolicies(ctx, client.MatchingFields{x509Index: "true"})
}

// tufIndex indexes policies by the URLs of the TUF repositories they read
// over HTTP(S).
const tufIndex = ".spec.authorities.tuf"

// tufLocations lists the URLs of the TUF repositories a policy's trusted
// roots are read from over HTTP(S), as policy.TUFRepository.Location names
// them (an air-gapped copy is a ConfigMap, among trustSources).
func tufLocations(spec chartproofv1.TrustPolicySpec) []string {
	var out []string
	for _, a := range allAuthorities(spec) {
		for _, tr := range trustedRootsOf(a) {
			if tr.TUF == nil || tr.TUF.ConfigMapRef != nil {
				continue
			}
			loc := tr.TUF.URL
			if loc == "" {
				loc = policy.PublicGoodTUF
			}
			if !slices.Contains(out, loc) {
				out = append(out, loc)
			}
		}
	}
	return out
}

// trustedRootsOf lists the trusted root references of an authority: a
// logged key's, a keyless authority's, an x509 authority's.
func trustedRootsOf(a chartproofv1.Authority) []*chartproofv1.TrustedRootReference {
	var out []*chartproofv1.TrustedRootReference
	if a.Key != nil && a.Key.TrustedRoot != nil {
		out = append(out, a.Key.TrustedRoot)
	}
	if a.Keyless != nil && a.Keyless.TrustedRoot != nil {
		out = append(out, a.Keyless.TrustedRoot)
	}
	if a.X509 != nil && a.X509.TrustedRoot != nil {
		out = append(out, a.X509.TrustedRoot)
	}
	return out
}

// releasesOfTUF maps a TUF repository whose trusted root changed (an object
// named by its URL) to the releases whose policy reads it.
func (r *VerifiedHelmReleaseReconciler) releasesOfTUF(ctx context.Context, o client.Object) []ctrl.Request {
	return r.releasesOfPolicies(ctx, client.MatchingFields{tufIndex: o.GetName()})
}

// releasesOfPolicies maps the policies of both kinds that an index value
// selects to their releases.
func (r *VerifiedHelmReleaseReconciler) releasesOfPolicies(ctx context.Context, key client.MatchingFields) []ctrl.Request {
	var reqs []ctrl.Request
	var tps chartproofv1.TrustPolicyList
	if err := r.List(ctx, &tps, key); err != nil {
		log.FromContext(ctx).Error(err, "listing the policies of a trust source", "source", key)
		return nil
	}
	for i := range tps.Items {
		reqs = append(reqs, r.releasesOfPolicy("TrustPolicy")(ctx, &tps.Items[i])...)
	}
	var ctps chartproofv1.ClusterTrustPolicyList
	if err := r.List(ctx, &ctps, key); err != nil {
		log.FromContext(ctx).Error(err, "listing the cluster policies of a trust source", "source", key)
		return nil
	}
	for i := range ctps.Items {
		reqs = append(reqs, r.releasesOfPolicy("ClusterTrustPolicy")(ctx, &ctps.Items[i])...)
	}
	return reqs
}

// The manager reads, with its own identity, the Secrets and ConfigMaps of
// trust (a policy's keys and trusted roots), and watches their metadata, each
// by name (SourceWatches); it writes none. A release's own Secrets (values,
// registry credentials) are read as the release's ServiceAccount.
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch

// sourceKey is the trustSourceIndex value of a Secret or ConfigMap.
func sourceKey(kind string, o client.Object) client.MatchingFields {
	return client.MatchingFields{trustSourceIndex: kind + "/" + o.GetNamespace() + "/" + o.GetName()}
}

// valuesIndex indexes releases by the ConfigMaps and Secrets they read
// values from (valuesKeys).
const valuesIndex = ".spec.valuesFrom"

// releasesOfValues maps a ConfigMap or Secret to the releases that read
// values from it: not a change of trust; each reconciles as usual.
func (r *VerifiedHelmReleaseReconciler) releasesOfValues(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []ctrl.Request {
		var list chartproofv1.VerifiedHelmReleaseList
		if err := r.List(ctx, &list, client.MatchingFields{valuesIndex: kind + "/" + o.GetNamespace() + "/" + o.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "listing the releases of a values source")
			return nil
		}
		return requestsFor(list)
	}
}

// releasesOfSource maps a Secret or ConfigMap to the releases whose policy
// reads it.
func (r *VerifiedHelmReleaseReconciler) releasesOfSource(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []ctrl.Request {
		return r.releasesOfPolicies(ctx, sourceKey(kind, o))
	}
}

// Setup registers chartproof's reconcilers on mgr: the VerifiedHelmRelease
// reconciler r, and the status reconcilers of both policy kinds, with the
// indexes and the trust-source watches they share.
func Setup(mgr ctrl.Manager, r *VerifiedHelmReleaseReconciler, opts controller.Options) error {
	if err := indexTrustSources(context.Background(), mgr); err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(mgr.GetConfig())
	if err != nil {
		return err
	}
	r.Sources = NewSourceWatches(meta)
	if err := mgr.Add(r.Sources); err != nil {
		return err
	}
	r.Values = NewValuesWatches(meta)
	if err := mgr.Add(r.Values); err != nil {
		return err
	}
	if err := r.SetupWithManager(mgr, opts); err != nil {
		return err
	}
	for _, cluster := range []bool{false, true} {
		tp := &TrustPolicyReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Cluster: cluster, Sources: r.Sources}
		if err := tp.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return nil
}
