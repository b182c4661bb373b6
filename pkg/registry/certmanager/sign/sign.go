// Package sign is the storage of the signers/sign and clustersigners/sign
// subresources: POST a SigningRequest, get the certificate in the response.
// It hands the request to the same issuance pipeline as the CSR path, on any
// replica, and stores nothing. Permission to create the subresource is the
// approval, so no reference check applies.
package sign

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
)

// Issuer is the issuance pipeline the subresource hands requests to.
type Issuer interface {
	Issue(ctx context.Context, req *issuance.Request) (issuance.Outcome, error)
}

// REST signs SigningRequests for one kind of signer.
type REST struct {
	kind     issuers.Kind
	resource schema.GroupResource
	issuer   Issuer
	clock    clock.PassiveClock
}

var (
	_ rest.Storage                  = &REST{}
	_ rest.NamedCreater             = &REST{}
	_ rest.GroupVersionKindProvider = &REST{}
)

// NewREST returns the sign subresource of signers (kind Issuer) or
// clustersigners (kind ClusterIssuer).
func NewREST(kind issuers.Kind, issuer Issuer) *REST {
	res := certmanager.Resource("signers")
	if kind == issuers.KindClusterIssuer {
		res = certmanager.Resource("clustersigners")
	}
	return &REST{kind: kind, resource: res, issuer: issuer, clock: clock.RealClock{}}
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
	out, err := r.sign(ctx, ref, req)
	signRequests.WithLabelValues(string(r.kind), resultOf(err)).Inc()
	signLatency.WithLabelValues(string(r.kind)).Observe(r.clock.Since(start).Seconds())
	return out, err
}

func (r *REST) sign(ctx context.Context, ref issuers.Ref, req *certmanager.SigningRequest) (*certmanager.SigningRequest, error) {
	in := &issuance.Request{
		// A SigningRequest is not stored: each call is a request of its own.
		Object: issuance.Object{Kind: "SigningRequest", Namespace: ref.Namespace, Name: ref.Name, UID: uuid.NewUUID()},
		Signer: ref,
		PKCS10: req.Spec.Request,
		Usages: req.Spec.Usages,
		IsCA:   req.Spec.IsCA,
	}
	if s := req.Spec.ExpirationSeconds; s != nil {
		d := time.Duration(*s) * time.Second
		in.Duration = &d
	}
	outcome, err := r.issuer.Issue(ctx, in)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	switch o := outcome.(type) {
	case *issuance.Issued:
		issuance.CountIssued(r.kind, o)
		out := req.DeepCopy()
		out.Status = certmanager.SigningRequestStatus{
			Certificate: o.CertificatePEM,
			CA:          o.CAPEM,
			NotBefore:   metav1.NewTime(o.NotBefore),
			NotAfter:    metav1.NewTime(o.NotAfter),
		}
		return out, nil
	case *issuance.Failed:
		return nil, rejected(o.Reason, o.Message)
	case *issuance.Waiting:
		// Nothing waits here: the caller gets why now, and asks again.
		switch o.For {
		case issuance.WaitIssuerNotFound:
			return nil, apierrors.NewNotFound(r.resource, ref.Name)
		case issuance.WaitIssuerNotSupported:
			return nil, apierrors.NewBadRequest(o.Message)
		}
		return nil, apierrors.NewConflict(r.resource, ref.Name, fmt.Errorf("signer is not ready (%s): %s", o.Reason, o.Message))
	}
	return nil, apierrors.NewInternalError(fmt.Errorf("unexpected outcome %T", outcome))
}

// rejected is a 400 whose cause carries the same reason a CSR's Failed
// condition would (ErrorParseDuration, KeyUsageMismatch, ...).
func rejected(reason, message string) error {
	e := apierrors.NewBadRequest(reason + ": " + message)
	e.ErrStatus.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: metav1.CauseType(reason), Message: message}}}
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
