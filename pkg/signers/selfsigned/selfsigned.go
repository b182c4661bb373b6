// Package selfsigned signs with a cert-manager SelfSigned issuer: each
// certificate is signed by its own private key, which the requester keeps
// in a Secret named by an annotation on the request.
package selfsigned

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/signet-dev/signet/pkg/signers"
)

// Config is what a SelfSigned issuer's spec.selfSigned puts into each certificate.
type Config struct {
	CRLDistributionPoints []string
}

type signer struct {
	key crypto.Signer
	cfg Config
}

// New returns a Signer that signs with key, the private key of the request
// (from the request's private-key Secret), and the issuer's spec.selfSigned.
// cfg may be nil.
func New(key crypto.Signer, cfg *Config) signers.Signer {
	s := &signer{key: key}
	if cfg != nil {
		s.cfg = *cfg
	}
	return s
}

// Sign makes t a self-signed certificate: issuer = subject, signed by the
// key. The key must be the one whose public key the request carries, else
// the Failure ErrorKeyMatch. The certificate is its own CA (CAPEM).
func (s *signer) Sign(t *signers.Template, now time.Time) (*signers.Result, error) {
	if s.key == nil || !signers.PublicKeysEqual(s.key.Public(), t.PublicKey) {
		return nil, &signers.Failure{Reason: signers.ReasonErrorKeyMatch,
			Message: "the private key in the referenced Secret is not the key of the certificate request"}
	}
	tmpl := *t.Cert
	tmpl.AuthorityKeyId = nil
	tmpl.CRLDistributionPoints = s.cfg.CRLDistributionPoints
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, t.PublicKey, s.key)
	if err != nil {
		return nil, &signers.Failure{Reason: signers.ReasonErrorSigning, Message: fmt.Sprintf("self-signing the certificate: %v", err)}
	}
	pem := signers.EncodeCertificates(der)
	return &signers.Result{
		CertificatePEM: pem,
		CAPEM:          pem,
		NotBefore:      tmpl.NotBefore.UTC().Truncate(time.Second),
		NotAfter:       tmpl.NotAfter.UTC().Truncate(time.Second),
	}, nil
}
