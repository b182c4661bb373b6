package issuers

import "github.com/signet-dev/signet/pkg/signers"

// Readiness reasons, shown in a signer's Ready condition. The CA reasons are
// the PKI layer's, which finds those problems when it parses a CA Secret.
const (
	ReasonReady             = "Ready"
	ReasonPending           = "Pending"
	ReasonInvalidConfig     = "InvalidIssuerSpec"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonSecretInvalid     = signers.CAReasonSecretInvalid
	ReasonKeyMismatch       = signers.CAReasonKeyMismatch
	ReasonNotCA             = signers.CAReasonNotCA
	ReasonCAExpired         = signers.CAReasonExpired
	ReasonCANotYetValid     = signers.CAReasonNotYetValid
	ReasonUnsupportedIssuer = "UnsupportedIssuerType"
)
