package app

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// KeyAlgorithm is a cert-manager privateKey.algorithm.
type KeyAlgorithm string

// KeyEncoding is a cert-manager privateKey.encoding.
type KeyEncoding string

const (
	RSA     KeyAlgorithm = "RSA"
	ECDSA   KeyAlgorithm = "ECDSA"
	Ed25519 KeyAlgorithm = "Ed25519"

	PKCS1 KeyEncoding = "PKCS1"
	PKCS8 KeyEncoding = "PKCS8"
)

// KeySpec is the private key to generate.
type KeySpec struct {
	Algorithm KeyAlgorithm
	// Size is the RSA modulus in bits or the ECDSA curve size; 0 for Ed25519.
	Size     int
	Encoding KeyEncoding
}

func (k KeySpec) String() string {
	if k.Algorithm == Ed25519 {
		return string(Ed25519)
	}
	if k.Algorithm == ECDSA {
		return fmt.Sprintf("ECDSA P-%d", k.Size)
	}
	return fmt.Sprintf("%s %d", k.Algorithm, k.Size)
}

// keySpecFrom applies cert-manager's defaults (RSA 2048, ECDSA P-256,
// PKCS1) and refuses what it would refuse.
func keySpecFrom(p *privateKeySpec) (KeySpec, error) {
	if p == nil {
		p = &privateKeySpec{}
	}
	k := KeySpec{Algorithm: KeyAlgorithm(p.Algorithm), Size: p.Size, Encoding: KeyEncoding(p.Encoding)}
	switch k.Encoding {
	case "":
		k.Encoding = PKCS1
	case PKCS1, PKCS8:
	default:
		return KeySpec{}, fmt.Errorf("spec.privateKey.encoding %q: expected %s or %s", p.Encoding, PKCS1, PKCS8)
	}
	switch k.Algorithm {
	case "", RSA:
		k.Algorithm = RSA
		if k.Size == 0 {
			k.Size = 2048
		}
		if k.Size != 2048 && k.Size != 3072 && k.Size != 4096 {
			return KeySpec{}, fmt.Errorf("spec.privateKey.size %d is not a supported RSA key size: expected 2048, 3072 or 4096", p.Size)
		}
	case ECDSA:
		if k.Size == 0 {
			k.Size = 256
		}
		if k.Size != 256 && k.Size != 384 && k.Size != 521 {
			return KeySpec{}, fmt.Errorf("spec.privateKey.size %d is not a supported ECDSA curve size: expected 256, 384 or 521", p.Size)
		}
	case Ed25519:
		// cert-manager ignores the size of an Ed25519 key: there is only one.
		k.Size = 0
	default:
		return KeySpec{}, fmt.Errorf("spec.privateKey.algorithm %q: expected %s, %s or %s", p.Algorithm, RSA, ECDSA, Ed25519)
	}
	return k, nil
}

// GenerateKey makes a new private key as spec says.
func GenerateKey(spec KeySpec) (crypto.Signer, error) {
	switch spec.Algorithm {
	case RSA:
		return rsa.GenerateKey(rand.Reader, spec.Size)
	case ECDSA:
		var curve elliptic.Curve
		switch spec.Size {
		case 256:
			curve = elliptic.P256()
		case 384:
			curve = elliptic.P384()
		case 521:
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported ECDSA curve size %d", spec.Size)
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case Ed25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	}
	return nil, fmt.Errorf("unsupported key algorithm %q", spec.Algorithm)
}

// EncodeKey PEM-encodes key. PKCS1 means the algorithm's own format ("RSA
// PRIVATE KEY", or SEC 1 "EC PRIVATE KEY" for ECDSA), as cert-manager does;
// Ed25519 has no such format and is always PKCS#8 ("PRIVATE KEY").
func EncodeKey(key crypto.Signer, encoding KeyEncoding) ([]byte, error) {
	if encoding == PKCS1 {
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
		case *ecdsa.PrivateKey:
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				return nil, err
			}
			return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
