// Package issuancetest holds what the tests of the issuance pipeline, its
// backends and the CSR controller share: issuer states as the read model
// would publish them, a fake read model, and PKCS#10 requests.
package issuancetest

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"sync"
	"testing"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
)

// CAState is the Ready state of a CA issuer whose Secret holds ca.
func CAState(tb testing.TB, ref issuers.Ref, ca *testpki.CA) *issuers.State {
	tb.Helper()
	parsed, err := signers.ParseCA("test/ca", map[string][]byte{signers.TLSCertKey: ca.CertPEM(), signers.TLSKeyKey: ca.KeyPEM()})
	if err != nil {
		tb.Fatalf("ParseCA: %v", err)
	}
	return &issuers.State{
		Issuer: &issuers.Issuer{Ref: ref, Type: issuers.TypeCA, CA: &issuers.CAConfig{SecretName: "ca"}},
		Ready:  true, Reason: issuers.ReasonReady, CA: parsed,
	}
}

// SelfSignedState is the (always Ready) state of a SelfSigned issuer.
func SelfSignedState(ref issuers.Ref) *issuers.State {
	return &issuers.State{
		Issuer: &issuers.Issuer{Ref: ref, Type: issuers.TypeSelfSigned, SelfSigned: &issuers.SelfSignedConfig{}},
		Ready:  true, Reason: issuers.ReasonReady,
	}
}

// NotReady is a state that is not ready for reason.
func NotReady(ref issuers.Ref, typ issuers.Type, reason, message string) *issuers.State {
	return &issuers.State{Issuer: &issuers.Issuer{Ref: ref, Type: typ}, Reason: reason, Message: message}
}

// Source is a fake read model: a map of states, set by the test.
type Source struct {
	mu        sync.Mutex
	states    map[issuers.Ref]*issuers.State
	listeners []func(issuers.Ref)
	// Synced is what HasSynced reports.
	Synced bool
}

// NewSource returns a synced Source holding states.
func NewSource(states ...*issuers.State) *Source {
	s := &Source{states: map[issuers.Ref]*issuers.State{}, Synced: true}
	for _, st := range states {
		s.states[st.Issuer.Ref] = st
	}
	return s
}

func (s *Source) Get(ref issuers.Ref) (*issuers.State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[ref]
	return st, ok
}

func (s *Source) HasSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Synced
}

func (s *Source) OnChange(f func(issuers.Ref)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, f)
}

// Set publishes st and tells the listeners, as the read model does.
func (s *Source) Set(st *issuers.State) {
	s.mu.Lock()
	s.states[st.Issuer.Ref] = st
	listeners := append([]func(issuers.Ref){}, s.listeners...)
	s.mu.Unlock()
	for _, f := range listeners {
		f(st.Issuer.Ref)
	}
}

// Key is a P-256 key, generated per call.
func Key(tb testing.TB) crypto.Signer {
	tb.Helper()
	k, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// CSR is a PEM PKCS#10 request for commonName and dnsNames, signed by key.
func CSR(tb testing.TB, key crypto.Signer, commonName string, dnsNames ...string) []byte {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: commonName}, DNSNames: dnsNames}, key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// Leaf parses the first certificate of a PEM chain.
func Leaf(tb testing.TB, chainPEM []byte) *x509.Certificate {
	tb.Helper()
	certs, err := signers.ParseCertificates(chainPEM)
	if err != nil {
		tb.Fatalf("certificate chain: %v", err)
	}
	return certs[0]
}
