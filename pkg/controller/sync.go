package controller

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"

	"github.com/signet-dev/signet/pkg/controller/workers"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/wire"
)

var schemeForEvents = scheme.Scheme

// sync takes one CSR as far as it can go now: it reads the CSR into a
// request, lets the issuance pipeline decide, and writes the outcome. An
// error requeues it with backoff; waiting states return nil and are requeued
// by the change they wait for (approval, the issuer, its Secret).
func (c *Controller) sync(ctx context.Context, key string) error {
	obj, exists, err := c.csrs.GetByKey(key)
	if err != nil {
		return err
	}
	var csr *certificatesv1.CertificateSigningRequest
	if exists {
		csr = obj.(*certificatesv1.CertificateSigningRequest)
	}
	if err := c.withdrawDeleted(ctx, key, csr); err != nil || !exists {
		return err
	}
	ref, ours := c.opts.SignerNames.Parse(csr.Spec.SignerName)
	if !ours {
		return nil
	}
	logger := klog.FromContext(ctx).WithValues("csr", csr.Name, "signer", csr.Spec.SignerName)

	switch {
	case csr.DeletionTimestamp != nil, hasCondition(csr, certificatesv1.CertificateDenied):
		// Nothing is left behind for a CSR denied or going away.
		c.waitingApproval.Delete(csr.UID)
		c.lastWait.Delete(csr.UID)
		if !c.leading() {
			return workers.ErrNotLeading
		}
		return c.pipeline.Withdraw(ctx, ref, objectOf(csr))
	case len(csr.Status.Certificate) > 0, hasCondition(csr, certificatesv1.CertificateFailed):
		c.waitingApproval.Delete(csr.UID)
		c.lastWait.Delete(csr.UID)
		return nil
	case !hasCondition(csr, certificatesv1.CertificateApproved):
		c.noteWaitingApproval(key, csr)
		observe(ref, c.issuerType(ref), resultWaiting)
		return nil
	}
	c.waitingApproval.Delete(csr.UID)

	typ := c.issuerType(ref)
	if !c.leading() {
		return workers.ErrNotLeading
	}
	outcome, err := c.pipeline.Issue(ctx, requestFor(csr, ref))
	if err != nil {
		return err
	}
	switch o := outcome.(type) {
	case *issuance.Waiting:
		// One event per wait: a re-drive that finds the same wait is silent.
		if prev, seen := c.lastWait.Swap(csr.UID, o.Reason+"\x00"+o.Message); !seen || prev != o.Reason+"\x00"+o.Message {
			c.recorder.Event(csr, corev1.EventTypeWarning, o.Reason, o.Message)
		}
		observe(ref, typ, resultWaiting)
		if o.Backoff {
			return fmt.Errorf("%s: %s", o.Reason, o.Message)
		}
		return nil
	case *issuance.Failed:
		return c.fail(ctx, csr, ref, typ, o.Reason, o.Message)
	case *issuance.Issued:
		if err := c.writeCertificate(ctx, csr, o); err != nil {
			return err
		}
		if c.opts.CertificateIssuedEvents {
			c.recorder.Eventf(csr, corev1.EventTypeNormal, wire.ReasonIssued, "Certificate issued by %s, valid until %s", ref, o.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
		}
		observeIssued(ref, typ, csr, c.opts.Clock.Now())
		issuance.CountIssued(ref.Kind, o)
		logger.V(2).Info("Issued certificate", "notAfter", o.NotAfter)
		return nil
	}
	return fmt.Errorf("unexpected issuance outcome %T", outcome)
}

// withdrawDeleted withdraws what backends left for a CSR of this name that
// was deleted (csr, if not nil, is the one there now, perhaps a new one).
func (c *Controller) withdrawDeleted(ctx context.Context, name string, csr *certificatesv1.CertificateSigningRequest) error {
	v, found := c.deleted.Load(name)
	if !found {
		return nil
	}
	gone := v.(deletedCSR)
	if csr != nil && csr.UID == gone.obj.UID {
		return nil // the delete was for this one and is not through yet
	}
	if !c.leading() {
		return workers.ErrNotLeading
	}
	if err := c.pipeline.Withdraw(ctx, gone.ref, gone.obj); err != nil {
		return err
	}
	c.deleted.CompareAndDelete(name, v)
	return nil
}

func objectOf(csr *certificatesv1.CertificateSigningRequest) issuance.Object {
	return issuance.Object{Kind: issuance.KindCertificateSigningRequest, Name: csr.Name, UID: csr.UID}
}

// maxApprovalText bounds the approval reason and message passed on to backends.
const maxApprovalText = 512

// approvalOf says how a CSR was approved: its Approved condition's reason
// and message, for the records of the backends that pass approval on.
func approvalOf(csr *certificatesv1.CertificateSigningRequest) string {
	for _, cond := range csr.Status.Conditions {
		if cond.Type != certificatesv1.CertificateApproved {
			continue
		}
		s := strings.TrimSpace(cond.Reason + ": " + cond.Message)
		if len(s) > maxApprovalText {
			s = s[:maxApprovalText] + "..."
		}
		return strings.ToValidUTF8(s, "?")
	}
	return ""
}

// requestFor reads a CSR, annotations included, into a request to sign.
func requestFor(csr *certificatesv1.CertificateSigningRequest, ref issuers.Ref) *issuance.Request {
	asked, err := wire.ParseRequestAnnotations(csr.Annotations, csr.Spec.ExpirationSeconds)
	req := &issuance.Request{
		Object:               objectOf(csr),
		Approval:             approvalOf(csr),
		Signer:               ref,
		PKCS10:               csr.Spec.Request,
		Usages:               usageStrings(csr.Spec.Usages),
		IsCA:                 asked.IsCA,
		Duration:             asked.Duration,
		PrivateKeySecretName: asked.PrivateKeySecretName,
		Requester:            requesterOf(csr),
	}
	if err != nil {
		req.Malformed = &issuance.Failed{Reason: wire.ReasonErrorParseDuration, Message: err.Error()}
	}
	return req
}

func requesterOf(csr *certificatesv1.CertificateSigningRequest) *issuance.Requester {
	r := &issuance.Requester{Username: csr.Spec.Username, UID: csr.Spec.UID, Groups: csr.Spec.Groups}
	if len(csr.Spec.Extra) > 0 {
		r.Extra = make(map[string][]string, len(csr.Spec.Extra))
		for k, v := range csr.Spec.Extra {
			r.Extra[k] = v
		}
	}
	return r
}

// writeCertificate writes the certificate (and, if asked, the CA annotation).
func (c *Controller) writeCertificate(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, issued *issuance.Issued) error {
	out := csr.DeepCopy()
	var err error
	if c.opts.WriteCAAnnotation {
		if !c.leading() {
			return workers.ErrNotLeading
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[wire.AnnotationCA] = base64.StdEncoding.EncodeToString(issued.CAPEM)
		if out, err = c.kube.CertificatesV1().CertificateSigningRequests().Update(ctx, out, metav1.UpdateOptions{}); err != nil {
			countConflict(err, writeCAAnnotation)
			return fmt.Errorf("writing the %s annotation: %w", wire.AnnotationCA, err)
		}
		c.remember(out.DeepCopy())
	}
	out.Status.Certificate = issued.CertificatePEM
	if !c.leading() {
		return workers.ErrNotLeading
	}
	// UpdateStatus carries the resourceVersion read: if anything changed the
	// CSR since — another signet, a denial — this conflicts and the next sync
	// decides again. A CSR is therefore issued at most once.
	written, err := c.kube.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		countConflict(err, writeCertificate)
		return fmt.Errorf("writing the certificate: %w", err)
	}
	c.remember(written)
	return nil
}

// issuerType labels metrics: the type of the issuer ref names, if known.
func (c *Controller) issuerType(ref issuers.Ref) string {
	if state, ok := c.issuers.Get(ref); ok {
		return string(state.Issuer.Type)
	}
	return ""
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
		c.recorder.Event(csr, corev1.EventTypeNormal, wire.ReasonWaitingApproval, "Waiting for the CertificateSigningRequest to be approved")
	}
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
	if !c.leading() {
		return workers.ErrNotLeading
	}
	written, err := c.kube.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, failed, metav1.UpdateOptions{})
	if err != nil {
		countConflict(err, writeFailed)
		return fmt.Errorf("marking failed (%s): %w", reason, err)
	}
	c.remember(written)
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
