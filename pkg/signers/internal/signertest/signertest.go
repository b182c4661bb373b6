// Package signertest holds the keys, CAs and requests that pkg/signers'
// tests share. Keys are generated once per test binary: RSA-4096 generation
// takes seconds on a small machine.
package signertest

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
)

// KeyTypes is every key type signet signs for and with.
var KeyTypes = []testpki.KeyType{
	testpki.RSA2048, testpki.RSA3072, testpki.RSA4096,
	testpki.ECDSAP256, testpki.ECDSAP384, testpki.ECDSAP521,
	testpki.Ed25519,
}

var (
	mu   sync.Mutex
	keys = map[testpki.KeyType]*lazy[crypto.Signer]{}
	cas  = map[testpki.KeyType]*lazy[*testpki.CA]{}
)

type lazy[T any] struct {
	once sync.Once
	v    T
	err  error
}

func get[T any](m map[testpki.KeyType]*lazy[T], kt testpki.KeyType, make func() (T, error)) (T, error) {
	mu.Lock()
	l, ok := m[kt]
	if !ok {
		l = &lazy[T]{}
		m[kt] = l
	}
	mu.Unlock()
	l.once.Do(func() { l.v, l.err = make() })
	return l.v, l.err
}

// Key is this test binary's request key of type kt.
func Key(tb testing.TB, kt testpki.KeyType) crypto.Signer {
	tb.Helper()
	k, err := get(keys, kt, func() (crypto.Signer, error) { return testpki.NewKey(kt) })
	if err != nil {
		tb.Fatalf("generating a %s key: %v", kt, err)
	}
	return k
}

// CA is this test binary's self-signed root CA with a key of type kt, valid
// from an hour ago for a year.
func CA(tb testing.TB, kt testpki.KeyType) *testpki.CA {
	tb.Helper()
	ca, err := get(cas, kt, func() (*testpki.CA, error) {
		return testpki.NewCA(testpki.CAOptions{CommonName: "signet test root " + string(kt), KeyType: kt})
	})
	if err != nil {
		tb.Fatalf("making a %s CA: %v", kt, err)
	}
	return ca
}

// NewCA makes a CA that is not shared; P-256 unless o says otherwise.
func NewCA(tb testing.TB, o testpki.CAOptions) *testpki.CA {
	tb.Helper()
	ca, err := testpki.NewCA(o)
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

// IssuerCA is the CA signers.ParseCA reads from a Secret whose tls.crt is
// signing followed by chain, with signing's key.
func IssuerCA(tb testing.TB, signing *testpki.CA, chain ...*testpki.CA) *signers.CA {
	tb.Helper()
	crt := signing.CertPEM()
	for _, c := range chain {
		crt = append(crt, c.CertPEM()...)
	}
	ca, err := signers.ParseCA("test/ca", map[string][]byte{signers.TLSCertKey: crt, signers.TLSKeyKey: signing.KeyPEM()})
	if err != nil {
		tb.Fatalf("ParseCA: %v", err)
	}
	return ca
}

// CSR signs tmpl with key and returns the PEM request.
func CSR(tb testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	tb.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: CSRDER(tb, key, tmpl)})
}

// CSRDER signs tmpl with key and returns the DER request.
func CSRDER(tb testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		tb.Fatalf("CreateCertificateRequest: %v", err)
	}
	return der
}
