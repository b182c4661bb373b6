// Package testpki makes keys and certificates for signet's tests.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// KeyType names a key algorithm and size.
type KeyType string

const (
	RSA2048   KeyType = "RSA-2048"
	RSA3072   KeyType = "RSA-3072"
	RSA4096   KeyType = "RSA-4096"
	ECDSAP256 KeyType = "ECDSA-P256"
	ECDSAP384 KeyType = "ECDSA-P384"
	ECDSAP521 KeyType = "ECDSA-P521"
	Ed25519   KeyType = "Ed25519"
)

// NewKey generates a private key of type t.
func NewKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ECDSAP521:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// KeyPEM encodes a private key as PKCS#8 PEM.
func KeyPEM(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// CertPEM encodes certificates as a PEM bundle.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// CA is a certificate authority for tests.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CertPEM is the CA certificate as PEM.
func (ca *CA) CertPEM() []byte { return CertPEM(ca.Cert) }

// KeyPEM is the CA key as PEM.
func (ca *CA) KeyPEM() []byte { return KeyPEM(ca.Key) }

// CAOptions shape a test CA. Zero values give a P-256 CA valid from an hour
// ago for a year.
type CAOptions struct {
	CommonName string
	KeyType    KeyType
	NotBefore  time.Time
	NotAfter   time.Time
	// NotCA makes a certificate without the CA basic constraint.
	NotCA bool
	// Parent signs the new certificate; nil makes it self-signed.
	Parent *CA
}

// NewCA makes a CA (or, with Parent, an intermediate).
func NewCA(o CAOptions) (*CA, error) {
	if o.KeyType == "" {
		o.KeyType = ECDSAP256
	}
	if o.CommonName == "" {
		o.CommonName = "signet test CA"
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(365 * 24 * time.Hour)
	}
	key, err := NewKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName, Organization: []string{"signet tests"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  !o.NotCA,
	}
	parentCert, parentKey := tmpl, key
	if o.Parent != nil {
		parentCert, parentKey = o.Parent.Cert, o.Parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// MustCA is NewCA that panics; for tests.
func MustCA(o CAOptions) *CA {
	ca, err := NewCA(o)
	if err != nil {
		panic(err)
	}
	return ca
}
