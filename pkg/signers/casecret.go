package signers

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
	"time"
)

// Keys of a kubernetes.io/tls Secret, as cert-manager's CA issuer reads them.
const (
	TLSCertKey = "tls.crt"
	TLSKeyKey  = "tls.key"
	CACertKey  = "ca.crt"
)

// maxSecretValueBytes bounds what signet parses from one Secret value. A CA
// chain or key is a few kilobytes; Kubernetes allows 1 MiB per Secret.
const maxSecretValueBytes = 1 << 20

// CA is the parsed content of a CA issuer's Secret.
type CA struct {
	// Certificate signs; it is the first certificate of tls.crt.
	Certificate *x509.Certificate
	// Chain is tls.crt in order: Certificate, then any intermediates, maybe the root.
	Chain []*x509.Certificate
	// Key is tls.key; it matches Certificate's public key.
	Key crypto.Signer
	// CAPEM is the PEM of the trust anchor: ca.crt if the Secret has one,
	// else the last certificate of the chain.
	CAPEM []byte

	intermediatesOnce sync.Once
	intermediates     []byte
}

// IntermediatesPEM is what follows a leaf in status.certificate: Chain in
// order, without self-signed certificates. The root is the trust anchor the
// client already has (it is CAPEM); sending it again is at best useless
// (cert-manager drops it too). Worked out once per CA: it verifies a
// signature per certificate.
func (ca *CA) IntermediatesPEM() []byte {
	ca.intermediatesOnce.Do(func() {
		for _, c := range ca.Chain {
			if !IsSelfSigned(c) {
				ca.intermediates = append(ca.intermediates, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
			}
		}
	})
	return ca.intermediates
}

// CAError says why a Secret does not hold a usable CA. Reason is one of the
// CAReason constants; the message says which Secret and what is wrong.
type CAError struct {
	Reason  string
	Message string
}

func (e *CAError) Error() string { return e.Message }

// Why a Secret holds no usable CA. The read model shows these as a signer's
// Ready reason, so they are CamelCase condition reasons.
const (
	CAReasonSecretInvalid = "SecretInvalid"
	CAReasonKeyMismatch   = "KeyMismatch"
	CAReasonNotCA         = "NotCA"
	CAReasonExpired       = "CAExpired"
	CAReasonNotYetValid   = "CANotYetValid"
)

// ParseCA parses a CA issuer's Secret data. secret names the Secret in
// messages ("<namespace>/<name>").
func ParseCA(secret string, data map[string][]byte) (*CA, error) {
	certPEM, keyPEM := data[TLSCertKey], data[TLSKeyKey]
	if len(certPEM) == 0 {
		return nil, &CAError{CAReasonSecretInvalid, fmt.Sprintf("Secret %s has no %s", secret, TLSCertKey)}
	}
	if len(keyPEM) == 0 {
		return nil, &CAError{CAReasonSecretInvalid, fmt.Sprintf("Secret %s has no %s", secret, TLSKeyKey)}
	}
	for k, v := range map[string][]byte{TLSCertKey: certPEM, TLSKeyKey: keyPEM, CACertKey: data[CACertKey]} {
		if len(v) > maxSecretValueBytes {
			return nil, &CAError{CAReasonSecretInvalid, fmt.Sprintf("Secret %s: %s is larger than %d bytes", secret, k, maxSecretValueBytes)}
		}
	}
	chain, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, &CAError{CAReasonSecretInvalid, fmt.Sprintf("Secret %s: %s: %v", secret, TLSCertKey, err)}
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, &CAError{CAReasonSecretInvalid, fmt.Sprintf("Secret %s: %s: %v", secret, TLSKeyKey, err)}
	}
	ca := &CA{Certificate: chain[0], Chain: chain, Key: key}
	if !PublicKeysEqual(key.Public(), ca.Certificate.PublicKey) {
		return ca, &CAError{CAReasonKeyMismatch, fmt.Sprintf("Secret %s: %s does not match the public key of the certificate in %s", secret, TLSKeyKey, TLSCertKey)}
	}
	if !ca.Certificate.IsCA {
		return ca, &CAError{CAReasonNotCA, fmt.Sprintf("Secret %s: the certificate in %s (%s) is not a CA (basicConstraints CA:FALSE or missing)", secret, TLSCertKey, ca.Certificate.Subject)}
	}
	if root := data[CACertKey]; len(root) > 0 {
		if _, err := ParseCertificates(root); err != nil {
			return ca, &CAError{CAReasonSecretInvalid, fmt.Sprintf("Secret %s: %s: %v", secret, CACertKey, err)}
		}
		ca.CAPEM = root
	} else {
		ca.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[len(chain)-1].Raw})
	}
	return ca, nil
}

// CheckValidity reports whether the CA certificate is valid at now.
func (ca *CA) CheckValidity(secret string, now time.Time) error {
	c := ca.Certificate
	if now.Before(c.NotBefore) {
		return &CAError{CAReasonNotYetValid, fmt.Sprintf("CA certificate %s in Secret %s is not valid before %s", c.Subject, secret, c.NotBefore.UTC().Format(time.RFC3339))}
	}
	if now.After(c.NotAfter) {
		return &CAError{CAReasonExpired, fmt.Sprintf("CA certificate %s in Secret %s expired at %s", c.Subject, secret, c.NotAfter.UTC().Format(time.RFC3339))}
	}
	return nil
}
