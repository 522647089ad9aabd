//go:build !cli

package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/controllers"
	"github.com/chartproof/chartproof/internal/admission"
	"github.com/chartproof/chartproof/internal/cloudauth"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/revocation"
	"github.com/chartproof/chartproof/internal/tufroot"
)

func runManager() error {
	var (
		metricsAddr, probeAddr, leaderNamespace string
		pprofAddr                               string
		leaderElect                             bool
		concurrent                              int
		verifyTimeout, cacheTTL                 time.Duration
		defaultServiceAccount                   string
		managerIdentityUnsafe                   bool
		requireClusterPolicy                    bool
		controllerCloudIdentity                 bool
		watchDeployed                           bool
		tufCacheDir                             string
		metricsSecure                           bool
		metricsCertDir                          string
		webhookPort                             int
		webhookCertDir                          string
		webhookNamespace, webhookSecret         string
		webhookService, webhookConfiguration    string
		webhookHosts                            string
		breakGlassGroups                        string
		exemptUsers, exemptGroups               string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	flag.BoolVar(&metricsSecure, "metrics-secure", false, "serve metrics over HTTPS to callers whose bearer token (a TokenReview) may get /metrics (a SubjectAccessReview): the manager then needs create on tokenreviews and subjectaccessreviews (config/rbac/metrics_auth_role.yaml); config/manager sets it")
	flag.StringVar(&metricsCertDir, "metrics-cert-dir", "", "with --metrics-secure, the directory holding the metrics server's tls.crt and tls.key (cert-manager's Secret, mounted), reloaded when they change; empty or missing: a self-signed certificate made at start")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of the healthz and readyz endpoints")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "address of Go's /debug/pprof endpoints (profiling); 0 disables them")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect a leader, so only one manager acts at a time")
	flag.StringVar(&leaderNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease; default: the pod's own (required outside a cluster)")
	flag.IntVar(&concurrent, "concurrent", 4, "how many VerifiedHelmReleases are reconciled at once")
	flag.DurationVar(&verifyTimeout, "verify-timeout", controllers.DefaultVerifyTimeout, "the longest one verification or chart read may take, registry round trips included; it then ends inconclusive")
	flag.DurationVar(&cacheTTL, "verification-cache-ttl", controllers.DefaultCacheTTL, "how long signatures that passed (per digest, policy and trust material) and chart layers (per digest) are kept; any change of a policy or of what it reads misses at once; 0 disables the cache")
	flag.StringVar(&defaultServiceAccount, "default-service-account", "", "the ServiceAccount, in a release's own namespace, that a VerifiedHelmRelease naming no spec.serviceAccountName acts as; empty: such a release is refused (ServiceAccountRequired)")
	flag.BoolVar(&managerIdentityUnsafe, "unsafe-releases-act-as-manager", false, "UNSAFE: a release naming no ServiceAccount, without --default-service-account, acts with the manager's own identity, giving whoever may write a VerifiedHelmRelease every right of the manager")
	flag.BoolVar(&requireClusterPolicy, "require-cluster-policy", false, "deny every release that no ClusterTrustPolicy judges: it must name one, or a ClusterTrustPolicy whose namespaceSelector selects its namespace must cover its chart (NoClusterPolicy otherwise)")
	flag.BoolVar(&controllerCloudIdentity, "allow-controller-cloud-identity", false, "let releases with spec.chart.provider aws, azure or gcp log in to their registry with the manager's own cloud identity (workload identity), as Flux's OCIRepository does; any release may then read what that identity may read")
	flag.BoolVar(&watchDeployed, "watch-deployed-objects", true, "watch (metadata only, by the owner label) every kind of object releases deploy, so drift wakes its release at once; needs list and watch on every resource (the ClusterRole's '*' rule). false: drift is found at each release's interval only, and that rule can be removed")
	flag.StringVar(&tufCacheDir, "tuf-cache-dir", filepath.Join(os.TempDir(), "chartproof-tuf"), "where the TUF client keeps the metadata it verified of the repositories trustedRoot.tuf names (what a rollback is checked against); an emptyDir in a pod")
	flag.IntVar(&webhookPort, "webhook-port", 0, "port of the admission webhook (docs/admission.md), served over TLS from --webhook-cert-dir; 0 disables it")
	flag.StringVar(&webhookCertDir, "webhook-cert-dir", "", "the directory holding the admission webhook's tls.crt and tls.key (cert-manager's Secret, mounted), reloaded when they change; empty: the manager makes, rotates and serves its own (--webhook-secret) and writes their CA into --webhook-configuration")
	flag.StringVar(&webhookNamespace, "webhook-namespace", "", "namespace of the webhook's Secret and Service; default: the pod's own")
	flag.StringVar(&webhookSecret, "webhook-secret", "chartproof-webhook-tls", "the Secret the manager keeps the webhook's CA and serving certificate in")
	flag.StringVar(&webhookService, "webhook-service", "chartproof-webhook", "the webhook's Service: its names are the serving certificate's")
	flag.StringVar(&webhookConfiguration, "webhook-configuration", "chartproof", "the ValidatingWebhookConfiguration the manager writes its CA bundle into")
	flag.StringVar(&webhookHosts, "webhook-hosts", "", "comma-separated DNS names or IP addresses the serving certificate names besides the Service's (a manager run outside the cluster)")
	flag.StringVar(&breakGlassGroups, "admission-break-glass-groups", "", "comma-separated groups whose members may change what a release deployed in an emergency: admitted, recorded (event, audit annotation, metric), then handled as drift")
	flag.StringVar(&exemptUsers, "admission-exempt-users", strings.Join(admission.DefaultExemptUsers, ","), "comma-separated system users the admission webhook admits (config/webhook's matchConditions must name the same)")
	flag.StringVar(&exemptGroups, "admission-exempt-groups", strings.Join(admission.DefaultExemptGroups, ","), "comma-separated system groups the admission webhook admits (config/webhook's matchConditions must name the same)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: chartproof [flags]          run the controller manager\n       chartproof verify --help   verify a chart from the command line\n       chartproof verify-blob --help   verify a Sigstore bundle over any artifact\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if managerIdentityUnsafe && defaultServiceAccount == "" {
		ctrl.Log.Info("UNSAFE: releases that name no ServiceAccount act with the manager's own identity (--unsafe-releases-act-as-manager): whoever may write a VerifiedHelmRelease gets every right of the manager")
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := chartproofv1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr}
	if metricsSecure {
		metricsOpts.SecureServing = true
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
		metricsOpts.CertDir = metricsCertDir
		if metricsCertDir == "" {
			// controller-runtime falls back to a self-signed certificate
			// when the directory holds none: one that surely holds none.
			metricsOpts.CertDir = filepath.Join(os.TempDir(), "chartproof-metrics-certs-none")
		}
	}
	webhookOpts := webhook.Options{Port: webhookPort, CertDir: webhookCertDir}
	var (
		certs            *admission.Certificates
		admissionMetrics *metrics.Admission
		// The webhook's requests (its Secret and configuration, who the
		// manager is, SubjectAccessReviews) are few: uncached.
		uncached client.Client
	)
	if webhookPort != 0 {
		if admissionMetrics, err = metrics.NewAdmission(ctrlmetrics.Registry); err != nil {
			return err
		}
		if uncached, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
			return err
		}
	}
	if webhookPort != 0 && webhookCertDir == "" {
		if certs, err = webhookCertificates(uncached, webhookNamespace, webhookSecret, webhookService, webhookConfiguration, splitList(webhookHosts)); err != nil {
			return err
		}
		certs.Metrics = admissionMetrics
		webhookOpts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = certs.GetCertificate }}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		WebhookServer:           webhook.NewServer(webhookOpts),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "chartproof-leader.delivery.chartproof.dev",
		LeaderElectionNamespace: leaderNamespace,
		// The process exits as soon as the manager stops, so handing the
		// Lease back at once is safe and lets a standby take over quickly.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return err
	}
	verifications, err := metrics.NewVerifications(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	tampered, err := metrics.NewRecordsTampered(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	driftMetrics, err := metrics.NewDrift(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	revocationMetrics, err := metrics.NewRevocation(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	releaseMetrics, err := metrics.NewReleases(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	registryMetrics, err := metrics.NewRegistry(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	verifyCache := gate.NewCache(cacheTTL)
	if verifyCache != nil {
		if verifyCache.Lookups, err = metrics.NewCache(ctrlmetrics.Registry); err != nil {
			return err
		}
	}
	cloudCache, err := cloudauth.NewCache(1024)
	if err != nil {
		return err
	}
	if controllerCloudIdentity {
		ctrl.Log.Info("releases with spec.chart.provider aws, azure or gcp log in with the manager's own cloud identity (--allow-controller-cloud-identity): any release may read what it may")
	}
	tuf, err := tufroot.NewStore(tufCacheDir, nil)
	if err != nil {
		return err
	}
	if tuf.Metrics, err = metrics.NewTUF(ctrlmetrics.Registry); err != nil {
		return err
	}
	r := &controllers.VerifiedHelmReleaseReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("chartproof"),
		Identities: identity.NewFactory(cfg, identity.Options{
			DefaultServiceAccount: defaultServiceAccount,
			ManagerIdentityUnsafe: managerIdentityUnsafe,
			Scheme:                scheme,
			Writes:                identity.NewWrites(identity.DefaultWritesTTL),
		}),
		Metrics:           verifications,
		RecordsTampered:   tampered,
		DriftMetrics:      driftMetrics,
		RevocationMetrics: revocationMetrics,
		ReleaseMetrics:    releaseMetrics,
		Registries:        &controllers.RegistryFactory{AllowControllerCloudIdentity: controllerCloudIdentity, CloudCache: cloudCache, Metrics: registryMetrics},
		VerifyTimeout:     verifyTimeout,
		Cache:             verifyCache,
		Revocation:        revocation.New(nil),
		TUF:               tuf,

		RequireClusterPolicy: requireClusterPolicy,
		WatchDeployed:        watchDeployed,
	}
	if err := controllers.Setup(mgr, r, controller.Options{MaxConcurrentReconciles: concurrent}); err != nil {
		return err
	}
	if webhookPort != 0 {
		if err := serveAdmission(uncached, mgr, r, admissionMetrics, splitList(breakGlassGroups), splitList(exemptUsers), splitList(exemptGroups)); err != nil {
			return err
		}
	}
	if certs != nil {
		if err := mgr.Add(certs); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("webhook-certificate", certs.Ready); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

// serveAdmission registers the admission webhook's rules on the manager's
// webhook server. The manager's own user name is asked of the API server
// (a SelfSubjectReview), so no flag can get it wrong.
func serveAdmission(uncached client.Client, mgr ctrl.Manager, r *controllers.VerifiedHelmReleaseReconciler, decisions *metrics.Admission, breakGlass, exemptUsers, exemptGroups []string) error {
	self := &authenticationv1.SelfSubjectReview{}
	if err := uncached.Create(context.Background(), self); err != nil {
		return fmt.Errorf("admission: asking the API server who the manager is: %w", err)
	}
	guard := &admission.OwnedObjects{
		Releases: func(ctx context.Context, uid string) (admission.Actor, bool, error) {
			release, user, found, err := r.ActorOf(ctx, uid)
			return admission.Actor{Release: release, User: user}, found, err
		},
		ManagerUser:      self.Status.UserInfo.Username,
		ExemptUsers:      exemptUsers,
		ExemptGroups:     exemptGroups,
		BreakGlassGroups: breakGlass,
		Recorder:         r.Recorder,
		Metrics:          decisions,
	}
	mgr.GetWebhookServer().Register(admission.OwnedObjectsPath, guard.Webhook())
	mgr.GetWebhookServer().Register(admission.HelmRecordsPath, (&admission.HelmRecords{Metrics: decisions}).Webhook())
	tenancy := &admission.Tenancy{
		ServiceAccountFor: r.Identities.ServiceAccountFor,
		Reviews:           uncached,
		MandatoryFor:      r.MandatoryFor,
		Metrics:           decisions,
	}
	mgr.GetWebhookServer().Register(admission.TenancyPath, tenancy.Webhook())
	ctrl.Log.Info("admission webhook serving", "manager", guard.ManagerUser, "breakGlassGroups", breakGlass)
	return mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker())
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// webhookCertificates keeps the webhook's own CA and serving certificate
// (admission.Certificates) for the Service service of namespace (the pod's
// own when ""), and hosts.
func webhookCertificates(c client.Client, namespace, secret, service, configuration string, hosts []string) (*admission.Certificates, error) {
	if namespace == "" {
		raw, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			return nil, fmt.Errorf("admission: --webhook-namespace is required outside a pod: %w", err)
		}
		namespace = strings.TrimSpace(string(raw))
	}
	return &admission.Certificates{
		Client:        c,
		Secret:        types.NamespacedName{Namespace: namespace, Name: secret},
		Configuration: configuration,
		Hosts:         append([]string{service + "." + namespace + ".svc", service + "." + namespace + ".svc.cluster.local"}, hosts...),
	}, nil
}
