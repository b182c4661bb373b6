package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/compatibility"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/term"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	apiregistrationv1client "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/typed/apiregistration/v1"

	"github.com/signet-dev/signet/pkg/apiserver"
	"github.com/signet-dev/signet/pkg/generated/openapi"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/backends"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/servingcert"
)

// NewCommand is the signet-apiserver command.
func NewCommand(ctx context.Context) *cobra.Command {
	o := NewOptions()
	fss := o.Flags()
	cmd := &cobra.Command{
		Use:   "signet-apiserver",
		Short: "Serve certificate signers as a Kubernetes API",
		Long: `signet-apiserver is an aggregated API server: it serves signers and
clustersigners (cert-manager.io/v1alpha1), one per cert-manager Issuer and
ClusterIssuer, computed from them and the CA Secrets they reference.`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			cliflag.PrintFlags(cmd.Flags())
			return Run(cmd.Context(), o)
		},
		Args: cobra.NoArgs,
	}
	cmd.SetContext(ctx)
	o.AddFlags(cmd.Flags(), fss)
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, fss, cols)
	return cmd
}

// Run serves until ctx ends.
func Run(ctx context.Context, o *Options) error {
	klog.InfoS("Starting signet-apiserver", "version", version.Get().GitVersion)
	kubeConfig, err := clientConfig(o)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(kubeConfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(kubeConfig)
	if err != nil {
		return err
	}
	secretMetadata, err := metadata.NewForConfig(kubeConfig)
	if err != nil {
		return err
	}
	external, err := resolveExternalIssuers(o, kube)
	if err != nil {
		return err
	}
	policy := o.signingPolicy()
	cache := issuers.New(dyn, kube, issuers.Options{ClusterResourceNamespace: o.ClusterResourceNamespace,
		SecretMetadata: secretMetadata, SigningPolicy: policy.CAExpiryPolicy(), External: external})
	// One pipeline, one policy, for the CSR controller and the sign subresource.
	pipeline := issuance.New(cache,
		backends.New(issuance.Deps{Secrets: issuance.NewSecretGetter(kube), ClusterResourceNamespace: o.ClusterResourceNamespace,
			Dynamic: dyn, Context: ctx, CertificateRequests: o.certificateRequests()}),
		policy, issuance.NewReferenceChecker(kube), nil)
	pods := newPodCertificates(ctx, o, kube, cache, pipeline)

	var serving *servingcert.Authority
	if o.selfManagedServing() {
		if serving, err = newServingAuthority(o, kubeConfig); err != nil {
			return err
		}
		o.SecureServing.ServerCert.GeneratedCert = serving
	}
	cfg, err := serverConfig(o, cache, pipeline)
	if err != nil {
		return err
	}
	server, err := cfg.Complete().New()
	if err != nil {
		return err
	}
	leaderHealth := leaderelection.NewLeaderHealthzAdaptor(o.LeaderElection.LeaseDuration.Duration / 2)
	clockHealth := apiserver.NewClockHealth(clockJumpThreshold, clockJumpHold)
	if err := server.GenericAPIServer.AddLivezChecks(0, leaderHealth, clockHealth); err != nil {
		return err
	}
	go clockHealth.Run(ctx)
	if serving != nil {
		if err := server.GenericAPIServer.AddReadyzChecks(serving.PublishedCheck()); err != nil {
			return err
		}
		go serving.Run(ctx)
	}
	server.GenericAPIServer.AddPostStartHookOrDie("start-issuers-cache", func(hc genericapiserver.PostStartHookContext) error {
		return cache.Start(hc)
	})
	server.GenericAPIServer.AddPostStartHookOrDie("start-trust-bundle-informer", func(hc genericapiserver.PostStartHookContext) error {
		pods.start(hc)
		return nil
	})
	controllerDone := make(chan struct{})
	server.GenericAPIServer.AddPostStartHookOrDie("start-csr-controller", func(hc genericapiserver.PostStartHookContext) error {
		return runController(hc, o, kube, cache, pipeline, pods, leaderHealth, controllerDone)
	})
	if o.MetricsBindAddress != "" {
		if err := serveMetrics(ctx, o.MetricsBindAddress); err != nil {
			return err
		}
	}
	err = server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
	// Let the controller hand the lease over before the process exits, so
	// the next replica takes over at once rather than after the lease expires.
	select {
	case <-controllerDone:
	case <-time.After(5 * time.Second):
		klog.InfoS("Exiting before the leader lease was released")
	}
	return err
}

func clientConfig(o *Options) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if o.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver client config (--kubeconfig %q): %w", o.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = o.ClientQPS, o.ClientBurst
	// Protobuf costs kube-apiserver less to encode and decode than JSON, and
	// kube-apiserver's CPU is what bounds a burst. The dynamic client used
	// for Issuers switches itself back to JSON (CRDs have no protobuf).
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cfg.UserAgent = "signet-apiserver/" + version.Get().GitVersion
	return cfg, nil
}

// newServingAuthority makes the serving CA and certificate for a signet run
// without --tls-cert-file.
func newServingAuthority(o *Options, kubeConfig *rest.Config) (*servingcert.Authority, error) {
	host, dns, ips := o.servingNames()
	opts := servingcert.Options{
		Host: host, DNSNames: dns, IPs: ips,
		CAValidity:   o.ServingCAValidity,
		CertValidity: o.ServingCertValidity,
		APIService:   o.CABundleAPIService,
		SyncPeriod:   o.ServingCASyncPeriod,
	}
	var client apiregistrationv1client.APIServiceInterface
	if opts.APIService != "" {
		c, err := apiregistrationv1client.NewForConfig(kubeConfig)
		if err != nil {
			return nil, err
		}
		client = c.APIServices()
	}
	a, err := servingcert.New(opts, client)
	if err != nil {
		return nil, fmt.Errorf("self-managed serving certificate: %w", err)
	}
	return a, nil
}

func serverConfig(o *Options, cache *issuers.Cache, pipeline *issuance.Pipeline) (*apiserver.Config, error) {
	cfg := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	cfg.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	cfg.FeatureGate = utilfeature.DefaultFeatureGate

	namer := openapinamer.NewDefinitionNamer(apiserver.Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title = "signet"
	cfg.OpenAPIConfig.Info.Version = version.Get().GitVersion
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "signet"
	cfg.OpenAPIV3Config.Info.Version = version.Get().GitVersion

	if err := o.SecureServing.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, err
	}
	if err := o.Authentication.ApplyTo(&cfg.Authentication, cfg.SecureServing, cfg.OpenAPIConfig); err != nil {
		return nil, err
	}
	cfg.Authentication.Authenticator = anonymousOnlyFor(cfg.Authentication.Authenticator, healthPaths)
	if err := o.Authorization.ApplyTo(&cfg.Authorization); err != nil {
		return nil, err
	}
	if err := o.Audit.ApplyTo(&cfg.Config); err != nil {
		return nil, err
	}
	if err := o.Features.ApplyTo(&cfg.Config, nil, nil); err != nil {
		return nil, err
	}
	// The only write is a SigningRequest: a PEM request of at most 64 KiB,
	// base64 in JSON. Larger bodies are refused (413) before they are read.
	cfg.MaxRequestBodyBytes = maxRequestBodyBytes
	names, err := o.signerNames()
	if err != nil {
		return nil, err
	}
	return &apiserver.Config{GenericConfig: cfg, ExtraConfig: apiserver.ExtraConfig{
		Issuers:     cache,
		Issuance:    pipeline,
		SignerNames: names,
		SignTimeout: o.SignTimeout,
	}}, nil
}

// resolveExternalIssuers finds each --external-issuer in kube-apiserver's
// discovery. A resource that is not there stops signet with the reason: the
// flag asks for signers it cannot serve.
func resolveExternalIssuers(o *Options, kube kubernetes.Interface) ([]issuers.ExternalResource, error) {
	external, err := o.externalIssuers()
	if err != nil {
		return nil, err
	}
	out := make([]issuers.ExternalResource, 0, len(external))
	for _, e := range external {
		r, err := issuers.ResolveExternal(kube.Discovery(), e)
		if err != nil {
			return nil, err
		}
		klog.InfoS("Serving an external issuer resource as signers", "resource", r.GVR.String(), "scope", r.Kind)
		out = append(out, r)
	}
	return out, nil
}

const maxRequestBodyBytes = 256 << 10

// A wall-clock jump larger than this fails /livez for clockJumpHold.
const (
	clockJumpThreshold = 5 * time.Second
	clockJumpHold      = time.Minute
)

// healthPaths answer unauthenticated probes (kubelet sends no credentials).
var healthPaths = []string{"/healthz", "/livez", "/readyz"}

// anonymousOnlyFor turns an anonymous request into a 401 unless it is for one
// of paths. The delegating authenticator always admits anonymous requests (its
// options offer no per-path conditions), which would turn a missing
// credential into a 403 from authorization instead of the 401 it is.
func anonymousOnlyFor(a authenticator.Request, paths []string) authenticator.Request {
	if a == nil {
		return nil
	}
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := a.AuthenticateRequest(req)
		if !ok || err != nil || resp == nil || resp.User.GetName() != user.Anonymous {
			return resp, ok, err
		}
		for _, p := range paths {
			if req.URL.Path == p || strings.HasPrefix(req.URL.Path, p+"/") {
				return resp, ok, err
			}
		}
		return nil, false, nil
	})
}

// serveMetrics serves /metrics, and nothing else, over plain HTTP.
func serveMetrics(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-bind-address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", legacyregistry.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsReadHeaderTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    metricsMaxHeaderBytes,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Metrics server stopped")
		}
	}()
	klog.InfoS("Serving metrics over plain HTTP", "address", ln.Addr().String())
	return nil
}
