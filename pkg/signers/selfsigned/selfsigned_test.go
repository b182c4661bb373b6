package selfsigned_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/internal/signertest"
	"github.com/signet-dev/signet/pkg/signers/selfsigned"
)

func template(t *testing.T, kt testpki.KeyType, annotations map[string]string, now time.Time) *signers.Template {
	t.Helper()
	tmpl, err := signers.BuildTemplate(signers.Input{
		Request: signertest.CSR(t, signertest.Key(t, kt), &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "self " + string(kt)}, DNSNames: []string{"self.example.com"}}),
		Usages:      []string{"digital signature", "server auth"},
		Annotations: annotations,
	}, signers.Policy{}, now)
	if err != nil {
		t.Fatalf("BuildTemplate: %v", err)
	}
	return tmpl
}

func TestSelfSignedEveryKeyType(t *testing.T) {
	now := time.Now()
	cfg := &selfsigned.Config{CRLDistributionPoints: []string{"http://crl.example.com/self.crl"}}
	for _, kt := range signertest.KeyTypes {
		for _, isCA := range []bool{false, true} {
			name := string(kt)
			annotations := map[string]string{}
			if isCA {
				name += "/CA"
				annotations[signers.AnnotationRequestIsCA] = "true"
			}
			t.Run(name, func(t *testing.T) {
				tmpl := template(t, kt, annotations, now)
				res, err := selfsigned.New(signertest.Key(t, kt), cfg).Sign(tmpl, now)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if !bytes.Equal(res.CertificatePEM, res.CAPEM) {
					t.Errorf("CAPEM is not the certificate itself")
				}
				certs, err := signers.ParseCertificates(res.CertificatePEM)
				if err != nil || len(certs) != 1 {
					t.Fatalf("status.certificate: %d certificates, %v", len(certs), err)
				}
				c := certs[0]
				if !bytes.Equal(c.RawIssuer, c.RawSubject) || !signers.IsSelfSigned(c) {
					t.Errorf("issuer %s, subject %s: want self-signed", c.Issuer, c.Subject)
				}
				if c.IsCA != isCA || (c.KeyUsage&x509.KeyUsageCertSign != 0) != isCA {
					t.Errorf("isCA=%v keyUsage=%v, want isCA=%v", c.IsCA, c.KeyUsage, isCA)
				}
				if !slices.Equal(c.CRLDistributionPoints, cfg.CRLDistributionPoints) {
					t.Errorf("CRL distribution points %v", c.CRLDistributionPoints)
				}
				if len(c.AuthorityKeyId) != 0 || len(c.SubjectKeyId) != 20 {
					t.Errorf("AuthorityKeyId %x SubjectKeyId %x", c.AuthorityKeyId, c.SubjectKeyId)
				}
				if !c.NotBefore.Equal(res.NotBefore) || !c.NotAfter.Equal(res.NotAfter) || c.NotAfter.Sub(c.NotBefore) != signers.DefaultDuration {
					t.Errorf("validity %s to %s (Result %s to %s)", c.NotBefore, c.NotAfter, res.NotBefore, res.NotAfter)
				}
				roots := x509.NewCertPool()
				roots.AddCert(c)
				if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, DNSName: "self.example.com"}); err != nil {
					t.Errorf("x509.Verify against itself: %v", err)
				}
			})
		}
	}
}

func TestSelfSignedKeyMismatch(t *testing.T) {
	now := time.Now()
	tmpl := template(t, testpki.ECDSAP256, nil, now)
	for _, tt := range []struct {
		desc string
		s    signers.Signer
	}{
		{"another key of the same type", selfsigned.New(signertest.NewCA(t, testpki.CAOptions{}).Key, nil)},
		{"a key of another type", selfsigned.New(signertest.Key(t, testpki.Ed25519), nil)},
		{"no key", selfsigned.New(nil, nil)},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := tt.s.Sign(tmpl, now)
			var f *signers.Failure
			if !errors.As(err, &f) || f.Reason != signers.ReasonErrorKeyMatch {
				t.Fatalf("err = %v, want Failure %s", err, signers.ReasonErrorKeyMatch)
			}
		})
	}
}

// TestSelfSignedValidityIsExactlyTheRequestedDuration: a self-signed
// certificate is its own CA, so cap-to-ca-expiry changes nothing and the
// window is always the duration to the second.
func TestSelfSignedValidityIsExactlyTheRequestedDuration(t *testing.T) {
	now := time.Now().Truncate(time.Second).Add(123456789 * time.Nanosecond)
	key := signertest.Key(t, testpki.ECDSAP256)
	csr := signertest.CSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "self"}})
	for _, d := range []time.Duration{10 * time.Minute, time.Hour, 55*time.Minute + 33*time.Second, 896 * time.Hour, 2160 * time.Hour, 10000 * time.Hour} {
		for _, capToCA := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cap-to-ca-expiry=%v", d, capToCA), func(t *testing.T) {
				secs := int32(d / time.Second)
				tmpl, err := signers.BuildTemplate(signers.Input{Request: csr, ExpirationSeconds: &secs}, signers.Policy{CapToCAExpiry: capToCA}, now)
				if err != nil {
					t.Fatalf("BuildTemplate: %v", err)
				}
				res, err := selfsigned.New(key, nil).Sign(tmpl, now)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				certs, err := signers.ParseCertificates(res.CertificatePEM)
				if err != nil {
					t.Fatal(err)
				}
				c := certs[0]
				if !c.NotBefore.Equal(now.Truncate(time.Second)) || c.NotAfter.Sub(c.NotBefore) != d {
					t.Errorf("validity %s to %s (%s), want %s from %s", c.NotBefore, c.NotAfter, c.NotAfter.Sub(c.NotBefore), d, now.Truncate(time.Second))
				}
				if res.OutlivesCA {
					t.Error("a self-signed certificate cannot outlive itself")
				}
			})
		}
	}
}
