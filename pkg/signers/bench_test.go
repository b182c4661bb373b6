package signers_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/ca"
	"github.com/signet-dev/signet/pkg/signers/internal/signertest"
	"github.com/signet-dev/signet/pkg/signers/selfsigned"
)

// benchInput is a typical client certificate request: the shape of the
// CSR bursts signet is measured with.
func benchInput(b *testing.B, kt testpki.KeyType) signers.Input {
	return signers.Input{
		Request: signertest.CSR(b, signertest.Key(b, kt), &x509.CertificateRequest{
			Subject:  pkix.Name{CommonName: "system:node:worker-1", Organization: []string{"system:nodes"}},
			DNSNames: []string{"worker-1.example.com"},
		}),
		Usages:            []string{"digital signature", "key encipherment", "client auth"},
		ExpirationSeconds: ptr[int32](86400),
	}
}

func BenchmarkBuildTemplate(b *testing.B) {
	now := time.Now()
	for _, kt := range signertest.KeyTypes {
		b.Run("request="+string(kt), func(b *testing.B) {
			in := benchInput(b, kt)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := signers.BuildTemplate(in, signers.Policy{}, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Near the most parsing a request within the limits can ask for: a
	// 4 KB subject and 1000 URI SANs (URIs cost the most to parse).
	b.Run("worst-case", func(b *testing.B) {
		key, err := testpki.NewKey(testpki.RSA2048)
		if err != nil {
			b.Fatal(err)
		}
		tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: strings.Repeat("x", 4000)}}
		for i := 0; i < signers.MaxSANs; i++ {
			tmpl.URIs = append(tmpl.URIs, &url.URL{Scheme: "spiffe", Host: "c", Path: fmt.Sprintf("/%d", i)})
		}
		in := signers.Input{Request: signertest.CSR(b, key, tmpl)}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := signers.BuildTemplate(in, signers.Policy{}, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCASign signs a P-256 request with a CA of each key type, and
// requests of each key type with a P-256 CA. CA=ECDSA-P256/request=ECDSA-P256
// is the hot path of the CSR burst targets.
func BenchmarkCASign(b *testing.B) {
	now := time.Now()
	run := func(caType, reqType testpki.KeyType) {
		b.Run("CA="+string(caType)+"/request="+string(reqType), func(b *testing.B) {
			signer := ca.New(signertest.IssuerCA(b, signertest.CA(b, caType)), &ca.Config{})
			tmpl, err := signers.BuildTemplate(benchInput(b, reqType), signers.Policy{}, now)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := signer.Sign(tmpl, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, kt := range signertest.KeyTypes {
		run(kt, testpki.ECDSAP256)
	}
	for _, kt := range signertest.KeyTypes {
		if kt != testpki.ECDSAP256 {
			run(testpki.ECDSAP256, kt)
		}
	}
}

func BenchmarkSelfSignedSign(b *testing.B) {
	now := time.Now()
	for _, kt := range signertest.KeyTypes {
		b.Run("key="+string(kt), func(b *testing.B) {
			signer := selfsigned.New(signertest.Key(b, kt), nil)
			tmpl, err := signers.BuildTemplate(benchInput(b, kt), signers.Policy{}, now)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := signer.Sign(tmpl, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHotPath is one CSR's crypto from request to PEM chain: P-256
// request, P-256 CA.
func BenchmarkHotPath(b *testing.B) {
	now := time.Now()
	signer := ca.New(signertest.IssuerCA(b, signertest.CA(b, testpki.ECDSAP256)), &ca.Config{})
	in := benchInput(b, testpki.ECDSAP256)
	b.ReportAllocs()
	for b.Loop() {
		tmpl, err := signers.BuildTemplate(in, signers.Policy{}, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := signer.Sign(tmpl, now); err != nil {
			b.Fatal(err)
		}
	}
}
