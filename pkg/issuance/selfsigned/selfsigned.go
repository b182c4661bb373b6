// Package selfsigned is the issuance backend for cert-manager SelfSigned
// issuers: each certificate is signed by its own private key, which the
// requester keeps in a Secret the request names.
package selfsigned

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	signersselfsigned "github.com/signet-dev/signet/pkg/signers/selfsigned"
	"github.com/signet-dev/signet/pkg/wire"
)

// New returns the SelfSigned backend, which reads the requesters' key
// Secrets through deps.Secrets.
func New(deps issuance.Deps) issuance.Backend {
	return &backend{secrets: deps.Secrets, clusterResourceNamespace: deps.ClusterResourceNamespace}
}

type backend struct {
	secrets                  issuance.SecretReader
	clusterResourceNamespace string
}

func (b *backend) Issue(ctx context.Context, req *issuance.Request, tmpl *signers.Template, issuer *issuers.State, now time.Time) (issuance.Outcome, error) {
	name := req.PrivateKeySecretName
	if name == "" {
		// cert-manager's reason; the message also serves the sign
		// subresource, whose SigningRequest cannot name a Secret at all.
		return &issuance.Failed{Reason: wire.ReasonMissingAnnotation, Message: fmt.Sprintf(
			"%s is SelfSigned: it signs with the requester's own private key, from the Secret a CertificateSigningRequest names in its %s annotation; this request names none",
			issuer.Issuer.Ref, wire.AnnotationPrivateKeySecretName)}, nil
	}
	ns := issuer.Issuer.Namespace
	if issuer.Issuer.Kind == issuers.KindClusterIssuer {
		ns = b.clusterResourceNamespace
	}
	data, found, err := b.secrets.SecretData(ctx, ns, name)
	if err != nil {
		return nil, fmt.Errorf("reading private key Secret %s/%s: %w", ns, name, err)
	}
	if !found {
		return &issuance.Waiting{For: issuance.WaitRequestSecret, Reason: wire.ReasonSecretMissing,
			Message: fmt.Sprintf("Referenced private key Secret %s/%s not found", ns, name), Backoff: true}, nil
	}
	key, err := signers.ParsePrivateKey(data[signers.TLSKeyKey])
	if err != nil {
		return &issuance.Waiting{For: issuance.WaitRequestSecret, Reason: wire.ReasonErrorParsePrivateKey,
			Message: fmt.Sprintf("Secret %s/%s: %s: %v", ns, name, signers.TLSKeyKey, err), Backoff: true}, nil
	}
	var cfg signersselfsigned.Config
	if c := issuer.Issuer.SelfSigned; c != nil {
		cfg.CRLDistributionPoints = c.CRLDistributionPoints
	}
	res, err := signersselfsigned.New(key, &cfg).Sign(tmpl, now)
	if errors.Is(err, signers.ErrKeyMismatch) {
		return &issuance.Failed{Reason: wire.ReasonErrorKeyMatch,
			Message: fmt.Sprintf("the private key in Secret %s/%s is not the key of the certificate request", ns, name)}, nil
	}
	if err != nil {
		return &issuance.Failed{Reason: wire.ReasonErrorSigning, Message: fmt.Sprintf("Error signing certificate: %v", err)}, nil
	}
	return issuance.IssuedFrom(res), nil
}
