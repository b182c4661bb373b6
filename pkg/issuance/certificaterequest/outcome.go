package certificaterequest

import (
	"crypto"
	"encoding/base64"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// cert-manager's CertificateRequest condition types and Ready reasons.
const (
	conditionReady          = "Ready"
	conditionApproved       = "Approved"
	conditionDenied         = "Denied"
	conditionInvalidRequest = "InvalidRequest"

	readyReasonFailed = "Failed"
	readyReasonDenied = "Denied"
)

// condition is one of a CertificateRequest's status conditions.
type condition struct {
	Status, Reason, Message string
}

func conditionOf(cr *unstructured.Unstructured, typ string) (condition, bool) {
	conds, _, _ := unstructured.NestedSlice(cr.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]interface{})
		if !ok || m["type"] != typ {
			continue
		}
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		return condition{Status: s, Reason: r, Message: msg}, true
	}
	return condition{}, false
}

func isTrue(cr *unstructured.Unstructured, typ string) bool {
	c, ok := conditionOf(cr, typ)
	return ok && c.Status == "True"
}

// outcomeOf is what a request's CertificateRequest says now: Issued once
// cert-manager wrote a certificate for the request's key; Failed once it
// denied, failed or found the request invalid (cert-manager's reason and
// message); else Waiting, for approval or for the issuer. approved says
// signet approved it already (the object may not show it yet); signer names
// the issuer in the waiting message.
func outcomeOf(cr *unstructured.Unstructured, approved bool, publicKey crypto.PublicKey, signer string) issuance.Outcome {
	name := cr.GetNamespace() + "/" + cr.GetName()
	failed := func(reason, message string) *issuance.Failed {
		return &issuance.Failed{Reason: reason, Message: fmt.Sprintf("CertificateRequest %s: %s", name, message)}
	}
	ready, _ := conditionOf(cr, conditionReady)
	switch {
	case isTrue(cr, conditionInvalidRequest):
		c, _ := conditionOf(cr, conditionInvalidRequest)
		return failed(wire.ReasonInvalidRequest, c.Message)
	case isTrue(cr, conditionDenied):
		c, _ := conditionOf(cr, conditionDenied)
		return failed(wire.ReasonDenied, c.Message)
	case ready.Status == "False" && ready.Reason == readyReasonDenied:
		return failed(wire.ReasonDenied, ready.Message)
	case ready.Status == "False" && ready.Reason == readyReasonFailed:
		return failed(wire.ReasonFailed, ready.Message)
	case ready.Status == "True":
		return issuedFrom(cr, publicKey, failed)
	}
	if !approved && !isTrue(cr, conditionApproved) {
		return &issuance.Waiting{For: issuance.WaitCertificateRequest, Reason: wire.ReasonCertificateRequestPending,
			Message: fmt.Sprintf("Waiting for CertificateRequest %s to be approved", name)}
	}
	return &issuance.Waiting{For: issuance.WaitCertificateRequest, Reason: wire.ReasonCertificateRequestPending,
		Message: fmt.Sprintf("Waiting for %s to sign CertificateRequest %s", signer, name)}
}

// issuedFrom reads status.certificate (leaf, then chain) and status.ca. A
// certificate that does not parse, or is not for the request's key, fails
// the request: writing it would hand the requester a certificate it cannot use.
func issuedFrom(cr *unstructured.Unstructured, publicKey crypto.PublicKey, failed func(reason, message string) *issuance.Failed) issuance.Outcome {
	certB64, _, _ := unstructured.NestedString(cr.Object, "status", "certificate")
	caB64, _, _ := unstructured.NestedString(cr.Object, "status", "ca")
	certPEM, err := base64.StdEncoding.DecodeString(certB64)
	if err != nil || len(certPEM) == 0 {
		return failed(wire.ReasonDecodeError, "Ready, but status.certificate is empty or not base64")
	}
	caPEM, err := base64.StdEncoding.DecodeString(caB64)
	if err != nil {
		return failed(wire.ReasonDecodeError, "status.ca is not base64")
	}
	chain, err := signers.ParseCertificates(certPEM)
	if err != nil {
		return failed(wire.ReasonDecodeError, fmt.Sprintf("status.certificate: %v", err))
	}
	if !signers.PublicKeysEqual(chain[0].PublicKey, publicKey) {
		return failed(wire.ReasonCertificateKeyMismatch, "status.certificate is not a certificate for the requested key")
	}
	return &issuance.Issued{CertificatePEM: certPEM, CAPEM: caPEM, NotBefore: chain[0].NotBefore, NotAfter: chain[0].NotAfter}
}
