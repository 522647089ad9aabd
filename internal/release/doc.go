// Package release installs, upgrades, reads and uninstalls Helm releases with
// the Helm SDK. It is the only place chartproof talks to Helm.
//
// Releases are stored exactly as the helm CLI stores them: Secrets of type
// helm.sh/release.v1 in the release's namespace, or in the storage namespace
// the caller names (Location.Storage, Request.StorageNamespace; the "secret"
// storage driver). `helm list`, `helm history` and the SDK's action.List therefore
// see them, and an operator can inspect a release with the tools they know.
//
// A Manager is built once from a rest.Config. Each call builds a fresh
// action.Configuration for its namespace over an in-memory
// genericclioptions.RESTClientGetter; no kubeconfig file, environment
// variable or global Helm setting is read. Discovery is cached in memory and
// shared by the calls of one Manager; Helm invalidates it before it renders.
// Helm's debug output goes to the logr.Logger in the call's context, at V(1).
// Install and upgrade also stop waiting when the context ends; Helm v3's
// storage driver and uninstall take no context, so Get and Uninstall use it
// for logging only.
//
// Apply installs the chart when the release does not exist and upgrades it
// otherwise (creating the namespace only when Request.CreateNamespace says
// so), without waiting for the workloads to become ready: the caller checks
// their health. An upgrade renders the chart with exactly the
// values given (Helm's --reset-values), so removing a value returns it to the
// chart's default. When the latest release record is in a pending state, or
// an uninstall was left half done, Apply refuses with ErrPending and changes
// nothing.
//
// Recover repairs such a release, left so by a process that died or lost
// the API server in the middle of a Helm action: it rolls the release back
// to its latest deployed revision when the caller vouches for it, or only
// marks the unfinished record failed (see Recover). It assumes that no other process is operating the release.
//
// # Stamping
//
// A post-renderer, run after the request's own (Request.PostRenderers,
// kustomize), writes two annotations on every object Apply renders:
// delivery.chartproof.dev/release (namespace/name of the VerifiedHelmRelease)
// and delivery.chartproof.dev/chart-digest (the digest of the verified chart).
// Annotations the chart sets are kept, except those two keys: a chart cannot
// choose its own stamp. The items of a List are stamped, not the List.
//
// Helm v3 does not pass hooks (templates annotated helm.sh/hook) through a
// post-renderer: it sorts them out before post-rendering and creates them
// itself around the install, upgrade or uninstall, so they carry no stamp.
// They come from the same verified chart archive as every stamped object and
// are recorded in Release.Hooks with their rendered manifests.
//
// # Preflight
//
// The last post-renderer (preflight.go) asks the API server, as the
// Manager's identity (SelfSubjectAccessReview), for each of LifecycleVerbs
// on each object the chain produced, and fails the action with a
// MissingPermissionsError listing every one refused: Helm has then written
// neither a record nor an object. Hooks are not checked (see Stamping).
//
// The files of the chart's crds/ directories are not left to Helm (which
// would install them unstamped, and only on a first install): applyCRDs
// applies them, stamped, as Request.InstallCRDs / UpgradeCRDs say (crds.go).
package release
