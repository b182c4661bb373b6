package issuers

import (
	"errors"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
)

func caData(ca *testpki.CA) map[string][]byte {
	return map[string][]byte{TLSCertKey: ca.CertPEM(), TLSKeyKey: ca.KeyPEM()}
}

func TestParseCA(t *testing.T) {
	root := testpki.MustCA(testpki.CAOptions{CommonName: "root"})
	inter := testpki.MustCA(testpki.CAOptions{CommonName: "intermediate", Parent: root, KeyType: testpki.RSA2048})
	other := testpki.MustCA(testpki.CAOptions{CommonName: "other"})
	leaf := testpki.MustCA(testpki.CAOptions{CommonName: "leaf", NotCA: true})

	tests := []struct {
		desc       string
		data       map[string][]byte
		wantReason string // empty: parses and is usable
	}{
		{"self-signed root", caData(root), ""},
		{"intermediate with chain and ca.crt", map[string][]byte{
			TLSCertKey: append(inter.CertPEM(), root.CertPEM()...), TLSKeyKey: inter.KeyPEM(), CACertKey: root.CertPEM()}, ""},
		{"ed25519 CA", caData(testpki.MustCA(testpki.CAOptions{KeyType: testpki.Ed25519})), ""},
		{"no tls.crt", map[string][]byte{TLSKeyKey: root.KeyPEM()}, ReasonSecretInvalid},
		{"no tls.key", map[string][]byte{TLSCertKey: root.CertPEM()}, ReasonSecretInvalid},
		{"garbage tls.crt", map[string][]byte{TLSCertKey: []byte("not pem"), TLSKeyKey: root.KeyPEM()}, ReasonSecretInvalid},
		{"key in tls.crt", map[string][]byte{TLSCertKey: root.KeyPEM(), TLSKeyKey: root.KeyPEM()}, ReasonSecretInvalid},
		{"garbage tls.key", map[string][]byte{TLSCertKey: root.CertPEM(), TLSKeyKey: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, ReasonSecretInvalid},
		{"mismatched key", map[string][]byte{TLSCertKey: root.CertPEM(), TLSKeyKey: other.KeyPEM()}, ReasonKeyMismatch},
		{"not a CA", caData(leaf), ReasonNotCA},
		{"bad ca.crt", map[string][]byte{TLSCertKey: root.CertPEM(), TLSKeyKey: root.KeyPEM(), CACertKey: []byte("junk")}, ReasonSecretInvalid},
		{"oversized tls.crt", map[string][]byte{TLSCertKey: make([]byte, maxSecretValueBytes+1), TLSKeyKey: root.KeyPEM()}, ReasonSecretInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ca, err := ParseCA("ns/secret", tt.data)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("ParseCA: %v", err)
				}
				if ca.Key == nil || len(ca.CAPEM) == 0 {
					t.Fatalf("ParseCA returned incomplete CA %+v", ca)
				}
				return
			}
			var caErr *CAError
			if !errors.As(err, &caErr) {
				t.Fatalf("err = %v, want a CAError with reason %s", err, tt.wantReason)
			}
			if caErr.Reason != tt.wantReason {
				t.Errorf("reason = %s (%s), want %s", caErr.Reason, caErr.Message, tt.wantReason)
			}
		})
	}
}

func TestCAValidity(t *testing.T) {
	now := time.Now()
	tests := []struct {
		desc       string
		notBefore  time.Time
		notAfter   time.Time
		wantReason string
	}{
		{"valid", now.Add(-time.Hour), now.Add(time.Hour), ""},
		{"expired", now.Add(-2 * time.Hour), now.Add(-time.Hour), ReasonCAExpired},
		{"not yet valid", now.Add(time.Hour), now.Add(2 * time.Hour), ReasonCANotYetValid},
	}
	for _, tt := range tests {
		ca, err := ParseCA("ns/s", caData(testpki.MustCA(testpki.CAOptions{NotBefore: tt.notBefore, NotAfter: tt.notAfter})))
		if err != nil {
			t.Fatal(err)
		}
		err = ca.CheckValidity("ns/s", now)
		var caErr *CAError
		switch {
		case tt.wantReason == "" && err != nil:
			t.Errorf("%s: unexpected %v", tt.desc, err)
		case tt.wantReason != "" && (!errors.As(err, &caErr) || caErr.Reason != tt.wantReason):
			t.Errorf("%s: err = %v, want reason %s", tt.desc, err, tt.wantReason)
		}
	}
}

func TestDescribeCertificate(t *testing.T) {
	for typ, want := range map[testpki.KeyType]string{
		testpki.ECDSAP256: "ECDSA P-256", testpki.ECDSAP384: "ECDSA P-384", testpki.RSA2048: "RSA 2048", testpki.Ed25519: "Ed25519",
	} {
		ca := testpki.MustCA(testpki.CAOptions{KeyType: typ})
		if got := KeyAlgorithm(ca.Cert.PublicKey); got != want {
			t.Errorf("KeyAlgorithm(%s) = %q, want %q", typ, got, want)
		}
		if fp := FingerprintSHA256(ca.Cert); len(fp) != 32*3-1 {
			t.Errorf("fingerprint %q has the wrong length", fp)
		}
	}
}
