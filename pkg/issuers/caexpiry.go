package issuers

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/signet-dev/signet/pkg/signers"
)

// Reasons of a CA signer's ShortLivedCA condition.
const (
	// ReasonCAExpiresWithinDefaultDuration: a certificate of the default
	// duration signed now would end after the CA certificate.
	ReasonCAExpiresWithinDefaultDuration = "CAExpiresWithinDefaultDuration"
	// ReasonCAOutlivesDefaultDuration: it would not.
	ReasonCAOutlivesDefaultDuration = "CAOutlivesDefaultDuration"
)

// CAExpiry says whether a CA issuer's CA certificate outlives the
// certificates it signs at the default duration. cert-manager does not
// shorten certificates to their CA's expiry, so a short-lived CA signs
// certificates that stop verifying before they end (unless the CA is renewed
// with the same key); this is how a signer says so up front.
type CAExpiry struct {
	// ShortLived: the CA certificate ends before a certificate of the
	// policy's default grant signed now would.
	ShortLived bool
	Reason     string
	Message    string
	// LastTransitionTime is when ShortLived last changed.
	LastTransitionTime time.Time
}

// caExpiry applies the short-lived CA rule to ca at now under policy.
// LastTransitionTime is left to the caller, which knows the previous state.
func caExpiry(ca *x509.Certificate, policy signers.Policy, now time.Time) *CAExpiry {
	grant := policy.DefaultGrant()
	ends := ca.NotAfter.UTC().Format(time.RFC3339)
	if !ca.NotAfter.Before(now.Add(grant)) {
		return &CAExpiry{Reason: ReasonCAOutlivesDefaultDuration,
			Message: fmt.Sprintf("CA certificate %s ends at %s, after a certificate of the default duration %s signed now would", ca.Subject, ends, grant)}
	}
	consequence := "certificates get their full duration and those ending after the CA stop verifying when it expires, " +
		"unless it is renewed with the same key (cert-manager's rule; --cap-to-ca-expiry shortens them instead)"
	if policy.CapToCAExpiry {
		consequence = "certificates are shortened to end with the CA (--cap-to-ca-expiry)"
	}
	return &CAExpiry{ShortLived: true, Reason: ReasonCAExpiresWithinDefaultDuration,
		Message: fmt.Sprintf("CA certificate %s ends at %s, before a certificate of the default duration %s signed now would: %s", ca.Subject, ends, grant, consequence)}
}
