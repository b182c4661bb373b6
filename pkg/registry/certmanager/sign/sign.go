// Package sign is the storage of the signers/sign and clustersigners/sign
// subresources: POST a SigningRequest, get the certificate in the response.
// It hands the request to the same issuance pipeline as the CSR path, on any
// replica, and stores nothing. Permission to create the subresource is the
// approval, so no reference check applies.
package sign

import (
	"context"
	"fmt"
	"sync"
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
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/wire"
)

// Issuer is the issuance pipeline the subresource hands requests to.
type Issuer interface {
	Issue(ctx context.Context, req *issuance.Request) (issuance.Outcome, error)
	// Withdraw removes what a backend made for a request that is answered.
	Withdraw(ctx context.Context, ref issuers.Ref, obj issuance.Object) error
	// OnChange says which request may be done waiting.
	OnChange(func(issuance.Object))
}

// DefaultTimeout is how long a request waits for an issuer that signs
// through cert-manager (Vault, Venafi, external) unless told.
const DefaultTimeout = 20 * time.Second

// Options configure the subresource.
type Options struct {
	// Names knows the external issuers' signer object names.
	Names wire.SignerNames
	// Timeout bounds the wait for a CertificateRequest (DefaultTimeout if 0).
	Timeout time.Duration
}

// REST signs SigningRequests for one kind of signer.
type REST struct {
	kind     issuers.Kind
	resource schema.GroupResource
	issuer   Issuer
	opts     Options
	clock    clock.PassiveClock

	// waiters are the requests waiting for their CertificateRequest, by UID:
	// a change to it wakes the request.
	waiters sync.Map
}

var (
	_ rest.Storage                  = &REST{}
	_ rest.NamedCreater             = &REST{}
	_ rest.GroupVersionKindProvider = &REST{}
)

// NewREST returns the sign subresource of signers (kind Issuer) or
// clustersigners (kind ClusterIssuer).
func NewREST(kind issuers.Kind, issuer Issuer, opts Options) *REST {
	res := certmanager.Resource("signers")
	if kind == issuers.KindClusterIssuer {
		res = certmanager.Resource("clustersigners")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	r := &REST{kind: kind, resource: res, issuer: issuer, opts: opts, clock: clock.RealClock{}}
	issuer.OnChange(r.wake)
	return r
}

func (r *REST) wake(obj issuance.Object) {
	if obj.Kind != issuance.KindSigningRequest {
		return
	}
	if ch, ok := r.waiters.Load(obj.UID); ok {
		select {
		case ch.(chan struct{}) <- struct{}{}:
		default: // already woken
		}
	}
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
	namespace := ""
	if r.kind == issuers.KindIssuer {
		namespace = genericapirequest.NamespaceValue(ctx)
	}
	out, err := r.sign(ctx, namespace, name, req)
	signRequests.WithLabelValues(string(r.kind), resultOf(err)).Inc()
	signLatency.WithLabelValues(string(r.kind)).Observe(r.clock.Since(start).Seconds())
	return out, err
}

func (r *REST) sign(ctx context.Context, namespace, name string, req *certmanager.SigningRequest) (*certmanager.SigningRequest, error) {
	in := &issuance.Request{
		// A SigningRequest is not stored: each call is a request of its own.
		Object:      issuance.Object{Kind: issuance.KindSigningRequest, Namespace: namespace, Name: name, UID: uuid.NewUUID()},
		PKCS10:      req.Spec.Request,
		Usages:      req.Spec.Usages,
		IsCA:        req.Spec.IsCA,
		Synchronous: true,
		Approval:    approval(ctx, r.resource),
	}
	if s := req.Spec.ExpirationSeconds; s != nil {
		d := time.Duration(*s) * time.Second
		in.Duration = &d
	}
	// Registered before the first Issue, so that no change is missed.
	wake := make(chan struct{}, 1)
	r.waiters.Store(in.Object.UID, wake)
	defer r.waiters.Delete(in.Object.UID)
	deadline := r.clock.Now().Add(r.opts.Timeout)

	var outcome issuance.Outcome
	var err error
	for {
		outcome, err = r.issue(ctx, in)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		w, waits := outcome.(*issuance.Waiting)
		if !waits || w.For != issuance.WaitCertificateRequest {
			break
		}
		// cert-manager has it: wait for its answer, up to the timeout. The
		// CertificateRequest stays, so the caller can look it up.
		left := deadline.Sub(r.clock.Now())
		if left <= 0 {
			return nil, apierrors.NewTimeoutError(fmt.Sprintf("not signed within %s: %s", r.opts.Timeout, w.Message), 0)
		}
		poll := left
		if w.Backoff && poll > time.Second {
			poll = time.Second // nothing will wake it: look again
		}
		t := time.NewTimer(poll)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, apierrors.NewTimeoutError(fmt.Sprintf("the request ended while waiting: %s", w.Message), 0)
		}
		t.Stop()
	}
	if _, answered := outcome.(*issuance.Waiting); !answered {
		// Answered: whatever a backend made for it (a CertificateRequest) goes.
		if err := r.issuer.Withdraw(ctx, in.Signer, in.Object); err != nil {
			klog.FromContext(ctx).Error(err, "Leaving what was made for a SigningRequest", "signer", in.Signer.String())
		}
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
		// Nothing else waits here: the caller gets why now, and asks again.
		switch o.For {
		case issuance.WaitIssuerNotFound:
			return nil, apierrors.NewNotFound(r.resource, name)
		case issuance.WaitIssuerNotSupported:
			return nil, apierrors.NewBadRequest(o.Message)
		}
		return nil, apierrors.NewConflict(r.resource, name, fmt.Errorf("signer is not ready (%s): %s", o.Reason, o.Message))
	}
	return nil, apierrors.NewInternalError(fmt.Errorf("unexpected outcome %T", outcome))
}

// issue tries the signers the name may mean (an external issuer's, then a
// cert-manager issuer's: wire.SignerNames.ObjectRefs) until one exists.
func (r *REST) issue(ctx context.Context, in *issuance.Request) (issuance.Outcome, error) {
	var outcome issuance.Outcome
	for _, ref := range r.opts.Names.ObjectRefs(r.kind, in.Object.Namespace, in.Object.Name) {
		in.Signer = ref
		var err error
		if outcome, err = r.issuer.Issue(ctx, in); err != nil {
			return nil, err
		}
		if w, ok := outcome.(*issuance.Waiting); !ok || w.For != issuance.WaitIssuerNotFound {
			return outcome, nil
		}
	}
	return outcome, nil
}

// approval says who approved a SigningRequest: whoever may create the
// subresource, which is the approval.
func approval(ctx context.Context, resource schema.GroupResource) string {
	who := "an unknown user"
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		who = "user " + u.GetName()
	}
	return fmt.Sprintf("%s may create %s/sign", who, resource.Resource)
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
	case apierrors.IsTimeout(err):
		return "timeout"
	}
	return "error"
}

var (
	signRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_sign_requests_total",
		Help: "Requests to the sign subresource, by issuer kind and result (issued, rejected, not_found, not_ready, timeout, error).",
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
