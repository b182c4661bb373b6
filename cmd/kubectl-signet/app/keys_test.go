package app

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestGenerateAndEncodeKey(t *testing.T) {
	tests := []struct {
		spec    KeySpec
		pemType string
		check   func(crypto.Signer) bool
	}{
		{KeySpec{RSA, 2048, PKCS1}, "RSA PRIVATE KEY", rsaBits(2048)},
		{KeySpec{RSA, 3072, PKCS1}, "RSA PRIVATE KEY", rsaBits(3072)},
		{KeySpec{RSA, 4096, PKCS8}, "PRIVATE KEY", rsaBits(4096)},
		{KeySpec{ECDSA, 256, PKCS1}, "EC PRIVATE KEY", curveBits(256)},
		{KeySpec{ECDSA, 384, PKCS1}, "EC PRIVATE KEY", curveBits(384)},
		{KeySpec{ECDSA, 521, PKCS8}, "PRIVATE KEY", curveBits(521)},
		// Ed25519 has no PKCS#1-style format: PKCS#8 either way.
		{KeySpec{Ed25519, 0, PKCS1}, "PRIVATE KEY", isEd25519},
		{KeySpec{Ed25519, 0, PKCS8}, "PRIVATE KEY", isEd25519},
	}
	for _, tt := range tests {
		t.Run(tt.spec.String()+" "+string(tt.spec.Encoding), func(t *testing.T) {
			key, err := GenerateKey(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(key) {
				t.Fatalf("generated %T is not a %s key", key, tt.spec)
			}
			data, err := EncodeKey(key, tt.spec.Encoding)
			if err != nil {
				t.Fatal(err)
			}
			block, rest := pem.Decode(data)
			if block == nil || len(rest) != 0 {
				t.Fatalf("not one PEM block: %q", data)
			}
			if block.Type != tt.pemType {
				t.Errorf("PEM type %q, want %q", block.Type, tt.pemType)
			}
			decoded, err := parsePEMKey(block)
			if err != nil {
				t.Fatal(err)
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(decoded.Public()) {
				t.Error("the encoded key decodes to another key")
			}
		})
	}
}

func TestGenerateKeyRejectsUnsupported(t *testing.T) {
	for _, spec := range []KeySpec{{ECDSA, 224, PKCS1}, {"DSA", 1024, PKCS1}} {
		if _, err := GenerateKey(spec); err == nil {
			t.Errorf("GenerateKey(%+v) succeeded", spec)
		}
	}
}

func parsePEMKey(block *pem.Block) (crypto.Signer, error) {
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	return k.(crypto.Signer), nil
}

func rsaBits(n int) func(crypto.Signer) bool {
	return func(k crypto.Signer) bool {
		r, ok := k.(*rsa.PrivateKey)
		return ok && r.N.BitLen() == n
	}
}

func curveBits(n int) func(crypto.Signer) bool {
	return func(k crypto.Signer) bool {
		e, ok := k.(*ecdsa.PrivateKey)
		return ok && e.Curve.Params().BitSize == n
	}
}

func isEd25519(k crypto.Signer) bool {
	_, ok := k.(ed25519.PrivateKey)
	return ok
}
