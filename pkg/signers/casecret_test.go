package signers

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
		{"no tls.crt", map[string][]byte{TLSKeyKey: root.KeyPEM()}, CAReasonSecretInvalid},
		{"no tls.key", map[string][]byte{TLSCertKey: root.CertPEM()}, CAReasonSecretInvalid},
		{"garbage tls.crt", map[string][]byte{TLSCertKey: []byte("not pem"), TLSKeyKey: root.KeyPEM()}, CAReasonSecretInvalid},
		{"key in tls.crt", map[string][]byte{TLSCertKey: root.KeyPEM(), TLSKeyKey: root.KeyPEM()}, CAReasonSecretInvalid},
		{"garbage tls.key", map[string][]byte{TLSCertKey: root.CertPEM(), TLSKeyKey: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, CAReasonSecretInvalid},
		{"mismatched key", map[string][]byte{TLSCertKey: root.CertPEM(), TLSKeyKey: other.KeyPEM()}, CAReasonKeyMismatch},
		{"not a CA", caData(leaf), CAReasonNotCA},
		{"bad ca.crt", map[string][]byte{TLSCertKey: root.CertPEM(), TLSKeyKey: root.KeyPEM(), CACertKey: []byte("junk")}, CAReasonSecretInvalid},
		{"oversized tls.crt", map[string][]byte{TLSCertKey: make([]byte, maxSecretValueBytes+1), TLSKeyKey: root.KeyPEM()}, CAReasonSecretInvalid},
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
		{"expired", now.Add(-2 * time.Hour), now.Add(-time.Hour), CAReasonExpired},
		{"not yet valid", now.Add(time.Hour), now.Add(2 * time.Hour), CAReasonNotYetValid},
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
