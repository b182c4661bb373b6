package issuers

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
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

// IsSelfSigned reports whether c is a self-signed certificate: its issuer is
// its subject and its own key verifies its signature.
func IsSelfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// CAError says why a Secret does not hold a usable CA. Reason is a
// CamelCase word for a condition; the message says which Secret and what is wrong.
type CAError struct {
	Reason  string
	Message string
}

func (e *CAError) Error() string { return e.Message }

// Readiness reasons, shown in a signer's Ready condition.
const (
	ReasonReady             = "Ready"
	ReasonPending           = "Pending"
	ReasonInvalidConfig     = "InvalidIssuerSpec"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonSecretInvalid     = "SecretInvalid"
	ReasonKeyMismatch       = "KeyMismatch"
	ReasonNotCA             = "NotCA"
	ReasonCAExpired         = "CAExpired"
	ReasonCANotYetValid     = "CANotYetValid"
	ReasonUnsupportedIssuer = "UnsupportedIssuerType"
)

// ParseCA parses a CA issuer's Secret data. secret names the Secret in
// messages ("<namespace>/<name>").
func ParseCA(secret string, data map[string][]byte) (*CA, error) {
	certPEM, keyPEM := data[TLSCertKey], data[TLSKeyKey]
	if len(certPEM) == 0 {
		return nil, &CAError{ReasonSecretInvalid, fmt.Sprintf("Secret %s has no %s", secret, TLSCertKey)}
	}
	if len(keyPEM) == 0 {
		return nil, &CAError{ReasonSecretInvalid, fmt.Sprintf("Secret %s has no %s", secret, TLSKeyKey)}
	}
	for k, v := range map[string][]byte{TLSCertKey: certPEM, TLSKeyKey: keyPEM, CACertKey: data[CACertKey]} {
		if len(v) > maxSecretValueBytes {
			return nil, &CAError{ReasonSecretInvalid, fmt.Sprintf("Secret %s: %s is larger than %d bytes", secret, k, maxSecretValueBytes)}
		}
	}
	chain, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, &CAError{ReasonSecretInvalid, fmt.Sprintf("Secret %s: %s: %v", secret, TLSCertKey, err)}
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, &CAError{ReasonSecretInvalid, fmt.Sprintf("Secret %s: %s: %v", secret, TLSKeyKey, err)}
	}
	ca := &CA{Certificate: chain[0], Chain: chain, Key: key}
	if !PublicKeysEqual(key.Public(), ca.Certificate.PublicKey) {
		return ca, &CAError{ReasonKeyMismatch, fmt.Sprintf("Secret %s: %s does not match the public key of the certificate in %s", secret, TLSKeyKey, TLSCertKey)}
	}
	if !ca.Certificate.IsCA {
		return ca, &CAError{ReasonNotCA, fmt.Sprintf("Secret %s: the certificate in %s (%s) is not a CA (basicConstraints CA:FALSE or missing)", secret, TLSCertKey, ca.Certificate.Subject)}
	}
	if root := data[CACertKey]; len(root) > 0 {
		if _, err := ParseCertificates(root); err != nil {
			return ca, &CAError{ReasonSecretInvalid, fmt.Sprintf("Secret %s: %s: %v", secret, CACertKey, err)}
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
		return &CAError{ReasonCANotYetValid, fmt.Sprintf("CA certificate %s in Secret %s is not valid before %s", c.Subject, secret, c.NotBefore.UTC().Format(time.RFC3339))}
	}
	if now.After(c.NotAfter) {
		return &CAError{ReasonCAExpired, fmt.Sprintf("CA certificate %s in Secret %s expired at %s", c.Subject, secret, c.NotAfter.UTC().Format(time.RFC3339))}
	}
	return nil
}

// ParseCertificates parses every CERTIFICATE block of a PEM bundle; anything
// else in it is an error, and so is a bundle with no certificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("trailing data after the last PEM certificate")
	}
	return certs, nil
}

// ParsePrivateKey parses a PEM private key in PKCS#1, SEC 1 or PKCS#8 form.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	var (
		key interface{}
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q for a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

// PublicKeysEqual reports whether two public keys are the same key.
func PublicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// KeyAlgorithm describes a public key for people: "ECDSA P-256", "RSA 2048", "Ed25519".
func KeyAlgorithm(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// FingerprintSHA256 is the certificate's SHA-256 fingerprint in the form
// `openssl x509 -fingerprint -sha256` prints: upper-case hex pairs joined by ':'.
func FingerprintSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hexColons(sum[:])
}

// SerialNumber is a certificate serial as colon-separated hex, as openssl prints it.
func SerialNumber(c *x509.Certificate) string {
	return hexColons(c.SerialNumber.Bytes())
}

func hexColons(b []byte) string {
	const digits = "0123456789ABCDEF"
	var sb strings.Builder
	for i, v := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteByte(digits[v>>4])
		sb.WriteByte(digits[v&0x0f])
	}
	return sb.String()
}
