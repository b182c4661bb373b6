// Package app holds signet-apiserver's flags and process lifecycle: the only
// code that knows about the process.
package app

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	componentbaseconfig "k8s.io/component-base/config"
	"k8s.io/component-base/config/options"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	netutils "k8s.io/utils/net"

	"github.com/signet-dev/signet/pkg/controller"
	"github.com/signet-dev/signet/pkg/controller/podcertificates"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/registry/certmanager/sign"
	"github.com/signet-dev/signet/pkg/servingcert"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"

	// JSON logging for --logging-format=json.
	_ "k8s.io/component-base/logs/json/register"
)

func init() {
	// --logging-format, contextual logging and friends are feature-gated.
	utilruntime.Must(logsapi.AddFeatureGates(utilfeature.DefaultMutableFeatureGate))
}

// Options are signet-apiserver's command-line options.
type Options struct {
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions
	Audit          *genericoptions.AuditOptions
	Features       *genericoptions.FeatureOptions
	Logs           *logsapi.LoggingConfiguration

	Kubeconfig               string
	ClientQPS                float32
	ClientBurst              int
	ClusterResourceNamespace string
	MetricsBindAddress       string
	// ServiceName and ServiceNamespace name the Service kube-apiserver reaches
	// signet through; a self-signed serving certificate carries its DNS names.
	ServiceName      string
	ServiceNamespace string
	// Without --tls-cert-file, signet makes its own serving CA and keeps
	// CABundleAPIService's caBundle current (see pkg/servingcert).
	CABundleAPIService  string
	ServingCAValidity   time.Duration
	ServingCertValidity time.Duration
	ServingCASyncPeriod time.Duration

	// The CSR controller, run by the leader only.
	LeaderElection              componentbaseconfig.LeaderElectionConfiguration
	Workers                     int
	MaxDuration                 time.Duration
	CapToCAExpiry               bool
	WriteCAAnnotation           bool
	WaitingApprovalEventDelay   time.Duration
	CertificateIssuedEvents     bool
	ClusterSignerReferenceCheck bool

	// Issuers signet signs with through cert-manager CertificateRequests.
	ExternalIssuers             []string
	CertificateRequestNamespace string
	CertificateRequestApproval  string
	SignTimeout                 time.Duration

	// Pod certificates, run by the leader beside the CSR controller.
	PodCertificates           bool
	PodCertificateTrustDomain string
	ClusterTrustBundles       bool
}

// Values of --certificate-request-approval.
const (
	approvalBySignet   = "signet"
	approvalByExternal = "external"
)

// NewOptions returns the defaults.
func NewOptions() *Options {
	o := &Options{
		SecureServing:  genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication: genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:  genericoptions.NewDelegatingAuthorizationOptions(),
		Audit:          genericoptions.NewAuditOptions(),
		Features:       genericoptions.NewFeatureOptions(),
		Logs:           logs.NewOptions(),
		// Each CSR costs about two requests (the reference check and the
		// status write), so client QPS bounds throughput: measured on 2 cores,
		// 50 QPS gave 24 CSR/s, 500 QPS 365/s, 1000 QPS with 32 workers 365–417/s.
		ClientQPS:                1000,
		ClientBurst:              2000,
		ClusterResourceNamespace: issuers.DefaultClusterResourceNamespace,
		MetricsBindAddress:       ":9402",
		ServiceName:              "signet",
		ServiceNamespace:         "signet-system",
		CABundleAPIService:       "v1alpha1.cert-manager.io",
		ServingCAValidity:        365 * 24 * time.Hour,
		ServingCertValidity:      30 * 24 * time.Hour,
		ServingCASyncPeriod:      time.Minute,
		LeaderElection: componentbaseconfig.LeaderElectionConfiguration{
			LeaderElect:       true,
			LeaseDuration:     metav1.Duration{Duration: 15 * time.Second},
			RenewDeadline:     metav1.Duration{Duration: 10 * time.Second},
			RetryPeriod:       metav1.Duration{Duration: 2 * time.Second},
			ResourceLock:      "leases",
			ResourceName:      "signet",
			ResourceNamespace: podNamespace(),
		},
		Workers:                    controller.DefaultWorkers,
		WaitingApprovalEventDelay:  10 * time.Second,
		CertificateRequestApproval: approvalBySignet,
		SignTimeout:                sign.DefaultTimeout,
		PodCertificates:            true,
		PodCertificateTrustDomain:  podcertificates.DefaultTrustDomain,
		ClusterTrustBundles:        true,
	}
	o.SecureServing.BindPort = 6443
	o.SecureServing.ServerCert.CertDirectory = ""
	o.SecureServing.ServerCert.PairName = "signet"
	// kube-apiserver already applies priority and fairness before it proxies
	// to signet; doing it again would only need more informers.
	o.Features.EnablePriorityAndFairness = false
	return o
}

// Flags returns the flags, grouped for --help.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	o.SecureServing.AddFlags(fss.FlagSet("secure serving"))
	o.Authentication.AddFlags(fss.FlagSet("authentication"))
	o.Authorization.AddFlags(fss.FlagSet("authorization"))
	o.Audit.AddFlags(fss.FlagSet("auditing"))
	o.Features.AddFlags(fss.FlagSet("features"))
	logsapi.AddFlags(o.Logs, fss.FlagSet("logging"))
	utilfeature.DefaultMutableFeatureGate.AddFlag(fss.FlagSet("feature gates"))

	fs := fss.FlagSet("signet")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Kubeconfig for reading Issuers, ClusterIssuers and their Secrets. Empty: the in-cluster service account.")
	fs.Float32Var(&o.ClientQPS, "kube-api-qps", o.ClientQPS, "Queries per second signet may send to kube-apiserver.")
	fs.IntVar(&o.ClientBurst, "kube-api-burst", o.ClientBurst, "Burst of queries signet may send to kube-apiserver above --kube-api-qps.")
	fs.StringVar(&o.ClusterResourceNamespace, "cluster-resource-namespace", o.ClusterResourceNamespace,
		"Namespace of the Secrets that ClusterIssuers reference, as in cert-manager.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"host:port of the plain-HTTP Prometheus metrics endpoint (/metrics only). Empty disables it; metrics stay on the secure port.")
	fs.IntVar(&o.Workers, "concurrent-workers", o.Workers, "How many CertificateSigningRequests the controller handles at once.")
	fs.DurationVar(&o.WaitingApprovalEventDelay, "waiting-approval-event-delay", o.WaitingApprovalEventDelay,
		"How long a CertificateSigningRequest may wait for approval before signet records its one WaitingApproval event on it. "+
			"CSRs approved sooner (by an approver controller, say) get none, which saves kube-apiserver a write per CSR.")
	fs.BoolVar(&o.CertificateIssuedEvents, "certificate-issued-events", o.CertificateIssuedEvents,
		"Record a CertificateIssued event on every CertificateSigningRequest signet signs, as cert-manager does. "+
			"Off by default: status.certificate already says so, and each event is one more kube-apiserver write and etcd object.")
	fs.DurationVar(&o.MaxDuration, "max-duration", o.MaxDuration,
		"Cap on the validity of every certificate signet issues, whatever the request asks. 0: no cap.")
	fs.BoolVar(&o.CapToCAExpiry, "cap-to-ca-expiry", o.CapToCAExpiry,
		"End every certificate no later than its CA certificate, as kube-controller-manager's signer does. "+
			"Off (cert-manager's behaviour): a certificate gets the full requested duration even past its CA's NotAfter; "+
			"signers whose CA expires within the default duration say so in their ShortLivedCA condition.")
	fs.BoolVar(&o.WriteCAAnnotation, "write-ca-annotation", o.WriteCAAnnotation,
		"Write the issuing CA, base64 PEM, to the experimental.cert-manager.io/ca annotation of each issued CSR (needs update on CSRs).")
	fs.BoolVar(&o.ClusterSignerReferenceCheck, "cluster-signer-reference-check", o.ClusterSignerReferenceCheck,
		"Also require the requester to have the reference verb on clustersigners/<name> for ClusterIssuer signer names.")
	options.BindLeaderElectionFlags(&o.LeaderElection, fss.FlagSet("leader election"))

	cr := fss.FlagSet("issuers signed through cert-manager (ACME, Vault, Venafi, external)")
	cr.StringArrayVar(&o.ExternalIssuers, "external-issuer", o.ExternalIssuers,
		"A cert-manager external issuer resource to serve as signers and sign for, <resource>.<group> (namespaced: signers, "+
			"signer names <resource>.<group>/<namespace>.<name>) or <resource>.<group>,cluster (cluster-scoped: clustersigners, "+
			"<resource>.<group>/<name>). Repeatable. Its CRD must be installed: signet checks it at start.")
	cr.StringVar(&o.CertificateRequestNamespace, "certificate-request-namespace", o.CertificateRequestNamespace,
		"Namespace of the cert-manager CertificateRequests made for ClusterIssuers (an Issuer's are in its own namespace). "+
			"Empty: signet's own namespace ($POD_NAMESPACE, else its service account's).")
	cr.StringVar(&o.CertificateRequestApproval, "certificate-request-approval", o.CertificateRequestApproval,
		"Who approves the CertificateRequests signet makes: signet (the CSR's approval is the decision; needs approve on "+
			"signers.cert-manager.io for the signer names) or external (an approver such as approver-policy decides).")
	cr.DurationVar(&o.SignTimeout, "sign-timeout", o.SignTimeout,
		"How long the sign subresource waits for cert-manager to sign with a Vault, Venafi or external issuer before it "+
			"answers 504 naming the CertificateRequest.")

	pc := fss.FlagSet("pod certificates")
	pc.BoolVar(&o.PodCertificates, "pod-certificates", o.PodCertificates,
		"Fulfil PodCertificateRequests (kubelet's podCertificate projected volumes) for signet's signer names with CA issuers: "+
			"the pod's namespace must be a namespaced Issuer's own, and its ServiceAccount must be allowed reference on the signer.")
	pc.StringVar(&o.PodCertificateTrustDomain, "pod-certificate-trust-domain", o.PodCertificateTrustDomain,
		"SPIFFE trust domain of pod certificates: each carries the URI spiffe://<trust domain>/ns/<namespace>/sa/<service account>.")
	pc.BoolVar(&o.ClusterTrustBundles, "cluster-trust-bundles", o.ClusterTrustBundles,
		"Publish each CA signer's CA as a ClusterTrustBundle named <signer name with / as :>:ca (needs attest on the signer names), "+
			"keeping a replaced CA until the last pod certificate signet issued from it expires.")

	sc := fss.FlagSet("self-managed serving certificates (without --tls-cert-file)")
	sc.StringVar(&o.ServiceName, "service-name", o.ServiceName, "Name of the Service in front of signet, for the generated serving certificate's DNS names.")
	sc.StringVar(&o.ServiceNamespace, "service-namespace", o.ServiceNamespace, "Namespace of that Service.")
	sc.StringVar(&o.CABundleAPIService, "ca-bundle-apiservice", o.CABundleAPIService,
		"Without --tls-cert-file, signet generates a serving CA and certificate in memory (never written anywhere) and keeps this APIService's "+
			"spec.caBundle holding the CA of every live replica (needs get and update on it). Empty: touch no APIService, "+
			"e.g. when cert-manager's cainjector fills the caBundle and --tls-cert-file is its certificate.")
	sc.DurationVar(&o.ServingCAValidity, "serving-ca-validity", o.ServingCAValidity,
		"Lifetime of the generated serving CA; a new one is made, published and then used after two thirds of it.")
	sc.DurationVar(&o.ServingCertValidity, "serving-cert-validity", o.ServingCertValidity,
		"Lifetime of the generated serving certificate; it is renewed after two thirds of it.")
	sc.DurationVar(&o.ServingCASyncPeriod, "serving-ca-sync-period", o.ServingCASyncPeriod,
		"How often each replica renews its CA's heartbeat in the APIService (an annotation); another replica's CA "+
			"without a heartbeat for 5 periods is dropped from the caBundle.")
	return fss
}

// AddFlags adds every flag to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet, fss cliflag.NamedFlagSets) {
	for _, f := range fss.FlagSets {
		fs.AddFlagSet(f)
	}
}

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	errs = append(errs, o.Audit.Validate()...)
	errs = append(errs, o.Features.Validate()...)
	if err := logsapi.ValidateAndApply(o.Logs, utilfeature.DefaultFeatureGate); err != nil {
		errs = append(errs, err)
	}
	if o.Workers <= 0 {
		errs = append(errs, fmt.Errorf("--concurrent-workers must be positive"))
	}
	if o.WaitingApprovalEventDelay < 0 {
		errs = append(errs, fmt.Errorf("--waiting-approval-event-delay must not be negative"))
	}
	if o.MaxDuration < 0 {
		errs = append(errs, fmt.Errorf("--max-duration must not be negative"))
	}
	if o.PodCertificates {
		if err := podcertificates.ValidateTrustDomain(o.PodCertificateTrustDomain); err != nil {
			errs = append(errs, fmt.Errorf("--pod-certificate-trust-domain: %w", err))
		}
		if o.MaxDuration > 0 && o.MaxDuration < podcertificates.MinLifetime {
			errs = append(errs, fmt.Errorf("--max-duration %s is shorter than %s, the shortest pod certificate kube-apiserver accepts: raise it, or set --pod-certificates=false",
				o.MaxDuration, podcertificates.MinLifetime))
		}
	}
	if o.LeaderElection.LeaderElect && o.LeaderElection.ResourceNamespace == "" {
		errs = append(errs, fmt.Errorf("--leader-elect-resource-namespace is required with --leader-elect"))
	}
	if _, err := o.signerNames(); err != nil {
		errs = append(errs, err)
	}
	if o.CertificateRequestApproval != approvalBySignet && o.CertificateRequestApproval != approvalByExternal {
		errs = append(errs, fmt.Errorf("--certificate-request-approval %q: want %s or %s", o.CertificateRequestApproval, approvalBySignet, approvalByExternal))
	}
	if ns := o.CertificateRequestNamespace; ns != "" {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--certificate-request-namespace %q: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	if o.SignTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--sign-timeout must be positive"))
	}
	if o.ClientQPS <= 0 || o.ClientBurst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive"))
	}
	if msgs := validation.IsDNS1123Label(o.ClusterResourceNamespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--cluster-resource-namespace %q: %s", o.ClusterResourceNamespace, strings.Join(msgs, "; ")))
	}
	if o.SecureServing.ServerCert.CertDirectory != "" {
		errs = append(errs, fmt.Errorf("--cert-dir is not supported: signet never writes key material; use --tls-cert-file or its self-managed serving CA"))
	}
	if o.selfManagedServing() {
		if o.ServingCAValidity <= 0 || o.ServingCertValidity <= 0 || o.ServingCASyncPeriod <= 0 {
			errs = append(errs, fmt.Errorf("--serving-ca-validity, --serving-cert-validity and --serving-ca-sync-period must be positive"))
		} else if o.CABundleAPIService != "" && o.ServingCASyncPeriod < servingcert.MinSyncPeriod {
			errs = append(errs, fmt.Errorf("--serving-ca-sync-period %s is under a second, the resolution of the caBundle heartbeats", o.ServingCASyncPeriod))
		} else if o.ServingCertValidity > o.ServingCAValidity {
			errs = append(errs, fmt.Errorf("--serving-cert-validity %s is longer than --serving-ca-validity %s", o.ServingCertValidity, o.ServingCAValidity))
		}
	}
	if o.MetricsBindAddress != "" {
		if _, _, err := net.SplitHostPort(o.MetricsBindAddress); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-bind-address %q: %v", o.MetricsBindAddress, err))
		}
	}
	return utilerrors.NewAggregate(errs)
}

// signingPolicy is the policy of both request paths, CSRs and the sign
// subresource: the issuance pipeline's.
func (o *Options) signingPolicy() issuance.Policy {
	return issuance.Policy{
		MaxDuration:                 o.MaxDuration,
		ClusterSignerReferenceCheck: o.ClusterSignerReferenceCheck,
		PKI:                         signers.Policy{CapToCAExpiry: o.CapToCAExpiry},
	}
}

// externalIssuers parses --external-issuer.
func (o *Options) externalIssuers() ([]wire.ExternalIssuer, error) {
	out := make([]wire.ExternalIssuer, 0, len(o.ExternalIssuers))
	for _, s := range o.ExternalIssuers {
		e, err := wire.ParseExternalIssuer(s)
		if err != nil {
			return nil, fmt.Errorf("--external-issuer %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// signerNames parses signer names: cert-manager's and --external-issuer's.
func (o *Options) signerNames() (wire.SignerNames, error) {
	external, err := o.externalIssuers()
	if err != nil {
		return wire.SignerNames{}, err
	}
	names, err := wire.NewSignerNames(external...)
	if err != nil {
		return wire.SignerNames{}, fmt.Errorf("--external-issuer: %w", err)
	}
	return names, nil
}

// certificateRequests configures the backend that signs through cert-manager.
func (o *Options) certificateRequests() issuance.CertificateRequestOptions {
	ns := o.CertificateRequestNamespace
	if ns == "" {
		ns = podNamespace()
	}
	return issuance.CertificateRequestOptions{Namespace: ns, ExternalApproval: o.CertificateRequestApproval == approvalByExternal}
}

// podNamespace is the namespace signet runs in, from the service account
// mount, else signet-system.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "signet-system"
}

// selfManagedServing: no --tls-cert-file, so signet makes its own serving
// certificate.
func (o *Options) selfManagedServing() bool {
	return o.SecureServing.ServerCert.CertKey.CertFile == "" && o.SecureServing.ServerCert.CertKey.KeyFile == ""
}

// servingNames are the names a generated serving certificate carries:
// kube-apiserver's aggregator dials <service>.<namespace>.svc.
func (o *Options) servingNames() (string, []string, []net.IP) {
	svc := o.ServiceName + "." + o.ServiceNamespace + ".svc"
	ips := []net.IP{netutils.ParseIPSloppy("127.0.0.1")}
	if ip := o.SecureServing.BindAddress; ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		ips = append(ips, ip)
	}
	return svc, []string{svc, svc + ".cluster.local", "localhost"}, ips
}

// metricsServerTimeouts bound the plain-HTTP metrics server.
const (
	metricsReadHeaderTimeout = 5 * time.Second
	metricsWriteTimeout      = 30 * time.Second
	metricsIdleTimeout       = 90 * time.Second
	metricsMaxHeaderBytes    = 16 << 10
)
