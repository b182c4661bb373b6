// Package wire is cert-manager's wire contract as signet speaks it: the API
// group, the CSR signer-name format, the experimental.cert-manager.io
// annotations, the duration rules, the condition and event reasons and the
// event source. It imports nothing but the standard library, so the server,
// the controller and kubectl-signet share one copy; a name here is what a
// user moving from cert-manager sees.
package wire

import "time"

// Group is the API group of cert-manager's issuers, and of signet's signers.
const Group = "cert-manager.io"

// Category is the discovery category of cert-manager's CRDs: `kubectl get
// cert-manager` lists every resource in it, signers and clustersigners too.
const Category = "cert-manager"

// ReferenceVerb is the RBAC verb a CSR requester needs on a signer to use it
// (cert-manager's CSR controllers check the same verb). No request serves
// it: it exists so that RBAC rules and `kubectl auth can-i` name a resource
// that discovery lists with that verb.
const ReferenceVerb = "reference"

// EventSource is the component signet's events name as their source.
const EventSource = "signet"

// Annotations on a CertificateSigningRequest, as cert-manager defines them.
const (
	// AnnotationRequestDuration asks for a certificate lifetime, as a Go duration ("2160h").
	AnnotationRequestDuration = "experimental.cert-manager.io/request-duration"
	// AnnotationRequestIsCA asks for a CA certificate when it is exactly "true".
	AnnotationRequestIsCA = "experimental.cert-manager.io/request-is-ca"
	// AnnotationPrivateKeySecretName names the Secret holding the private key
	// a SelfSigned issuer signs with: the requester's own.
	AnnotationPrivateKeySecretName = "experimental.cert-manager.io/private-key-secret-name"
	// AnnotationCA is where the issuing CA goes (base64 PEM) on an issued CSR.
	AnnotationCA = "experimental.cert-manager.io/ca"
)

// Durations of cert-manager's contract.
const (
	// DefaultDuration is the lifetime when a request asks for none
	// (cert-manager's default certificate duration).
	DefaultDuration = 90 * 24 * time.Hour
	// MinDuration is the shortest lifetime a request may ask for; it is also
	// the minimum of the CSR API's spec.expirationSeconds.
	MinDuration = 10 * time.Minute
)

// Reasons of CSR conditions and events. Where cert-manager's CSR controllers
// have a reason for the same thing the name is theirs (their
// certificatesigningrequests package), so a user moving from cert-manager
// sees the same conditions. The reasons for faults in the request itself
// (ErrorParseCSR, KeyUsageMismatch, ...) are signet's own and come from the
// PKI layer, which finds them.
const (
	// Events while a request waits.
	ReasonWaitingApproval    = "WaitingApproval"
	ReasonIssuerNotFound     = "IssuerNotFound"
	ReasonIssuerNotReady     = "IssuerNotReady"
	ReasonIssuerNotSupported = "IssuerTypeNotSupported"
	// ReasonSecretMissing: the issuer's CA Secret, or a SelfSigned request's
	// private key Secret, does not exist.
	ReasonSecretMissing = "SecretMissing"
	// ReasonErrorParsePrivateKey: a SelfSigned request's private key Secret
	// holds no key signet can read. A wait: the Secret may be fixed.
	ReasonErrorParsePrivateKey = "ErrorParsePrivateKey"

	// Failed reasons: terminal.
	ReasonDeniedReference = "DeniedReference"
	// ReasonErrorParseDuration: the request-duration annotation is not a Go duration.
	ReasonErrorParseDuration = "ErrorParseDuration"
	// ReasonInvalidDuration: the requested duration is under MinDuration.
	ReasonInvalidDuration = "InvalidDuration"
	// ReasonMissingAnnotation: a SelfSigned request names no private key Secret.
	ReasonMissingAnnotation = "MissingAnnotation"
	// ReasonSigningError: a CA issuer could not sign (cert-manager's ca).
	ReasonSigningError = "SigningError"
	// ReasonErrorSigning: a SelfSigned issuer could not sign (cert-manager's selfsigned).
	ReasonErrorSigning = "ErrorSigning"
	// ReasonErrorKeyMatch: a SelfSigned issuer's private key is not the key of the request.
	ReasonErrorKeyMatch = "ErrorKeyMatch"

	// ReasonIssued is the (opt-in) event on an issued CSR.
	ReasonIssued = "CertificateIssued"
)
