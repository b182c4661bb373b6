// Package sign is the storage of the signers/sign and clustersigners/sign
// subresources: POST a SigningRequest, get the certificate in the response.
// It runs the same policy as the CSR path (pkg/signers), on any replica, and
// stores nothing. Permission to create the subresource is the approval.
package sign

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/ca"
)

// Source is the read model the subresource signs from.
type Source interface {
	Get(ref issuers.Ref) (*issuers.State, bool)
}

// REST signs SigningRequests for one kind of signer.
type REST struct {
	kind     issuers.Kind
	resource schema.GroupResource
	source   Source
	policy   signers.Policy
	clock    clock.PassiveClock
}

var (
	_ rest.Storage                  = &REST{}
	_ rest.NamedCreater             = &REST{}
	_ rest.GroupVersionKindProvider = &REST{}
)

// NewREST returns the sign subresource of signers (kind Issuer) or
// clustersigners (kind ClusterIssuer).
func NewREST(kind issuers.Kind, source Source, policy signers.Policy) *REST {
	res := certmanager.Resource("signers")
	if kind == issuers.KindClusterIssuer {
		res = certmanager.Resource("clustersigners")
	}
	return &REST{kind: kind, resource: res, source: source, policy: policy, clock: clock.RealClock{}}
}

func (r *REST) New() runtime.Object { return &certmanager.SigningRequest{} }
func (r *REST) Destroy()            {}

// GroupVersionKind: the subresource takes and returns SigningRequest, not the
// parent's kind (as serviceaccounts/token does with TokenRequest).
func (r *REST) GroupVersionKind(containingGV schema.GroupVersion) schema.GroupVersionKind {
	return containingGV.WithKind("SigningRequest")
}

// Create signs the request with the named signer.
func (r *REST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	start := r.clock.Now()
	req, ok := obj.(*certmanager.SigningRequest)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("expected a SigningRequest, got %T", obj))
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj); err != nil {
			return nil, err
		}
	}
	ref := issuers.Ref{Kind: r.kind, Name: name}
	if r.kind == issuers.KindIssuer {
		ref.Namespace = genericapirequest.NamespaceValue(ctx)
	}
	out, err := r.sign(ref, req)
	signRequests.WithLabelValues(string(r.kind), resultOf(err)).Inc()
	signLatency.WithLabelValues(string(r.kind)).Observe(r.clock.Since(start).Seconds())
	return out, err
}

func (r *REST) sign(ref issuers.Ref, req *certmanager.SigningRequest) (*certmanager.SigningRequest, error) {
	state, found := r.source.Get(ref)
	if !found {
		return nil, apierrors.NewNotFound(r.resource, ref.Name)
	}
	switch state.Issuer.Type {
	case issuers.TypeCA:
	case issuers.TypeSelfSigned:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s is SelfSigned: it signs with the requester's own private key, "+
			"which a SigningRequest does not carry; use a CertificateSigningRequest with the %s annotation",
			ref, "experimental.cert-manager.io/private-key-secret-name"))
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s is a %s issuer: signet cannot sign with it synchronously", ref, state.Issuer.Type))
	}
	if !state.Ready {
		return nil, apierrors.NewConflict(r.resource, ref.Name, fmt.Errorf("signer is not ready (%s): %s", state.Reason, state.Message))
	}

	in := signers.Input{
		Request:           req.Spec.Request,
		Usages:            req.Spec.Usages,
		ExpirationSeconds: req.Spec.ExpirationSeconds,
	}
	if req.Spec.IsCA {
		in.Annotations = map[string]string{signers.AnnotationRequestIsCA: "true"}
	}
	now := r.clock.Now()
	tmpl, err := signers.BuildTemplate(in, r.policy, now)
	if err != nil {
		return nil, policyError(err)
	}
	result, err := ca.New(state.CA, caConfig(state.Issuer.CA)).Sign(tmpl, now)
	if errors.Is(err, signers.ErrCANotValid) {
		return nil, apierrors.NewConflict(r.resource, ref.Name, err)
	}
	if err != nil {
		return nil, policyError(err)
	}
	signers.CountIssued(string(r.kind), result)
	out := req.DeepCopy()
	out.Status = certmanager.SigningRequestStatus{
		Certificate: result.CertificatePEM,
		CA:          result.CAPEM,
		NotBefore:   metav1.NewTime(result.NotBefore),
		NotAfter:    metav1.NewTime(result.NotAfter),
	}
	return out, nil
}

func caConfig(c *issuers.CAConfig) *ca.Config {
	if c == nil {
		return nil
	}
	return &ca.Config{CRLDistributionPoints: c.CRLDistributionPoints, OCSPServers: c.OCSPServers, IssuingCertificateURLs: c.IssuingCertificateURLs}
}

// policyError is a 400 whose cause carries the same reason a CSR's Failed
// condition would (ErrorParseDuration, KeyUsageMismatch, ...).
func policyError(err error) error {
	var f *signers.Failure
	if !errors.As(err, &f) {
		return apierrors.NewInternalError(err)
	}
	e := apierrors.NewBadRequest(f.Reason + ": " + f.Message)
	e.ErrStatus.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: metav1.CauseType(f.Reason), Message: f.Message}}}
	return e
}

func resultOf(err error) string {
	switch {
	case err == nil:
		return "issued"
	case apierrors.IsBadRequest(err):
		return "rejected"
	case apierrors.IsNotFound(err):
		return "not_found"
	case apierrors.IsConflict(err):
		return "not_ready"
	}
	return "error"
}

var (
	signRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_sign_requests_total",
		Help: "Requests to the sign subresource, by issuer kind and result (issued, rejected, not_found, not_ready, error).",
	}, []string{"issuer_kind", "result"})
	signLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "signet_sign_duration_seconds",
		Help:    "Time signet spends on one sign subresource request, excluding the network.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25},
	}, []string{"issuer_kind"})
)

func init() {
	legacyregistry.RawMustRegister(signRequests, signLatency)
}
