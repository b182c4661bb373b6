package issuance

import (
	"fmt"
	"time"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// Policy is signet-wide configuration of what gets signed.
type Policy struct {
	// MaxDuration caps every certificate's lifetime: a longer request is
	// shortened to it, not refused. Zero or negative: no cap (--max-duration).
	MaxDuration time.Duration
	// ClusterSignerReferenceCheck requires requesters to have reference on
	// clustersigners too; on signers it is always required.
	ClusterSignerReferenceCheck bool
	// PKI is what the PKI layer applies to every certificate (backdating).
	PKI signers.Policy
}

// DefaultGrant is the lifetime a request that asks for none gets:
// wire.DefaultDuration, or MaxDuration if that is shorter. A CA that expires
// sooner cannot cover such a certificate.
func (p Policy) DefaultGrant() time.Duration {
	if p.MaxDuration > 0 && p.MaxDuration < wire.DefaultDuration {
		return p.MaxDuration
	}
	return wire.DefaultDuration
}

// CAExpiryPolicy is what the read model needs to tell whether a CA signer's
// CA outlives the certificates it signs.
func (p Policy) CAExpiryPolicy() issuers.CAExpiryPolicy {
	return issuers.CAExpiryPolicy{DefaultGrant: p.DefaultGrant(), CapToCAExpiry: p.PKI.CapToCAExpiry}
}

// Lifetime is the lifetime a request gets: what it asked for (nil: the
// default), at least wire.MinDuration (else InvalidDuration, as in
// cert-manager), then capped at MaxDuration.
func (p Policy) Lifetime(asked *time.Duration) (time.Duration, *Failed) {
	d := wire.DefaultDuration
	if asked != nil {
		d = *asked
	}
	if d < wire.MinDuration {
		return 0, &Failed{Reason: wire.ReasonInvalidDuration, Message: fmt.Sprintf("requested duration %s is shorter than the minimum %s", d, wire.MinDuration)}
	}
	if p.MaxDuration > 0 && d > p.MaxDuration {
		d = p.MaxDuration
	}
	return d, nil
}
