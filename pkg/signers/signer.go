// Package signers is signet's PKI layer, the ground floor: it parses CA
// Secrets, keys and certificates (ParseCA, ParsePrivateKey), turns a request
// to sign into a template under signet's policy (BuildTemplate), and a Signer
// (one subpackage per cert-manager issuer type: ca, selfsigned) signs the
// template. Pure functions: no Kubernetes types, nothing of signet's
// imported. The read model and the issuance pipeline call it.
package signers

import (
	"encoding/pem"
	"time"
)

// Signer signs templates with one issuer's key.
type Signer interface {
	// Sign signs t at time now. A *Failure means the request can never be
	// signed by this signer; any other error may pass (see ErrCANotValid).
	Sign(t *Template, now time.Time) (*Result, error)
}

// Result is a signed certificate.
type Result struct {
	// CertificatePEM is status.certificate: the leaf, then the intermediates
	// up to (not including) the root.
	CertificatePEM []byte
	// CAPEM is the trust anchor for the chain, for the ca annotation.
	CAPEM []byte
	// NotBefore and NotAfter are the leaf's validity.
	NotBefore, NotAfter time.Time
	// OutlivesCA: NotAfter is after the issuing CA certificate's NotAfter.
	// The certificate stops verifying when the CA expires unless the CA is
	// renewed with the same key.
	OutlivesCA bool
}

// EncodeCertificates encodes DER certificates as one PEM bundle.
func EncodeCertificates(ders ...[]byte) []byte {
	var n int
	for _, d := range ders {
		n += len(d)*4/3 + 128
	}
	out := make([]byte, 0, n)
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}
