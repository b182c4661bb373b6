package signers

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Failure is a fault of the request itself: it can never be signed as it
// is, so the request fails with this reason and message. Any other error
// from this package is not the request's fault.
type Failure struct {
	Reason  string
	Message string
}

func (f *Failure) Error() string { return f.Reason + ": " + f.Message }

// Failure reasons: which rule the request broke. They are signet's own
// (cert-manager reports all of these as SigningError or ErrorGenerating);
// cert-manager's reasons are in pkg/wire.
const (
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
	// what it asks for (Input.IsCA).
	ReasonIsCAMismatch = "IsCAMismatch"
	// ReasonRequestTooLarge: the request exceeds one of signet's size limits
	// (bytes, subject, number of SANs, RSA key size); the message names it.
	ReasonRequestTooLarge = "RequestTooLarge"
)

// ErrCANotValid is wrapped by the error a CA signer returns when its CA
// certificate is expired or not yet valid at signing time. The request is
// fine, and once the issuer's Secret holds a valid CA it can be signed, so
// it waits (the issuer is also not Ready, which the pipeline checks first;
// this covers the race).
var ErrCANotValid = errors.New("CA certificate is not valid at this time")

// ErrKeyMismatch is returned by a SelfSigned signer whose private key is not
// the key of the request.
var ErrKeyMismatch = errors.New("the private key is not the key of the certificate request")

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
