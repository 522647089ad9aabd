// Package identity builds the clients that act for a release. Every request
// they make impersonates a ServiceAccount of the release's namespace, so a
// release can do only what that account may; the manager's own identity is
// used for a release only when the manager was started with an explicit,
// unsafe opt-in (Options.ManagerIdentityUnsafe).
//
// It is the one place where the manager's rest.Config meets release work:
// internal/release is handed impersonating configs only, and a test checks
// that nothing else builds a release.Manager.
package identity

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chartproof/chartproof/internal/release"
)

// ErrNoServiceAccount means a release names no ServiceAccount, the manager
// has no default, and acting with the manager's own identity was not
// allowed.
var ErrNoServiceAccount = errors.New("no service account to act as: set spec.serviceAccountName, or start the manager with --default-service-account")

// Options configure a Factory.
type Options struct {
	// DefaultServiceAccount is the ServiceAccount, in the release's
	// namespace, a release acts as when it names none. Empty means such a
	// release is refused with ErrNoServiceAccount (unless
	// ManagerIdentityUnsafe).
	DefaultServiceAccount string
	// ManagerIdentityUnsafe makes a release that names no ServiceAccount,
	// when there is no default, act with the manager's own identity: whoever
	// may write a VerifiedHelmRelease then gets every right of the manager.
	// False (the zero value) refuses such a release.
	ManagerIdentityUnsafe bool
	// Timeout bounds each Helm action (release.Options.Timeout); zero means
	// release's default.
	Timeout time.Duration
	// Scheme is the scheme of the readers For returns; nil means client-go's.
	Scheme *runtime.Scheme
	// Writes, when not nil, remembers what every account's requests write,
	// so that watches can tell chartproof's own writes from others'.
	Writes *Writes
}

// Account is who acts for one release, with what.
type Account struct {
	// User is the Kubernetes user every request impersonates
	// (system:serviceaccount:<namespace>:<name>), or "" for the manager's
	// own identity.
	User string
	// Releases installs, upgrades, reads and uninstalls the release's Helm
	// releases as User.
	Releases *release.Manager
	// Reader reads the release's inputs (valuesFrom) as User, uncached.
	Reader client.Reader
	// Client reads and writes the objects the release deployed as User,
	// uncached: drift detection and correction.
	Client client.Client
}

// Factory returns the Account of a release, built once per user and cached:
// clients are not built per reconcile. Discovery (the API's groups and
// kinds, which every authenticated user may read) is shared by all
// accounts; it reads no object.
type Factory struct {
	base *rest.Config
	opts Options

	mu        sync.Mutex
	accounts  map[string]*Account // by User
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.ResettableRESTMapper
}

// NewFactory returns a Factory over the manager's config. No request is
// made until an account is first used.
func NewFactory(cfg *rest.Config, opts Options) *Factory {
	return &Factory{base: rest.CopyConfig(cfg), opts: opts, accounts: map[string]*Account{}}
}

// Writes is what the accounts' requests wrote (Options.Writes), nil when
// nothing is remembered.
func (f *Factory) Writes() *Writes {
	if f == nil {
		return nil
	}
	return f.opts.Writes
}

// ServiceAccountFor returns the name of the ServiceAccount a release in
// namespace acts as: named, else the default. "" means the manager's own
// identity (only with ManagerIdentityUnsafe); an error wraps
// ErrNoServiceAccount.
func (f *Factory) ServiceAccountFor(named string) (string, error) {
	switch {
	case named != "":
		return named, nil
	case f.opts.DefaultServiceAccount != "":
		return f.opts.DefaultServiceAccount, nil
	case f.opts.ManagerIdentityUnsafe:
		return "", nil
	}
	return "", ErrNoServiceAccount
}

// For returns the Account a release in namespace that names serviceAccount
// ("" for none) acts as.
func (f *Factory) For(namespace, serviceAccount string) (*Account, error) {
	if namespace == "" {
		return nil, errors.New("identity: no namespace")
	}
	name, err := f.ServiceAccountFor(serviceAccount)
	if err != nil {
		return nil, err
	}
	user := ""
	if name != "" {
		user = Username(namespace, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.accounts[user]; ok {
		return a, nil
	}
	a, err := f.build(user)
	if err != nil {
		return nil, fmt.Errorf("identity: clients for %q: %w", user, err)
	}
	if len(f.accounts) >= maxAccounts {
		// Whoever may write a VerifiedHelmRelease chooses an account name:
		// the cache is bounded. Accounts in use stay valid; they are built
		// again on their next use.
		clear(f.accounts)
	}
	f.accounts[user] = a
	return a, nil
}

// maxAccounts bounds the accounts a Factory keeps; past it they are all
// dropped and built again as they are used.
const maxAccounts = 512

// AgentExtra is the user extra every impersonated request carries
// (AgentValue): internal/admission admits a change to what a release
// deployed from that release's account only with it. The manager needs the
// right to impersonate it (config/rbac).
const (
	AgentExtra = "delivery.chartproof.dev/agent"
	AgentValue = "chartproof"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=userextras/delivery.chartproof.dev/agent,verbs=impersonate

// Username is the Kubernetes user name of a ServiceAccount.
func Username(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// build makes the clients of user; f.mu is held.
func (f *Factory) build(user string) (*Account, error) {
	if f.discovery == nil {
		dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(f.base))
		if err != nil {
			return nil, err
		}
		f.discovery = memory.NewMemCacheClient(dc)
		f.mapper = restmapper.NewDeferredDiscoveryRESTMapper(f.discovery)
	}
	cfg := rest.CopyConfig(f.base)
	if user != "" {
		// The extra tells the admission webhook that chartproof acts:
		// only whoever may impersonate this extra (the manager) can send
		// it, so the account's own token, used directly, does not.
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Extra: map[string][]string{AgentExtra: {AgentValue}}}
	}
	if f.opts.Writes != nil {
		cfg.Wrap(f.opts.Writes.wrap)
	}
	scheme := f.opts.Scheme
	reader, err := client.New(rest.CopyConfig(cfg), client.Options{Scheme: scheme, Mapper: f.mapper})
	if err != nil {
		return nil, err
	}
	return &Account{
		User:     user,
		Releases: release.NewManager(cfg, release.Options{Timeout: f.opts.Timeout, Discovery: f.discovery, Mapper: f.mapper}),
		Reader:   reader,
		Client:   reader,
	}, nil
}
