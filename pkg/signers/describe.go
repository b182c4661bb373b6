package signers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"
)

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
