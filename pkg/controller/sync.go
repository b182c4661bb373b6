package controller

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/ca"
	"github.com/signet-dev/signet/pkg/signers/selfsigned"
)

var schemeForEvents = scheme.Scheme

// Annotations requesters and signet use, as cert-manager defines them.
const (
	AnnotationPrivateKeySecretName = "experimental.cert-manager.io/private-key-secret-name"
	AnnotationCA                   = "experimental.cert-manager.io/ca"
)

// Event and Failed-condition reasons the controller itself decides; the
// policy's own (ErrorParseDuration, InvalidDuration, ...) come from pkg/signers.
const (
	ReasonWaitingApproval    = "WaitingApproval"
	ReasonIssuerNotFound     = "IssuerNotFound"
	ReasonIssuerNotReady     = "IssuerNotReady"
	ReasonIssuerNotSupported = "IssuerTypeNotSupported"
	ReasonSecretMissing      = "SecretMissing"
	ReasonSecretInvalid      = "ErrorParsePrivateKey"
	ReasonDeniedReference    = "DeniedReference"
	ReasonMissingAnnotation  = "MissingAnnotation"
	ReasonIssued             = "CertificateIssued"
)

// sync takes one CSR as far as it can go now. An error requeues it with
// backoff; waiting states return nil and are requeued by the change they
// wait for (approval, the issuer, its Secret).
func (c *Controller) sync(ctx context.Context, key string) error {
	obj, exists, err := c.csrs.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	csr := obj.(*certificatesv1.CertificateSigningRequest)
	ref, ours := issuers.ParseSignerName(csr.Spec.SignerName)
	if !ours {
		return nil
	}
	logger := klog.FromContext(ctx).WithValues("csr", csr.Name, "signer", csr.Spec.SignerName)

	switch {
	case csr.DeletionTimestamp != nil, len(csr.Status.Certificate) > 0,
		hasCondition(csr, certificatesv1.CertificateFailed), hasCondition(csr, certificatesv1.CertificateDenied):
		c.waitingApproval.Delete(csr.UID)
		return nil
	case !hasCondition(csr, certificatesv1.CertificateApproved):
		c.noteWaitingApproval(key, csr)
		typ := ""
		if state, ok := c.issuers.Get(ref); ok {
			typ = string(state.Issuer.Type)
		}
		observe(ref, typ, resultWaiting)
		return nil
	}
	c.waitingApproval.Delete(csr.UID)

	state, found := c.issuers.Get(ref)
	if !found {
		c.recorder.Eventf(csr, corev1.EventTypeWarning, ReasonIssuerNotFound, "Referenced %s not found", ref)
		observe(ref, "", resultWaiting)
		return nil
	}
	typ := string(state.Issuer.Type)
	switch state.Issuer.Type {
	case issuers.TypeVault, issuers.TypeACME, issuers.TypeVenafi:
		c.recorder.Eventf(csr, corev1.EventTypeWarning, ReasonIssuerNotSupported, "signet does not sign with %s issuers (%s)", state.Issuer.Type, ref)
		observe(ref, typ, resultWaiting)
		return nil
	}

	if ref.Kind == issuers.KindIssuer || c.opts.ClusterSignerReferenceCheck {
		allowed, err := c.mayReference(ctx, csr, ref)
		if err != nil {
			return fmt.Errorf("reference check for %s: %w", ref, err)
		}
		if !allowed {
			what := "Namespaced Issuer " + ref.Namespace + "/" + ref.Name
			if ref.Kind == issuers.KindClusterIssuer {
				what = "ClusterIssuer " + ref.Name
			}
			return c.fail(ctx, csr, ref, typ, ReasonDeniedReference, "Requester may not reference "+what)
		}
	}

	if !state.Ready {
		reason := ReasonIssuerNotReady
		if state.Reason == issuers.ReasonSecretNotFound {
			reason = ReasonSecretMissing
		}
		c.recorder.Eventf(csr, corev1.EventTypeWarning, reason, "%s is not ready: %s", ref, state.Message)
		observe(ref, typ, resultWaiting)
		return nil
	}

	tmpl, err := signers.BuildTemplate(signers.Input{
		Request:           csr.Spec.Request,
		Usages:            usageStrings(csr.Spec.Usages),
		ExpirationSeconds: csr.Spec.ExpirationSeconds,
		Annotations:       csr.Annotations,
	}, c.opts.Policy, c.opts.Clock.Now())
	if failure := asFailure(err); failure != nil {
		return c.fail(ctx, csr, ref, typ, failure.Reason, failure.Message)
	} else if err != nil {
		return err
	}

	signer, wait, err := c.signerFor(ctx, csr, state)
	if failure := asFailure(err); failure != nil {
		return c.fail(ctx, csr, ref, typ, failure.Reason, failure.Message)
	} else if err != nil {
		return err
	}
	if wait != nil {
		c.recorder.Event(csr, corev1.EventTypeWarning, wait.Reason, wait.Message)
		observe(ref, typ, resultWaiting)
		return errors.New(wait.Message) // a Secret we do not watch: retry with backoff
	}

	result, err := signer.Sign(tmpl, c.opts.Clock.Now())
	if errors.Is(err, signers.ErrCANotValid) {
		// The CA expired (or is not valid yet) since the issuer was last
		// judged ready: wait for a rotated CA rather than fail the request.
		c.recorder.Eventf(csr, corev1.EventTypeWarning, ReasonIssuerNotReady, "%s: %v", ref, err)
		observe(ref, typ, resultWaiting)
		return err
	}
	if failure := asFailure(err); failure != nil {
		return c.fail(ctx, csr, ref, typ, failure.Reason, failure.Message)
	} else if err != nil {
		return c.fail(ctx, csr, ref, typ, signers.ReasonSigningError, fmt.Sprintf("Error signing certificate: %v", err))
	}

	issued := csr.DeepCopy()
	if c.opts.WriteCAAnnotation {
		if issued.Annotations == nil {
			issued.Annotations = map[string]string{}
		}
		issued.Annotations[AnnotationCA] = base64.StdEncoding.EncodeToString(result.CAPEM)
		if issued, err = c.kube.CertificatesV1().CertificateSigningRequests().Update(ctx, issued, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("writing the %s annotation: %w", AnnotationCA, err)
		}
	}
	issued.Status.Certificate = result.CertificatePEM
	// UpdateStatus carries the resourceVersion read: if anything changed the
	// CSR since — another signet, a denial — this conflicts and the next sync
	// decides again. A CSR is therefore issued at most once.
	if _, err := c.kube.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, issued, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing the certificate: %w", err)
	}
	if c.opts.CertificateIssuedEvents {
		c.recorder.Eventf(csr, corev1.EventTypeNormal, ReasonIssued, "Certificate issued by %s, valid until %s", ref, result.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	observeIssued(ref, typ, csr, c.opts.Clock.Now())
	signers.CountIssued(string(ref.Kind), result)
	logger.V(2).Info("Issued certificate", "notAfter", result.NotAfter)
	return nil
}

// noteWaitingApproval gives an unapproved CSR its one WaitingApproval event
// once it is WaitingApprovalEventDelay old (creationTimestamp has whole
// seconds, so up to a second early), and until then comes back to it.
func (c *Controller) noteWaitingApproval(key string, csr *certificatesv1.CertificateSigningRequest) {
	if _, seen := c.waitingApproval.Load(csr.UID); seen {
		return
	}
	if wait := c.opts.WaitingApprovalEventDelay - c.opts.Clock.Since(csr.CreationTimestamp.Time); wait > 0 {
		c.queue.AddAfter(key, wait)
		return
	}
	if _, seen := c.waitingApproval.LoadOrStore(csr.UID, struct{}{}); !seen {
		c.recorder.Event(csr, corev1.EventTypeNormal, ReasonWaitingApproval, "Waiting for the CertificateSigningRequest to be approved")
	}
}

// signerFor returns the signer for a ready issuer, or what it waits for.
func (c *Controller) signerFor(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, state *issuers.State) (signers.Signer, *signers.Failure, error) {
	switch state.Issuer.Type {
	case issuers.TypeCA:
		return ca.New(state.CA, caConfig(state.Issuer.CA)), nil, nil
	case issuers.TypeSelfSigned:
		name := csr.Annotations[AnnotationPrivateKeySecretName]
		if name == "" {
			return nil, nil, &signers.Failure{Reason: ReasonMissingAnnotation,
				Message: fmt.Sprintf("Missing private key reference annotation: %q", AnnotationPrivateKeySecretName)}
		}
		ns := state.Issuer.Namespace
		if state.Issuer.Kind == issuers.KindClusterIssuer {
			ns = c.opts.ClusterResourceNamespace
		}
		secret, err := c.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, &signers.Failure{Reason: ReasonSecretMissing, Message: fmt.Sprintf("Referenced private key Secret %s/%s not found", ns, name)}, nil
		}
		if err != nil {
			return nil, nil, err
		}
		key, err := signers.ParsePrivateKey(secret.Data[corev1.TLSPrivateKeyKey])
		if err != nil {
			return nil, &signers.Failure{Reason: ReasonSecretInvalid, Message: fmt.Sprintf("Secret %s/%s: %s: %v", ns, name, corev1.TLSPrivateKeyKey, err)}, nil
		}
		return selfsigned.New(key, selfSignedConfig(state.Issuer.SelfSigned)), nil, nil
	}
	return nil, nil, fmt.Errorf("no signer for %s issuers", state.Issuer.Type)
}

func caConfig(c *issuers.CAConfig) *ca.Config {
	if c == nil {
		return nil
	}
	return &ca.Config{CRLDistributionPoints: c.CRLDistributionPoints, OCSPServers: c.OCSPServers, IssuingCertificateURLs: c.IssuingCertificateURLs}
}

func selfSignedConfig(c *issuers.SelfSignedConfig) *selfsigned.Config {
	if c == nil {
		return nil
	}
	return &selfsigned.Config{CRLDistributionPoints: c.CRLDistributionPoints}
}

// fail ends a CSR with a Failed condition and a Warning event.
func (c *Controller) fail(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, ref issuers.Ref, typ, reason, message string) error {
	failed := csr.DeepCopy()
	now := metav1.NewTime(c.opts.Clock.Now())
	failed.Status.Conditions = append(failed.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type:               certificatesv1.CertificateFailed,
		Status:             corev1.ConditionTrue,
		Reason:             reason,
		Message:            message,
		LastUpdateTime:     now,
		LastTransitionTime: now,
	})
	if _, err := c.kube.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, failed, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("marking failed (%s): %w", reason, err)
	}
	c.recorder.Event(csr, corev1.EventTypeWarning, reason, message)
	observe(ref, typ, resultFailed)
	return nil
}

func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status != corev1.ConditionFalse {
			return true
		}
	}
	return false
}

func usageStrings(in []certificatesv1.KeyUsage) []string {
	out := make([]string, len(in))
	for i, u := range in {
		out[i] = strings.TrimSpace(string(u))
	}
	return out
}

func asFailure(err error) *signers.Failure {
	var f *signers.Failure
	if errors.As(err, &f) {
		return f
	}
	return nil
}
