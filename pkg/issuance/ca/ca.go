// Package ca is the issuance backend for cert-manager CA issuers: it signs
// with the key and certificate chain of the issuer's Secret, which the read
// model has parsed.
package ca

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	signersca "github.com/signet-dev/signet/pkg/signers/ca"
	"github.com/signet-dev/signet/pkg/wire"
)

// New returns the CA backend. It needs nothing from deps: the CA comes with
// the issuer's state.
func New(issuance.Deps) issuance.Backend { return backend{} }

type backend struct{}

func (backend) Issue(_ context.Context, _ *issuance.Request, tmpl *signers.Template, issuer *issuers.State, now time.Time) (issuance.Outcome, error) {
	if issuer.CA == nil {
		return nil, fmt.Errorf("%s is ready but has no parsed CA", issuer.Issuer.Ref)
	}
	var cfg signersca.Config
	if c := issuer.Issuer.CA; c != nil {
		cfg = signersca.Config{CRLDistributionPoints: c.CRLDistributionPoints, OCSPServers: c.OCSPServers, IssuingCertificateURLs: c.IssuingCertificateURLs}
	}
	res, err := signersca.New(issuer.CA, &cfg).Sign(tmpl, now)
	if errors.Is(err, signers.ErrCANotValid) {
		// The CA expired (or is not valid yet) since the issuer was last
		// judged ready: wait for a rotated CA rather than fail the request.
		return &issuance.Waiting{For: issuance.WaitIssuerNotReady, Reason: wire.ReasonIssuerNotReady,
			Message: fmt.Sprintf("%s: %v", issuer.Issuer.Ref, err), Backoff: true}, nil
	}
	if err != nil {
		return &issuance.Failed{Reason: wire.ReasonSigningError, Message: fmt.Sprintf("Error signing certificate: %v", err)}, nil
	}
	return issuance.IssuedFrom(res), nil
}
