package issuance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// Source is the read model the pipeline signs from.
type Source interface {
	Get(ref issuers.Ref) (*issuers.State, bool)
}

// Pipeline decides what happens to a request. It is safe for concurrent use.
type Pipeline struct {
	source     Source
	backends   map[issuers.Type]Backend
	policy     Policy
	references ReferenceChecker
	clock      clock.PassiveClock
	recorder   Recorder
}

// Recorder is told, before a CA issuer signs, until when the certificate
// will be valid, so that the CA stays trusted that long: the signer's
// ClusterTrustBundle keeps a replaced CA until the last certificate signet
// issued from it expires. It returns once that is durable; an error makes
// the request wait and retry, so no certificate is issued unrecorded.
type Recorder interface {
	KeepUntil(ctx context.Context, ref issuers.Ref, ca *signers.CA, notAfter time.Time) error
}

// ReasonTrustBundleNotRecorded: the Recorder failed; the request waits.
const ReasonTrustBundleNotRecorded = "TrustBundleNotRecorded"

// SetRecorder makes every certificate a CA issuer signs go through r first.
// Call it before the pipeline is used.
func (p *Pipeline) SetRecorder(r Recorder) { p.recorder = r }

// New builds the pipeline. references may be nil only if no request will
// carry a Requester.
func New(source Source, backends map[issuers.Type]Backend, policy Policy, references ReferenceChecker, clk clock.PassiveClock) *Pipeline {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Pipeline{source: source, backends: backends, policy: policy, references: references, clock: clk}
}

// Issue takes req as far as it can go now. The checks, in order (cert-manager's
// order where it has one): the issuer exists; a backend signs with its type;
// the requester may reference it; it is ready; the request is readable, its
// lifetime allowed, and it passes the PKI layer's rules; then the backend
// signs. An error is transient (an API call failed): try again.
func (p *Pipeline) Issue(ctx context.Context, req *Request) (Outcome, error) {
	ref := req.Signer
	state, found := p.source.Get(ref)
	if !found {
		return &Waiting{For: WaitIssuerNotFound, Reason: wire.ReasonIssuerNotFound, Message: fmt.Sprintf("Referenced %s not found", ref)}, nil
	}
	typ := state.Issuer.Type
	backend, supported := p.backends[typ]
	// An issuer whose type cannot be told (a bad spec) is not unsupported
	// but not ready: its readiness says what is wrong.
	if !supported && typ != issuers.TypeUnknown {
		return notSupported(state), nil
	}

	if req.Requester != nil && (ref.Kind == issuers.KindIssuer || req.AlwaysCheckReference || p.policy.ClusterSignerReferenceCheck) {
		if p.references == nil {
			return nil, errors.New("no reference checker configured")
		}
		allowed, err := p.references.MayReference(ctx, *req.Requester, ref)
		if err != nil {
			return nil, fmt.Errorf("reference check for %s: %w", ref, err)
		}
		if !allowed {
			return &Failed{Reason: wire.ReasonDeniedReference, Message: "Requester may not reference " + referenceName(ref)}, nil
		}
	}

	if !state.Ready {
		reason := wire.ReasonIssuerNotReady
		if state.Reason == issuers.ReasonSecretNotFound {
			reason = wire.ReasonSecretMissing
		}
		return &Waiting{For: WaitIssuerNotReady, Reason: reason, Message: fmt.Sprintf("%s is not ready: %s", ref, state.Message)}, nil
	}
	if backend == nil { // a Ready issuer always has a known type; this guards the table
		return notSupported(state), nil
	}

	if req.Template != nil {
		now := p.clock.Now()
		tmpl, stop, err := req.Template(state, now)
		if err != nil || stop != nil {
			return stop, err
		}
		return p.sign(ctx, backend, req, tmpl, state, now)
	}
	if req.Malformed != nil {
		return req.Malformed, nil
	}
	lifetime, failed := p.policy.Lifetime(req.Duration)
	if failed != nil {
		return failed, nil
	}
	now := p.clock.Now()
	tmpl, err := signers.BuildTemplate(signers.Input{Request: req.PKCS10, Usages: req.Usages, IsCA: req.IsCA, Duration: lifetime}, p.policy.PKI, now)
	var f *signers.Failure
	if errors.As(err, &f) {
		return &Failed{Reason: f.Reason, Message: f.Message}, nil
	}
	if err != nil {
		return nil, err
	}
	return p.sign(ctx, backend, req, tmpl, state, now)
}

// sign records a CA issuer's certificate with the Recorder, then has the
// backend sign it. The template's NotAfter is the latest the certificate
// can end (a backend may only shorten it, to the CA's).
func (p *Pipeline) sign(ctx context.Context, backend Backend, req *Request, tmpl *signers.Template, state *issuers.State, now time.Time) (Outcome, error) {
	if p.recorder != nil && state.Issuer.Type == issuers.TypeCA && state.CA != nil && tmpl.Cert != nil {
		if err := p.recorder.KeepUntil(ctx, req.Signer, state.CA, tmpl.Cert.NotAfter); err != nil {
			return &Waiting{For: WaitIssuerNotReady, Reason: ReasonTrustBundleNotRecorded, Backoff: true,
				Message: fmt.Sprintf("Cannot record the certificate in the ClusterTrustBundle of %s before signing it: %v", req.Signer, err)}, nil
		}
	}
	return backend.Issue(ctx, req, tmpl, state, now)
}

// Withdraw takes back what a backend left for a request that is denied or
// deleted (a CertificateRequest). Only the backend of the issuer's type is
// asked: the others have nothing for it, and need start nothing to say so.
func (p *Pipeline) Withdraw(ctx context.Context, ref issuers.Ref, obj Object) error {
	state, found := p.source.Get(ref)
	if !found {
		return nil
	}
	if w, ok := p.backends[state.Issuer.Type].(Withdrawer); ok {
		return w.Withdraw(ctx, obj, state)
	}
	return nil
}

// OnChange registers f with every backend that re-drives requests (Notifier):
// f is called with a request whose Waiting may have ended.
func (p *Pipeline) OnChange(f func(Object)) {
	seen := map[Notifier]bool{}
	for _, b := range p.backends {
		if n, ok := b.(Notifier); ok && !seen[n] {
			seen[n] = true
			n.OnChange(f)
		}
	}
}

func notSupported(state *issuers.State) *Waiting {
	return &Waiting{For: WaitIssuerNotSupported, Reason: wire.ReasonIssuerNotSupported,
		Message: fmt.Sprintf("signet does not sign with %s issuers (%s)", state.Issuer.Type, state.Issuer.Ref)}
}

// referenceName is how cert-manager names the issuer in DeniedReference.
func referenceName(ref issuers.Ref) string {
	if ref.External != "" {
		return ref.String()
	}
	if ref.Kind == issuers.KindClusterIssuer {
		return "ClusterIssuer " + ref.Name
	}
	return "Namespaced Issuer " + ref.Namespace + "/" + ref.Name
}

// IssuedFrom is what a backend returns for a certificate the PKI layer signed.
func IssuedFrom(r *signers.Result) *Issued {
	return &Issued{CertificatePEM: r.CertificatePEM, CAPEM: r.CAPEM, NotBefore: r.NotBefore, NotAfter: r.NotAfter, OutlivesCA: r.OutlivesCA}
}
