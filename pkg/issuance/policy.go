package issuance

import (
	"fmt"
	"time"

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
