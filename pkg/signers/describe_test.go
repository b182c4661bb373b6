package signers

import (
	"testing"

	"github.com/signet-dev/signet/internal/testpki"
)

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
