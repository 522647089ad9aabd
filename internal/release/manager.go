package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

var (
	// ErrNotFound means the release has no record in its namespace.
	ErrNotFound = errors.New("release not found")
	// ErrPending means the latest record of the release is pending-install,
	// pending-upgrade, pending-rollback or uninstalling: another operation is
	// under way, or was interrupted and left the release half done
	// (Recover repairs it).
	ErrPending = errors.New("release has an operation in progress")
	// ErrNotOwned means the latest record of the release does not carry the
	// owner of the call (its chartproofv1.LabelOwner label): chartproof did
	// not install it for this VerifiedHelmRelease, and leaves it alone.
	ErrNotOwned = errors.New("release is not owned by this VerifiedHelmRelease")
)

const (
	// defaultTimeout is the timeout of a Helm action when Options.Timeout
	// is zero.
	defaultTimeout = 5 * time.Minute
	// maxHistory is how many revisions of a release an upgrade keeps.
	maxHistory = 10
)

// FieldManager is the field manager of every object chartproof writes:
// Helm's installs and upgrades, and drift corrections. Helm v3 reads it from
// a package variable, so it is set for the whole process.
const FieldManager = "chartproof"

func init() { kube.ManagedFieldsManager = FieldManager }

// Options configure a Manager.
type Options struct {
	// Timeout bounds each Helm action: how long Helm waits for its hooks to
	// complete. Zero or negative means 5 minutes.
	Timeout time.Duration
	// Discovery and Mapper, when both are set, are used instead of a
	// discovery client of the Manager's own, so that Managers of several
	// identities share one cache of the API's groups and kinds. Nil means
	// built from the config on first use.
	Discovery discovery.CachedDiscoveryInterface
	Mapper    meta.ResettableRESTMapper
}

// Manager installs, upgrades, reads and uninstalls Helm releases on one
// cluster. It is safe for concurrent use, but the caller must not run two
// operations on the same release at once: like the helm CLI, Helm's storage
// is the only lock, and a second Apply fails with ErrPending or a conflict.
type Manager struct {
	config  *rest.Config
	timeout time.Duration
	shared  *clients // Options.Discovery and Mapper, without a clientset

	mu      sync.Mutex
	clients *clients // built on first use; nil until it succeeds
}

// clients are shared by every call of one Manager.
type clients struct {
	clientset kubernetes.Interface
	dynamic   dynamic.Interface
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.ResettableRESTMapper
}

// NewManager returns a Manager that talks to the cluster of cfg. No request
// is made until the first call.
func NewManager(cfg *rest.Config, opts Options) *Manager {
	m := &Manager{timeout: opts.Timeout}
	if cfg != nil {
		m.config = rest.CopyConfig(cfg)
	}
	if m.timeout <= 0 {
		m.timeout = defaultTimeout
	}
	if opts.Discovery != nil && opts.Mapper != nil {
		m.shared = &clients{discovery: opts.Discovery, mapper: opts.Mapper}
	}
	return m
}

// ActingAs is the user the Manager's requests impersonate ("" when they are
// made as the config's own identity).
func (m *Manager) ActingAs() string {
	if m.config == nil {
		return ""
	}
	return m.config.Impersonate.UserName
}

// Stamp is what the post-renderer writes on every rendered (non-hook) object
// as annotations: delivery.chartproof.dev/release = Release ("namespace/name"
// of the VerifiedHelmRelease), delivery.chartproof.dev/chart-digest = Digest.
// Owner, the VerifiedHelmRelease's UID, labels every release record Apply
// writes (chartproofv1.LabelOwner).
type Stamp struct {
	Release, Digest, Owner string
}

// Location is where a Helm release is: Namespace holds its objects (Helm's
// --namespace), Storage its records ("" is Namespace, as with the helm CLI).
type Location struct {
	Namespace, Storage string
}

// storage is the namespace of the records.
func (l Location) storage() string {
	if l.Storage != "" {
		return l.Storage
	}
	return l.Namespace
}

// Request is what Apply installs.
type Request struct {
	// Namespace and Name of the Helm release. The namespace must exist.
	Namespace, Name string
	// StorageNamespace is where its records go; "" is Namespace.
	StorageNamespace string
	// Chart is the verified chart, loaded in memory by the caller. Helm
	// modifies it while rendering (it removes disabled dependencies and
	// imports values), so it must not be reused for another Apply.
	Chart *chart.Chart
	// Values are all the values the chart is rendered with; nil means the
	// chart's defaults.
	Values map[string]any
	// Stamp is written on every object rendered, and its Owner on the
	// release records. Every field is required.
	Stamp Stamp
	// Adopt upgrades a release whose latest record has the owner AdoptFrom
	// ("" for none) and makes it Stamp.Owner's. A release of any other owner,
	// or any release without Adopt, is refused with ErrNotOwned and nothing
	// changes: an owner that claimed the release after the caller looked
	// keeps it.
	Adopt     bool
	AdoptFrom string
	// Trusted is the record the caller installed and vouches for, nil when
	// it installed none. An upgrade diffs the new objects against the
	// deployed record and deletes what only that record lists, so with
	// Trusted set Apply upgrades only when the deployed record is that one
	// (checkTrusted), and otherwise refuses with ErrRecordTampered.
	Trusted *Trust
	// Replace drops every record of the release and installs the chart
	// afresh, as revision 1 (a pending release is still refused with
	// ErrPending): the repair of a release whose records cannot
	// be trusted (ErrRecordTampered). No record decides anything: objects
	// only a record listed are left as they are, and the chart's own
	// objects are taken over again (Helm takes over objects that carry its
	// annotations for this release).
	Replace bool
	// Timeout bounds the action (its hooks included); 0 is the Manager's
	// Options.Timeout.
	Timeout time.Duration
	// CreateNamespace lets an install create Namespace, as the Manager's
	// identity.
	CreateNamespace bool
	// DisableInstallHooks and DisableUpgradeHooks run an install or an
	// upgrade without the chart's hooks.
	DisableInstallHooks, DisableUpgradeHooks bool
	// MaxHistory is how many revisions an upgrade keeps; 0 is 10.
	MaxHistory int
	// PostRenderers change what the chart rendered, in order, before the
	// Stamp is written on it.
	PostRenderers []chartproofv1.PostRenderer
	// Force upgrades with Helm's replacement strategy (helm upgrade --force).
	Force bool
	// InstallCRDs and UpgradeCRDs are what an install and an upgrade do
	// with the CustomResourceDefinitions in the chart's crds/ directories
	// (applyCRDs): "" is Create for an install, Skip for an upgrade, as
	// Helm does.
	InstallCRDs, UpgradeCRDs chartproofv1.CRDsPolicy
}

// actionTimeout is how long the action of req may take.
func (m *Manager) actionTimeout(req Request) time.Duration {
	if req.Timeout > 0 {
		return req.Timeout
	}
	return m.timeout
}

func (r Request) validate() error {
	switch {
	case r.Namespace == "":
		return errors.New("no namespace")
	case r.Name == "":
		return errors.New("no release name")
	case r.Chart == nil || r.Chart.Metadata == nil:
		return errors.New("no chart")
	case r.Stamp.Digest == "":
		return errors.New("stamp has no chart digest")
	case r.Stamp.Owner == "":
		return errors.New("stamp has no owner")
	}
	if ns, name, ok := strings.Cut(r.Stamp.Release, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("stamp release %q is not namespace/name", r.Stamp.Release)
	}
	return nil
}

// Get returns the latest release record, or an error wrapping ErrNotFound.
// namespace is the namespace of the records (Location.Storage, when the
// release has one), as for every method that reads or writes records only.
// The record is returned whatever its status: deployed, failed, pending or
// uninstalled (when its history was kept).
func (m *Manager) Get(ctx context.Context, namespace, name string) (*release.Release, error) {
	cfg, err := m.configuration(ctx, Location{Namespace: namespace}, name)
	if err != nil {
		return nil, fmt.Errorf("release: get %s/%s: %w", namespace, name, err)
	}
	rel, err := latest(cfg, name)
	if err != nil {
		return nil, fmt.Errorf("release: get %s/%s: %w", namespace, name, err)
	}
	return rel, nil
}

// GetRevision returns revision version of the Helm release name, read by
// its record's name: one GET, where Get lists every record of the release.
// It says nothing of later revisions: the caller knows the latest from
// elsewhere (the manager's watch of the records).
func (m *Manager) GetRevision(ctx context.Context, namespace, name string, version int) (*release.Release, error) {
	cfg, err := m.configuration(ctx, Location{Namespace: namespace}, name)
	if err != nil {
		return nil, fmt.Errorf("release: get %s/%s revision %d: %w", namespace, name, version, err)
	}
	rel, err := cfg.Releases.Get(name, version)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("release: get %s/%s revision %d: %w", namespace, name, version, err)
	}
	return rel, nil
}

// Owner returns the owner a release record carries (chartproofv1.LabelOwner),
// "" when it has none: the record was not written by chartproof. Records are
// Secrets; whoever can write Secrets in the namespace can write this label
// too, so it tells releases apart, it does not authenticate them.
func Owner(rel *release.Release) string {
	if rel == nil {
		return ""
	}
	return rel.Labels[chartproofv1.LabelOwner]
}

// Apply installs the chart when there is no release, upgrades otherwise;
// returns the new release.
//
// A release whose latest record is not owned by req.Stamp.Owner is not
// touched, unless req.Adopt: Apply returns an error wrapping ErrNotOwned.
//
// A release whose latest record is "uninstalled" (helm uninstall
// --keep-history) is installed again, as its next revision. A release whose
// latest record is pending, or uninstalling, is left alone: Apply returns an
// error wrapping ErrPending.
//
// When ctx ends before Helm is done, Apply returns ctx's error but Helm goes
// on in the background (Helm v3's RunWithContext), and the release may stay
// pending; the next Apply then returns ErrPending. Give ctx the time an
// install takes: Options.Timeout bounds Helm's own waiting.
func (m *Manager) Apply(ctx context.Context, req Request) (*release.Release, error) {
	if err := req.validate(); err != nil {
		return nil, fmt.Errorf("release: apply %s/%s: %w", req.Namespace, req.Name, err)
	}
	cfg, err := m.configuration(ctx, Location{Namespace: req.Namespace, Storage: req.StorageNamespace}, req.Name)
	if err != nil {
		return nil, fmt.Errorf("release: apply %s/%s: %w", req.Namespace, req.Name, err)
	}
	last, err := latest(cfg, req.Name)
	var rel *release.Release
	switch {
	case errors.Is(err, ErrNotFound):
		rel, err = m.install(ctx, cfg, req, false)
	case err != nil:
		// Reading the history failed; returned below.
	case checkOwner(last, req.owners()...) != nil:
		err = checkOwner(last, req.owners()...)
	case last.Info.Status.IsPending() || last.Info.Status == release.StatusUninstalling:
		// Another operation may be under way, Replace or not: Helm's
		// records are the only lock. Recover unlocks an interrupted one.
		err = fmt.Errorf("revision %d is %s: %w", last.Version, last.Info.Status, ErrPending)
	case req.Replace:
		rel, err = m.reinstall(ctx, cfg, req)
	case last.Info.Status == release.StatusUninstalled:
		rel, err = m.install(ctx, cfg, req, true)
	default:
		deployed := true
		if req.Trusted != nil {
			err = checkTrusted(cfg, req.Name, *req.Trusted)
			if errors.Is(err, errNotDeployed) {
				deployed, err = false, nil
			}
		} else {
			_, derr := cfg.Releases.Deployed(req.Name)
			switch {
			case errors.Is(derr, driver.ErrNoDeployedReleases):
				deployed = req.Adopt // an adopted release's records are what is adopted
			case derr != nil:
				err = fmt.Errorf("reading the deployed revision: %w", derr)
			}
		}
		switch {
		case err != nil:
		case !deployed:
			// Helm would upgrade from the latest record, which nothing
			// vouches for (an interrupted or failed install): the
			// records are dropped and the chart installed afresh.
			rel, err = m.reinstall(ctx, cfg, req)
		default:
			rel, err = m.upgrade(ctx, cfg, req)
		}
	}
	if err != nil {
		return failedRecord(cfg, rel), fmt.Errorf("release: apply %s/%s: %w", req.Namespace, req.Name, err)
	}
	return rel, nil
}

// failedRecord is the release Helm returned with its error when Helm
// stored it as the record of the failed action: the record at its revision
// is that release (StoredDigest). nil otherwise: Helm also returns what it
// rendered when rendering failed, stored nowhere.
func failedRecord(cfg *action.Configuration, rel *release.Release) *release.Release {
	if rel == nil || rel.Info == nil || rel.Info.Status != release.StatusFailed {
		return nil
	}
	stored, err := cfg.Releases.Get(rel.Name, rel.Version)
	if err != nil {
		return nil
	}
	want, err := StoredDigest(rel)
	if err != nil {
		return nil
	}
	if got, err := RecordDigest(stored); err != nil || got != want {
		return nil
	}
	return rel
}

// install runs helm install. replace reuses the name of a release that was
// uninstalled with its history kept.
func (m *Manager) install(ctx context.Context, cfg *action.Configuration, req Request, replace bool) (*release.Release, error) {
	crds := req.InstallCRDs
	if crds == "" {
		crds = chartproofv1.CRDsCreate
	}
	if err := m.applyCRDs(ctx, req, crds); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	postRenderer, err := m.postRenderer(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	install := action.NewInstall(cfg)
	install.SkipCRDs = true // applied above, stamped
	install.Namespace = req.Namespace
	install.ReleaseName = req.Name
	install.CreateNamespace = req.CreateNamespace
	install.DisableHooks = req.DisableInstallHooks
	install.Wait = false
	install.Atomic = false
	install.Replace = replace
	install.Timeout = m.actionTimeout(req)
	install.PostRenderer = postRenderer
	install.Labels = ownerLabels(req.Stamp.Owner)
	rel, err := install.RunWithContext(ctx, req.Chart, req.Values)
	if err != nil {
		return rel, fmt.Errorf("install: %w", err)
	}
	return rel, nil
}

// upgrade runs helm upgrade --reset-values: the release is rendered with
// exactly req.Values, never with values of an earlier revision.
func (m *Manager) upgrade(ctx context.Context, cfg *action.Configuration, req Request) (*release.Release, error) {
	if err := m.applyCRDs(ctx, req, req.UpgradeCRDs); err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	postRenderer, err := m.postRenderer(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = req.Namespace
	upgrade.MaxHistory = maxHistory
	if req.MaxHistory > 0 {
		upgrade.MaxHistory = req.MaxHistory
	}
	upgrade.DisableHooks = req.DisableUpgradeHooks
	upgrade.Force = req.Force
	upgrade.Wait = false
	upgrade.Atomic = false
	upgrade.ResetValues = true
	upgrade.Timeout = m.actionTimeout(req)
	upgrade.PostRenderer = postRenderer
	upgrade.Labels = ownerLabels(req.Stamp.Owner)
	rel, err := upgrade.RunWithContext(ctx, req.Name, req.Chart, req.Values)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	return rel, nil
}

// postRenderer is req's post-renderers, its stamp, then the preflight:
// what the preflight checks is exactly what Helm is about to write.
func (m *Manager) postRenderer(ctx context.Context, req Request) (renderChain, error) {
	c, err := m.sharedClients()
	if err != nil {
		return nil, err
	}
	return append(req.postRenderer(), preflighter{
		ctx:       ctx,
		reviews:   c.clientset.AuthorizationV1().SelfSubjectAccessReviews(),
		mapper:    c.mapper,
		namespace: req.Namespace,
	}), nil
}

// owners are the owners whose release Apply may act on: the stamp's, and,
// when adopting, the one the release is adopted from ("" for none).
func (r Request) owners() []string {
	if r.Adopt {
		return []string{r.Stamp.Owner, r.AdoptFrom}
	}
	return []string{r.Stamp.Owner}
}

// checkOwner returns an error wrapping ErrNotOwned unless rel carries one of
// owners (an empty owner matches a record without one).
func checkOwner(rel *release.Release, owners ...string) error {
	if slices.Contains(owners, Owner(rel)) {
		return nil
	}
	return fmt.Errorf("revision %d has owner %q: %w", rel.Version, Owner(rel), ErrNotOwned)
}

// reinstall drops every record of the release and installs the chart
// afresh: no record decides what is deleted.
func (m *Manager) reinstall(ctx context.Context, cfg *action.Configuration, req Request) (*release.Release, error) {
	if err := dropRecords(cfg, req.Name, 0); err != nil {
		return nil, err
	}
	return m.install(ctx, cfg, req, false)
}

// dropRecords deletes the records of the release after revision after (0:
// every one), and nothing else.
func dropRecords(cfg *action.Configuration, name string, after int) error {
	history, err := cfg.Releases.History(name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("reading the history: %w", err)
	}
	for _, r := range history {
		if r.Version <= after {
			continue
		}
		if _, err := cfg.Releases.Delete(name, r.Version); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
			return fmt.Errorf("dropping revision %d: %w", r.Version, err)
		}
	}
	return nil
}

// ownerLabels are the labels of every release record written for owner.
func ownerLabels(owner string) map[string]string {
	return map[string]string{chartproofv1.LabelOwner: owner}
}

// Uninstall removes the release when its latest record is owned by owner; a
// missing release is not an error. A release of another owner, or of none,
// is left alone: the error wraps ErrNotOwned. trusted is the record the
// caller installed (or the one its failed install wrote): the deployed
// record must be that one, or nothing is deleted and the error wraps
// ErrRecordTampered; records after it are dropped first, so that what Helm
// deletes is what the trusted record lists. With trusted nil no record
// decides a deletion: the records are dropped and the objects left.
//
// The objects the release rendered are deleted and every record of the
// release is removed. Hook objects stay unless their helm.sh/hook-delete-policy
// says otherwise, as with helm uninstall.
func (m *Manager) Uninstall(ctx context.Context, loc Location, name, owner string, trusted *Trust) error {
	namespace := loc.Namespace
	cfg, err := m.configuration(ctx, loc, name)
	if err != nil {
		return fmt.Errorf("release: uninstall %s/%s: %w", namespace, name, err)
	}
	last, err := latest(cfg, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release: uninstall %s/%s: %w", namespace, name, err)
	}
	if owner == "" {
		return fmt.Errorf("release: uninstall %s/%s: no owner: %w", namespace, name, ErrNotOwned)
	}
	if err := checkOwner(last, owner); err != nil {
		return fmt.Errorf("release: uninstall %s/%s: %w", namespace, name, err)
	}
	if trusted == nil {
		// No record is vouched for: whoever may write Secrets here could
		// have written the one Helm would follow (its hooks run, what it
		// lists deleted). The records go; the objects stay.
		if err := dropRecords(cfg, name, 0); err != nil {
			return fmt.Errorf("release: uninstall %s/%s: %w", namespace, name, err)
		}
		return nil
	}
	// Helm deletes what the latest record lists: it must be the trusted
	// one. Later records (a failed upgrade, an interrupted action) are
	// dropped first, their objects left as they are.
	if err := checkTrusted(cfg, name, *trusted); err != nil && !errors.Is(err, errNotDeployed) {
		return fmt.Errorf("release: uninstall %s/%s: %w", namespace, name, err)
	}
	if err := dropRecords(cfg, name, trusted.Revision); err != nil {
		return fmt.Errorf("release: uninstall %s/%s: %w", namespace, name, err)
	}
	// What dropRecords could not remove (a record stored under another
	// name) would be what Helm uninstalls.
	if _, err := vouched(cfg, name, *trusted, false); err != nil {
		return fmt.Errorf("release: uninstall %s/%s: %w", namespace, name, err)
	}
	if err := m.uninstall(cfg, name); err != nil {
		return fmt.Errorf("release: uninstall %s/%s: %w", namespace, name, err)
	}
	return nil
}

// uninstall runs helm uninstall; a missing release is not an error.
func (m *Manager) uninstall(cfg *action.Configuration, name string) error {
	uninstall := action.NewUninstall(cfg)
	uninstall.Timeout = m.timeout
	// Not IgnoreNotFound: Helm then ignores every error of reading the
	// history, "forbidden" included.
	if _, err := uninstall.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return err
	}
	return nil
}

// latest returns the record of the release's highest revision, or an error
// wrapping ErrNotFound.
func latest(cfg *action.Configuration, name string) (*release.Release, error) {
	rel, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return rel, nil
}

// configuration builds the Helm action.Configuration of one call at loc, as
// the helm CLI would build it with --namespace and the secret storage driver
// (its Secrets in loc's storage namespace), and with Helm's debug output
// going to the context's logger.
func (m *Manager) configuration(ctx context.Context, loc Location, name string) (*action.Configuration, error) {
	namespace := loc.Namespace
	if namespace == "" {
		return nil, errors.New("no namespace")
	}
	c, err := m.sharedClients()
	if err != nil {
		return nil, err
	}
	log := logf.FromContext(ctx).WithValues("helmRelease", namespace+"/"+name)
	debug := func(format string, v ...any) {
		log.V(1).Info(fmt.Sprintf(format, v...))
	}

	getter := &restClientGetter{
		config:    m.config,
		namespace: namespace,
		discovery: c.discovery,
		mapper:    c.mapper,
	}
	kubeClient := kube.New(getter)
	kubeClient.Namespace = namespace
	kubeClient.Log = debug

	secrets := driver.NewSecrets(c.clientset.CoreV1().Secrets(loc.storage()))
	secrets.Log = debug

	return &action.Configuration{
		RESTClientGetter: getter,
		KubeClient:       kubeClient,
		Releases:         storage.Init(secrets),
		Log:              debug,
		HookOutputFunc:   func(_, _, _ string) io.Writer { return io.Discard },
	}, nil
}

// sharedClients returns the clients every call shares, building them on the
// first call. A failure is not remembered: the next call tries again.
func (m *Manager) sharedClients() (*clients, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.clients != nil {
		return m.clients, nil
	}
	if m.config == nil {
		return nil, errors.New("no rest.Config")
	}
	clientset, err := kubernetes.NewForConfig(rest.CopyConfig(m.config))
	if err != nil {
		return nil, fmt.Errorf("building clients: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rest.CopyConfig(m.config))
	if err != nil {
		return nil, fmt.Errorf("building clients: %w", err)
	}
	c := &clients{clientset: clientset, dynamic: dyn}
	if m.shared != nil {
		c.discovery, c.mapper = m.shared.discovery, m.shared.mapper
	} else {
		c.discovery = memory.NewMemCacheClient(clientset.Discovery())
		c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(c.discovery)
	}
	m.clients = c
	return m.clients, nil
}

// ErrRecordTampered means the release record chartproof relies on is not the
// one it wrote: the deployed revision is another, or its digest differs from
// the one the caller recorded. Nothing was applied or deleted: no record
// chartproof cannot vouch for decides what Helm deletes.
var ErrRecordTampered = errors.New("release record is not the one chartproof wrote")

// Trust is the release record a caller vouches for: the revision it
// installed, and the RecordDigest of that record as read back after the
// install. Digest "" vouches for the revision alone (recorded before
// chartproof kept digests).
type Trust struct {
	Revision int
	Digest   string
}

// recordContent is what RecordDigest hashes of a record: what Helm applies
// and deletes from it. The status and its times, which Helm rewrites when a
// later revision supersedes this one, the labels, and when hooks last ran
// are left out.
type recordContent struct {
	Name      string         `json:"name"`
	Namespace string         `json:"namespace"`
	Version   int            `json:"version"`
	Chart     *chart.Chart   `json:"chart"`
	Config    map[string]any `json:"config"`
	Manifest  string         `json:"manifest"`
	Hooks     []recordHook   `json:"hooks"`
}

type recordHook struct {
	Name           string   `json:"name"`
	Kind           string   `json:"kind"`
	Path           string   `json:"path"`
	Manifest       string   `json:"manifest"`
	Events         []string `json:"events"`
	Weight         int      `json:"weight"`
	DeletePolicies []string `json:"deletePolicies"`
}

// RecordDigest is the sha256 of a release record's content, as Helm stored
// it: hash a record read back from storage, never one built in memory
// (numbers, for one, come back as JSON gives them).
func RecordDigest(rel *release.Release) (string, error) {
	c := recordContent{Name: rel.Name, Namespace: rel.Namespace, Version: rel.Version, Chart: rel.Chart, Config: rel.Config, Manifest: rel.Manifest}
	for _, h := range rel.Hooks {
		rh := recordHook{Name: h.Name, Kind: h.Kind, Path: h.Path, Manifest: h.Manifest, Weight: h.Weight}
		for _, e := range h.Events {
			rh.Events = append(rh.Events, string(e))
		}
		for _, p := range h.DeletePolicies {
			rh.DeletePolicies = append(rh.DeletePolicies, string(p))
		}
		c.Hooks = append(c.Hooks, rh)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("release: digest of %s/%s revision %d: %w", rel.Namespace, rel.Name, rel.Version, err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// StoredDigest is the RecordDigest of rel as Helm stores it: Helm's storage
// drivers keep a record as its JSON, so rel (what Apply returned, the
// record Helm wrote last) goes through JSON first. Unlike reading the
// record back, it cannot vouch for what someone else wrote in between.
func StoredDigest(rel *release.Release) (string, error) {
	b, err := json.Marshal(rel)
	if err != nil {
		return "", fmt.Errorf("release: digest of %s/%s revision %d: %w", rel.Namespace, rel.Name, rel.Version, err)
	}
	var stored release.Release
	if err := json.Unmarshal(b, &stored); err != nil {
		return "", fmt.Errorf("release: digest of %s/%s revision %d: %w", rel.Namespace, rel.Name, rel.Version, err)
	}
	return RecordDigest(&stored)
}

// RecordDigest reads revision version of the release from storage and
// returns its RecordDigest.
func (m *Manager) RecordDigest(ctx context.Context, namespace, name string, version int) (string, error) {
	cfg, err := m.configuration(ctx, Location{Namespace: namespace}, name)
	if err != nil {
		return "", fmt.Errorf("release: digest of %s/%s: %w", namespace, name, err)
	}
	rel, err := cfg.Releases.Get(name, version)
	if err != nil {
		return "", fmt.Errorf("release: digest of %s/%s revision %d: %w", namespace, name, version, err)
	}
	return RecordDigest(rel)
}

// CheckTrusted returns an error wrapping ErrRecordTampered unless the record
// trusted vouches for is intact and is the deployed revision. It changes
// nothing: a caller that leaves tampering in place reports it with this.
func (m *Manager) CheckTrusted(ctx context.Context, namespace, name string, trusted Trust) error {
	cfg, err := m.configuration(ctx, Location{Namespace: namespace}, name)
	if err == nil {
		err = checkTrusted(cfg, name, trusted)
	}
	if err != nil {
		return fmt.Errorf("release: check %s/%s: %w", namespace, name, err)
	}
	return nil
}

// errNotDeployed says the trusted record is intact but no revision is
// deployed (an interrupted install or uninstall, marked failed by Recover).
var errNotDeployed = errors.New("no revision is deployed")

// checkTrusted returns an error wrapping ErrRecordTampered unless the record
// trusted vouches for is intact (its digest, when the caller recorded one)
// and is the deployed one; errNotDeployed when it is intact and nothing is
// deployed.
func checkTrusted(cfg *action.Configuration, name string, trusted Trust) error {
	_, err := trustedRecord(cfg, name, trusted)
	return err
}

// trustedRecord is checkTrusted, and returns the record it checked: the
// one to use, never one read again.
func trustedRecord(cfg *action.Configuration, name string, trusted Trust) (*release.Release, error) {
	rec, err := vouched(cfg, name, trusted, true)
	if err != nil {
		return nil, err
	}
	deployed, err := cfg.Releases.Deployed(name)
	if errors.Is(err, driver.ErrNoDeployedReleases) {
		return nil, errNotDeployed
	}
	if err != nil {
		return nil, fmt.Errorf("reading the deployed revision: %w", err)
	}
	if deployed.Version != trusted.Revision {
		return nil, fmt.Errorf("revision %d is deployed, revision %d expected: %w", deployed.Version, trusted.Revision, ErrRecordTampered)
	}
	return rec, nil
}

// vouched returns the record trusted vouches for, or an error wrapping
// ErrRecordTampered unless the records Helm acts on are that one. Helm
// finds records by their labels and reads the revision and status from
// their data, whatever the Secret's name: an upgrade diffs against the
// highest revision when its data says deployed (else against the deployed
// one), an uninstall deletes what the highest revision lists and runs its
// hooks. So the trusted revision must have a record, every record at it
// must have the trusted digest (when the caller recorded one), and none may
// be above it, except, when laterUndeployed, records whose data says they
// are not deployed (a failed upgrade, which Helm does not diff against).
func vouched(cfg *action.Configuration, name string, trusted Trust, laterUndeployed bool) (*release.Release, error) {
	history, err := cfg.Releases.History(name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("reading the history: %w", err)
	}
	var rec *release.Release
	for _, r := range history {
		switch {
		case r.Version < trusted.Revision:
		case r.Version > trusted.Revision:
			if laterUndeployed && r.Info != nil && r.Info.Status != release.StatusDeployed {
				continue
			}
			status := release.Status("")
			if r.Info != nil {
				status = r.Info.Status
			}
			return nil, fmt.Errorf("revision %d (%s) is above revision %d, which chartproof installed: %w", r.Version, status, trusted.Revision, ErrRecordTampered)
		default:
			if trusted.Digest != "" {
				d, err := RecordDigest(r)
				if err != nil {
					return nil, err
				}
				if d != trusted.Digest {
					return nil, fmt.Errorf("a record of revision %d has digest %s, %s expected: %w", r.Version, d, trusted.Digest, ErrRecordTampered)
				}
			}
			rec = r
		}
	}
	if rec == nil {
		return nil, fmt.Errorf("revision %d, which chartproof installed, has no record: %w", trusted.Revision, ErrRecordTampered)
	}
	return rec, nil
}
