package signers

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Failure is a terminal outcome: signing this request can never succeed, so
// the CSR gets a Failed condition with this reason and message. Any other
// error from this package is worth retrying.
type Failure struct {
	Reason  string
	Message string
}

func (f *Failure) Error() string { return f.Reason + ": " + f.Message }

// Failed reasons. Where cert-manager's CSR controllers have a reason for the
// same condition the name is theirs, so that a user moving from cert-manager
// sees the same conditions.
const (
	// ReasonErrorParseDuration: the request-duration annotation is not a Go
	// duration. cert-manager: certificatesigningrequests/sync.go.
	ReasonErrorParseDuration = "ErrorParseDuration"
	// ReasonInvalidDuration: the requested duration is under 10 minutes.
	// cert-manager: certificatesigningrequests/sync.go.
	ReasonInvalidDuration = "InvalidDuration"
	// ReasonSigningError: a CA issuer could not sign. cert-manager:
	// certificatesigningrequests/ca/ca.go (which also uses it for every
	// problem with the request itself; signet names those below).
	ReasonSigningError = "SigningError"
	// ReasonErrorSigning: a SelfSigned issuer could not sign. cert-manager:
	// certificatesigningrequests/selfsigned/selfsigned.go.
	ReasonErrorSigning = "ErrorSigning"
	// ReasonErrorGenerating: the certificate template could not be built for
	// a reason that is not the request's fault. cert-manager:
	// certificatesigningrequests/selfsigned/selfsigned.go (which uses it for
	// every template problem).
	ReasonErrorGenerating = "ErrorGenerating"
	// ReasonErrorKeyMatch: a SelfSigned issuer's private key is not the key of
	// the request. cert-manager: certificatesigningrequests/selfsigned/selfsigned.go.
	ReasonErrorKeyMatch = "ErrorKeyMatch"
	// ReasonMissingAnnotation: a SelfSigned request names no private key
	// Secret. The controller sets it; it lives here with the other reasons.
	// cert-manager: certificatesigningrequests/selfsigned/selfsigned.go.
	ReasonMissingAnnotation = "MissingAnnotation"

	// The reasons below are signet's own. cert-manager reports all of these
	// as SigningError (CA) or ErrorGenerating (SelfSigned); signet says which
	// rule the request broke.

	// ReasonErrorParseCSR: spec.request is not one PEM "CERTIFICATE REQUEST"
	// block holding a PKCS#10 request.
	ReasonErrorParseCSR = "ErrorParseCSR"
	// ReasonInvalidCSRSignature: the request's self-signature does not verify.
	ReasonInvalidCSRSignature = "InvalidCSRSignature"
	// ReasonUnknownKeyUsage: spec.usages names a usage that certificates.k8s.io does not define.
	ReasonUnknownKeyUsage = "UnknownKeyUsage"
	// ReasonKeyUsageMismatch: the request encodes KeyUsage or ExtKeyUsage that
	// differ from spec.usages.
	ReasonKeyUsageMismatch = "KeyUsageMismatch"
	// ReasonIsCAMismatch: the request encodes BasicConstraints that differ from
	// the request-is-ca annotation.
	ReasonIsCAMismatch = "IsCAMismatch"
	// ReasonRequestTooLarge: the request exceeds one of signet's size limits
	// (bytes, subject, number of SANs, RSA key size); the message names it.
	ReasonRequestTooLarge = "RequestTooLarge"
)

// ErrCANotValid is wrapped by the error a CA signer returns when its CA
// certificate is expired or not yet valid at signing time. It is not a
// Failure: the request is fine, and once the issuer's Secret holds a valid CA
// it can be signed, so the controller should retry (the issuer is also not
// Ready, which the controller checks first; this covers the race).
var ErrCANotValid = errors.New("CA certificate is not valid at this time")

func failf(reason, message string) *Failure {
	return &Failure{Reason: reason, Message: message}
}

// maxEcho bounds how much of a user-supplied string goes into a message.
const maxEcho = 64

// echo quotes s for a message, at most maxEcho bytes of quoted text (an
// invalid byte quotes to four), cut on a rune boundary.
func echo(s string) string {
	if q := strconv.Quote(s); len(q) <= maxEcho+2 {
		return q
	}
	end := 0
	for end < len(s) {
		_, size := utf8.DecodeRuneInString(s[end:])
		if len(strconv.Quote(s[:end+size])) > maxEcho+2 {
			break
		}
		end += size
	}
	return strconv.Quote(s[:end]) + "..."
}
