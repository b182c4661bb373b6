// Package issuance is the one pipeline every request to sign goes through,
// whichever edge it came from (a CertificateSigningRequest, the sign
// subresource): request + issuer state + policy + clock → Issued, Failed (a
// terminal reason) or Waiting (for what). The edges read their own objects
// into a Request and write the Outcome back; the pipeline decides. Each
// cert-manager issuer type is one Backend package (issuance/ca,
// issuance/selfsigned), registered in one table (issuance/backends).
package issuance

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
)

// Request is one request to sign, typed: an edge parses its object (and a
// CSR's annotations) once, into this.
type Request struct {
	// Object names the request at its edge, for messages; its UID is stable
	// for the request's life, so a backend that acts on the request's behalf
	// across calls (creating an object, say) can name what it made after it.
	Object Object
	// Signer is the issuer asked to sign.
	Signer issuers.Ref
	// PKCS10 is the PEM "CERTIFICATE REQUEST".
	PKCS10 []byte
	// Usages are certificates.k8s.io/v1 key usages.
	Usages []string
	// IsCA asks for a CA certificate.
	IsCA bool
	// Duration is the lifetime asked for; nil: the default (wire.DefaultDuration).
	Duration *time.Duration
	// PrivateKeySecretName names the Secret holding the requester's own
	// private key, which a SelfSigned issuer signs with.
	PrivateKeySecretName string
	// Requester is who asked, for the reference check. Nil when the edge's
	// own authorization is the whole check (the sign subresource: permission
	// to create it is the approval).
	Requester *Requester
	// Synchronous: the edge answers in the request itself (the sign
	// subresource), so a backend that cannot answer within seconds refuses.
	Synchronous bool
	// Approval says who or what approved the request, for backends that pass
	// the approval on (the CertificateRequest backend writes it into the
	// Approved condition it sets).
	Approval string
	// Malformed is what the edge could not read (a request-duration
	// annotation that is not a duration). The request fails with it where
	// the request itself is checked: after the issuer, as cert-manager orders it.
	Malformed *Failed
	// AlwaysCheckReference checks reference on ClusterIssuers too, whatever
	// Policy.ClusterSignerReferenceCheck says: a pod certificate has no other
	// gate.
	AlwaysCheckReference bool
	// Template, when set, makes the certificate to sign in place of the
	// PKCS#10 request under the policy (PKCS10, Usages, IsCA, Duration and
	// Malformed are then unused): for an edge whose certificates say only
	// what kube-apiserver verified (pod certificates). It is called with the
	// ready issuer, after the reference check; an Outcome instead of a
	// template ends the request there.
	Template func(issuer *issuers.State, now time.Time) (*signers.Template, Outcome, error)
}

// Kinds of request objects, one per edge.
const (
	KindCertificateSigningRequest = "CertificateSigningRequest"
	KindSigningRequest            = "SigningRequest"
)

// Object names a request object at its edge.
type Object struct {
	// Kind is the edge's kind: CertificateSigningRequest, SigningRequest.
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
}

func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Requester is the identity that asked, as kube-apiserver authenticated it.
type Requester struct {
	Username string
	UID      string
	Groups   []string
	Extra    map[string][]string
}

// Outcome is what the pipeline made of a request: *Issued, *Failed or *Waiting.
type Outcome interface{ outcome() }

// Issued is a signed certificate.
type Issued struct {
	// CertificatePEM is the leaf, then the intermediates up to (not
	// including) the root.
	CertificatePEM []byte
	// CAPEM is the trust anchor for the chain.
	CAPEM []byte
	// NotBefore and NotAfter are the leaf's validity.
	NotBefore, NotAfter time.Time
	// OutlivesCA: NotAfter is after the issuing CA certificate's NotAfter
	// (cert-manager's rule allows it; --cap-to-ca-expiry does not).
	OutlivesCA bool
}

// Failed is terminal: the request can never be signed as it is.
type Failed struct {
	Reason  string
	Message string
}

// Waiting means the request cannot be signed yet; Reason and Message say
// what for (an event's reason and message).
type Waiting struct {
	For     WaitCause
	Reason  string
	Message string
	// Backoff: nothing signet watches will bring the request back when what
	// it waits for changes (a Secret read with a GET, a CA that expired since
	// it was judged ready), so the edge retries with backoff. Otherwise a
	// change to the issuer or its CA Secret re-drives the request.
	Backoff bool
}

func (*Issued) outcome()  {}
func (*Failed) outcome()  {}
func (*Waiting) outcome() {}

// WaitCause is what a request waits for.
type WaitCause int

const (
	// WaitIssuerNotFound: no such Issuer or ClusterIssuer.
	WaitIssuerNotFound WaitCause = iota + 1
	// WaitIssuerNotSupported: an issuer type no backend signs with.
	WaitIssuerNotSupported
	// WaitIssuerNotReady: the issuer is not ready (its CA Secret missing,
	// invalid or expired).
	WaitIssuerNotReady
	// WaitRequestSecret: a Secret the request names (a SelfSigned
	// requester's private key) is missing or unreadable.
	WaitRequestSecret
	// WaitCertificateRequest: another controller (cert-manager, an external
	// issuer's) has the request as a CertificateRequest and has not answered
	// yet; the CertificateRequest's changes re-drive the request (Notifier).
	WaitCertificateRequest
)

// Backend signs with one type of cert-manager issuer. Each is one package
// under pkg/issuance, constructed from Deps, and one line in
// issuance/backends.
type Backend interface {
	// Issue signs tmpl — req, checked against the issuer and the policy —
	// with issuer, which is Ready. It returns *Issued, *Failed or *Waiting;
	// an error is transient and the request is tried again. A backend that
	// completes later (one that asks another controller to sign) returns
	// Waiting and is called again with the same request (same Object.UID)
	// when the edge is re-driven; it must then find, not repeat, what it did.
	Issue(ctx context.Context, req *Request, tmpl *signers.Template, issuer *issuers.State, now time.Time) (Outcome, error)
}

// Withdrawer is a Backend that leaves something behind for a request (a
// CertificateRequest) and takes it away when the request is denied or deleted.
type Withdrawer interface {
	// Withdraw removes what the backend made for obj at issuer, if anything.
	Withdraw(ctx context.Context, obj Object, issuer *issuers.State) error
}

// Notifier is a Backend whose Waiting outcomes end on a change it sees; it
// tells the edges which request to drive again.
type Notifier interface {
	OnChange(func(Object))
}

// Deps is what backends are built from.
type Deps struct {
	// Secrets reads Secrets that requests name (SelfSigned private keys).
	Secrets SecretReader
	// ClusterResourceNamespace holds the Secrets of ClusterIssuers, and the
	// private keys that requests to SelfSigned ClusterIssuers name.
	ClusterResourceNamespace string
	// Dynamic reads and writes the objects a backend works through
	// (cert-manager CertificateRequests).
	Dynamic dynamic.Interface
	// Context bounds what backends run in the background (caches); the
	// process's lifetime.
	Context context.Context
	// CertificateRequests configures the backend that signs through
	// cert-manager CertificateRequests.
	CertificateRequests CertificateRequestOptions
}

// CertificateRequestOptions configure the CertificateRequest backend.
type CertificateRequestOptions struct {
	// Namespace holds the CertificateRequests of ClusterIssuers (an Issuer's
	// are in its own namespace).
	Namespace string
	// ExternalApproval leaves approving CertificateRequests to another
	// approver (approver-policy); otherwise signet approves each one, the
	// request's own approval being the decision.
	ExternalApproval bool
}

// SecretReader reads one Secret's data. Today a GET (NewSecretGetter); the
// read model's watched cache can satisfy it instead.
type SecretReader interface {
	// SecretData returns the data of Secret namespace/name; found is false
	// when it does not exist.
	SecretData(ctx context.Context, namespace, name string) (data map[string][]byte, found bool, err error)
}
