// Package ca signs with a cert-manager CA issuer: the key and certificate
// chain of the issuer's Secret.
package ca

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/signet-dev/signet/pkg/signers"
)

// Config is what a CA issuer's spec.ca puts into each certificate.
type Config struct {
	CRLDistributionPoints  []string
	OCSPServers            []string
	IssuingCertificateURLs []string
}

type signer struct {
	ca  *signers.CA
	cfg Config
}

// New returns a Signer for a parsed CA Secret and the issuer's spec.ca. It
// keeps ca; cfg may be nil. It is cheap: one is made per request.
func New(ca *signers.CA, cfg *Config) signers.Signer {
	s := &signer{ca: ca}
	if cfg != nil {
		s.cfg = *cfg
	}
	return s
}

// Sign signs t with the CA key. The validity is t's: cert-manager does not
// shorten a certificate to its CA's, so a certificate may end after the CA
// (Result.OutlivesCA says so). With t.CapToCAExpiry, NotAfter is no later
// than the CA's NotAfter, kube-controller-manager's rule. A CA certificate
// that is not valid at now is an error wrapping signers.ErrCANotValid, not
// a Failure.
func (s *signer) Sign(t *signers.Template, now time.Time) (*signers.Result, error) {
	ca := s.ca.Certificate
	if now.Before(ca.NotBefore) {
		return nil, fmt.Errorf("%w: CA certificate %s is not valid before %s", signers.ErrCANotValid, ca.Subject, ca.NotBefore.UTC().Format(time.RFC3339))
	}
	if !now.Before(ca.NotAfter) {
		return nil, fmt.Errorf("%w: CA certificate %s expired at %s", signers.ErrCANotValid, ca.Subject, ca.NotAfter.UTC().Format(time.RFC3339))
	}

	tmpl := *t.Cert
	if t.CapToCAExpiry && tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	// crypto/x509 takes the AuthorityKeyId from the parent only when the
	// subjects differ; set it so that a leaf named like its CA gets one too.
	tmpl.AuthorityKeyId = ca.SubjectKeyId
	tmpl.CRLDistributionPoints = s.cfg.CRLDistributionPoints
	tmpl.OCSPServer = s.cfg.OCSPServers
	tmpl.IssuingCertificateURL = s.cfg.IssuingCertificateURLs

	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, t.PublicKey, s.ca.Key)
	if err != nil {
		return nil, &signers.Failure{Reason: signers.ReasonSigningError, Message: fmt.Sprintf("signing the certificate with CA %s: %v", ca.Subject, err)}
	}
	leaf := signers.EncodeCertificates(der)
	intermediates := s.ca.IntermediatesPEM()
	out := make([]byte, 0, len(leaf)+len(intermediates))
	out = append(append(out, leaf...), intermediates...)
	return &signers.Result{
		CertificatePEM: out,
		CAPEM:          s.ca.CAPEM,
		// As encoded: whole seconds.
		NotBefore:  tmpl.NotBefore.UTC().Truncate(time.Second),
		NotAfter:   tmpl.NotAfter.UTC().Truncate(time.Second),
		OutlivesCA: tmpl.NotAfter.After(ca.NotAfter),
	}, nil
}
