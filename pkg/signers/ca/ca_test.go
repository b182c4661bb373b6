package ca_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/ca"
	"github.com/signet-dev/signet/pkg/signers/internal/signertest"
)

func template(t *testing.T, key testpki.KeyType, in signers.Input, p signers.Policy, now time.Time) *signers.Template {
	t.Helper()
	if in.Request == nil {
		in.Request = signertest.CSR(t, signertest.Key(t, key), &x509.CertificateRequest{
			Subject:        pkix.Name{CommonName: "leaf " + string(key)},
			DNSNames:       []string{"leaf.example.com"},
			IPAddresses:    []net.IP{net.ParseIP("192.0.2.7")},
			URIs:           []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/a/sa/b"}},
			EmailAddresses: []string{"leaf@example.com"},
		})
	}
	tmpl, err := signers.BuildTemplate(in, p, now)
	if err != nil {
		t.Fatalf("BuildTemplate: %v", err)
	}
	return tmpl
}

func parseChain(t *testing.T, pemBytes []byte) []*x509.Certificate {
	t.Helper()
	certs, err := signers.ParseCertificates(pemBytes)
	if err != nil {
		t.Fatalf("status.certificate: %v", err)
	}
	return certs
}

func verify(t *testing.T, root *x509.Certificate, chain []*x509.Certificate, now time.Time, usage x509.ExtKeyUsage) {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("x509.Verify: %v", err)
	}
}

// TestSignEveryKeyType signs a request of every key type with a CA of
// every key type and checks the result as a TLS client would.
func TestSignEveryKeyType(t *testing.T) {
	now := time.Now()
	for _, caType := range signertest.KeyTypes {
		root := signertest.CA(t, caType)
		signer := ca.New(signertest.IssuerCA(t, root), &ca.Config{})
		for _, reqType := range signertest.KeyTypes {
			t.Run("CA="+string(caType)+"/request="+string(reqType), func(t *testing.T) {
				tmpl := template(t, reqType, signers.Input{Usages: []string{"digital signature", "key encipherment", "server auth", "client auth"},
					Annotations: map[string]string{signers.AnnotationRequestDuration: "1h"}}, signers.Policy{}, now)
				res, err := signer.Sign(tmpl, now)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				chain := parseChain(t, res.CertificatePEM)
				if len(chain) != 1 {
					t.Fatalf("status.certificate has %d certificates, want the leaf alone (the root is dropped)", len(chain))
				}
				leaf := chain[0]
				verify(t, root.Cert, chain, now, x509.ExtKeyUsageServerAuth)
				verify(t, root.Cert, chain, now, x509.ExtKeyUsageClientAuth)
				if !signers.PublicKeysEqual(leaf.PublicKey, signertest.Key(t, reqType).Public()) {
					t.Errorf("leaf key is not the request's")
				}
				if leaf.Subject.CommonName != "leaf "+string(reqType) || !slices.Equal(leaf.DNSNames, []string{"leaf.example.com"}) ||
					len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) ||
					len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/a/sa/b" ||
					!slices.Equal(leaf.EmailAddresses, []string{"leaf@example.com"}) {
					t.Errorf("names: %s %v %v %v %v", leaf.Subject, leaf.DNSNames, leaf.IPAddresses, leaf.URIs, leaf.EmailAddresses)
				}
				if leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment ||
					!slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
					t.Errorf("usages %v %v", leaf.KeyUsage, leaf.ExtKeyUsage)
				}
				if leaf.IsCA || !leaf.BasicConstraintsValid {
					t.Errorf("leaf isCA=%v basicConstraintsValid=%v", leaf.IsCA, leaf.BasicConstraintsValid)
				}
				if got := leaf.NotAfter.Sub(leaf.NotBefore); got != time.Hour {
					t.Errorf("validity %s, want exactly the requested 1h", got)
				}
				if !leaf.NotBefore.Equal(res.NotBefore) || !leaf.NotAfter.Equal(res.NotAfter) {
					t.Errorf("Result validity %s-%s, certificate %s-%s", res.NotBefore, res.NotAfter, leaf.NotBefore, leaf.NotAfter)
				}
				if leaf.SerialNumber.Cmp(tmpl.Cert.SerialNumber) != 0 || !bytes.Equal(leaf.SubjectKeyId, tmpl.Cert.SubjectKeyId) {
					t.Errorf("serial or SubjectKeyId not the template's")
				}
				if !bytes.Equal(leaf.AuthorityKeyId, root.Cert.SubjectKeyId) || len(leaf.AuthorityKeyId) == 0 {
					t.Errorf("AuthorityKeyId %x, want the CA's SubjectKeyId %x", leaf.AuthorityKeyId, root.Cert.SubjectKeyId)
				}
				if !bytes.Equal(res.CAPEM, root.CertPEM()) {
					t.Errorf("CAPEM is not the root")
				}
			})
		}
	}
}

func TestSignValidity(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		desc                    string
		caNotBefore, caNotAfter time.Time
		in                      signers.Input
		policy                  signers.Policy
		wantNotBefore           time.Time
		wantNotAfter            time.Time
		wantOutlivesCA          bool
	}{
		{desc: "inside the CA: from now, for the duration",
			caNotBefore: now.Add(-time.Hour), caNotAfter: now.Add(365 * 24 * time.Hour),
			wantNotBefore: now, wantNotAfter: now.Add(signers.DefaultDuration)},
		{desc: "an expiring CA does not shorten the certificate",
			caNotBefore: now.Add(-time.Hour), caNotAfter: now.Add(3 * time.Hour),
			wantNotBefore: now, wantNotAfter: now.Add(signers.DefaultDuration), wantOutlivesCA: true},
		{desc: "cap-to-ca-expiry: NotAfter is the expiring CA's",
			caNotBefore: now.Add(-time.Hour), caNotAfter: now.Add(3 * time.Hour), policy: signers.Policy{CapToCAExpiry: true},
			wantNotBefore: now, wantNotAfter: now.Add(3 * time.Hour)},
		{desc: "cap-to-ca-expiry: a CA that outlives the certificate changes nothing",
			caNotBefore: now.Add(-time.Hour), caNotAfter: now.Add(365 * 24 * time.Hour), policy: signers.Policy{CapToCAExpiry: true},
			wantNotBefore: now, wantNotAfter: now.Add(signers.DefaultDuration)},
		{desc: "a young CA",
			caNotBefore: now.Add(-time.Minute), caNotAfter: now.Add(365 * 24 * time.Hour),
			wantNotBefore: now, wantNotAfter: now.Add(signers.DefaultDuration)},
		{desc: "a certificate ending with the CA does not outlive it",
			caNotBefore: now.Add(-time.Minute), caNotAfter: now.Add(time.Hour),
			in:            signers.Input{ExpirationSeconds: ptr[int32](3600)},
			wantNotBefore: now, wantNotAfter: now.Add(time.Hour)},
		{desc: "max-duration",
			caNotBefore: now.Add(-time.Hour), caNotAfter: now.Add(365 * 24 * time.Hour), policy: signers.Policy{MaxDuration: 24 * time.Hour},
			wantNotBefore: now, wantNotAfter: now.Add(24 * time.Hour)},
		{desc: "max-duration and cap-to-ca-expiry: the shorter wins",
			caNotBefore: now.Add(-time.Hour), caNotAfter: now.Add(2 * time.Hour), policy: signers.Policy{MaxDuration: 24 * time.Hour, CapToCAExpiry: true},
			wantNotBefore: now, wantNotAfter: now.Add(2 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			root := signertest.NewCA(t, testpki.CAOptions{NotBefore: tt.caNotBefore, NotAfter: tt.caNotAfter})
			tmpl := template(t, testpki.ECDSAP256, tt.in, tt.policy, now)
			res, err := ca.New(signertest.IssuerCA(t, root), nil).Sign(tmpl, now)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			leaf := parseChain(t, res.CertificatePEM)[0]
			if !leaf.NotBefore.Equal(tt.wantNotBefore) || !leaf.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("validity %s to %s, want %s to %s", leaf.NotBefore, leaf.NotAfter, tt.wantNotBefore, tt.wantNotAfter)
			}
			if !res.NotBefore.Equal(leaf.NotBefore) || !res.NotAfter.Equal(leaf.NotAfter) {
				t.Errorf("Result says %s to %s", res.NotBefore, res.NotAfter)
			}
			if res.OutlivesCA != tt.wantOutlivesCA {
				t.Errorf("OutlivesCA = %v, want %v", res.OutlivesCA, tt.wantOutlivesCA)
			}
			verify(t, root.Cert, []*x509.Certificate{leaf}, now, x509.ExtKeyUsageAny)
		})
	}
}

// TestValidityIsExactlyTheRequestedDuration pins cert-manager's rule for
// every way a duration can be asked for: NotAfter - NotBefore is the
// duration to the second, whatever the CA's own expiry, unless
// cap-to-ca-expiry is on, which never lets a certificate outlive its CA.
func TestValidityIsExactlyTheRequestedDuration(t *testing.T) {
	// Not on a whole second, as a real clock is: the window must still be exact.
	now := time.Now().Truncate(time.Second).Add(987654321 * time.Nanosecond)
	longCA := signertest.NewCA(t, testpki.CAOptions{CommonName: "long-lived", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20000 * time.Hour)})
	shortCA := signertest.NewCA(t, testpki.CAOptions{CommonName: "expires in 2m", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(2 * time.Minute)})
	midCA := signertest.NewCA(t, testpki.CAOptions{CommonName: "expires in 100h", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(100 * time.Hour)})

	durations := []time.Duration{10 * time.Minute, time.Hour, 55*time.Minute + 33*time.Second, 896 * time.Hour, 2160 * time.Hour, 10000 * time.Hour}
	inputs := map[string]func(time.Duration) signers.Input{
		"annotation": func(d time.Duration) signers.Input {
			return signers.Input{Annotations: map[string]string{signers.AnnotationRequestDuration: d.String()}}
		},
		"expirationSeconds": func(d time.Duration) signers.Input {
			return signers.Input{ExpirationSeconds: ptr(int32(d / time.Second))}
		},
	}
	signed := 0
	for _, d := range durations {
		for how, input := range inputs {
			for _, root := range []*testpki.CA{longCA, midCA, shortCA} {
				for _, capToCA := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/CA %s/cap-to-ca-expiry=%v", d, how, root.Cert.Subject.CommonName, capToCA)
					t.Run(name, func(t *testing.T) {
						tmpl := template(t, testpki.ECDSAP256, input(d), signers.Policy{CapToCAExpiry: capToCA}, now)
						res, err := ca.New(signertest.IssuerCA(t, root), nil).Sign(tmpl, now)
						if err != nil {
							t.Fatalf("Sign: %v", err)
						}
						signed++
						leaf := parseChain(t, res.CertificatePEM)[0]
						start := now.Truncate(time.Second)
						if !leaf.NotBefore.Equal(start) {
							t.Errorf("NotBefore %s, want the signing second %s", leaf.NotBefore, start)
						}
						caEnd := root.Cert.NotAfter
						pastCA := start.Add(d).After(caEnd)
						switch {
						case !capToCA || !pastCA:
							if got := leaf.NotAfter.Sub(leaf.NotBefore); got != d {
								t.Errorf("NotAfter - NotBefore = %s, want exactly %s", got, d)
							}
						default:
							if !leaf.NotAfter.Equal(caEnd) {
								t.Errorf("cap-to-ca-expiry: NotAfter %s, want the CA's %s", leaf.NotAfter, caEnd)
							}
						}
						if capToCA && leaf.NotAfter.After(caEnd) {
							t.Errorf("cap-to-ca-expiry: NotAfter %s is past the CA's %s", leaf.NotAfter, caEnd)
						}
						if !capToCA && pastCA && !leaf.NotAfter.After(caEnd) {
							t.Errorf("NotAfter %s: the requested %s was shortened to the CA's %s", leaf.NotAfter, d, caEnd)
						}
						if want := leaf.NotAfter.After(caEnd); res.OutlivesCA != want {
							t.Errorf("OutlivesCA = %v, want %v", res.OutlivesCA, want)
						}
						if !res.NotBefore.Equal(leaf.NotBefore) || !res.NotAfter.Equal(leaf.NotAfter) {
							t.Errorf("Result says %s to %s, the certificate %s to %s", res.NotBefore, res.NotAfter, leaf.NotBefore, leaf.NotAfter)
						}
					})
				}
			}
		}
	}
	// 6 durations x 2 ways to ask x 3 CAs x cap on/off.
	if signed != 72 {
		t.Errorf("signed %d certificates, want 72", signed)
	}
}

func TestSignRefusesAnInvalidCA(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		desc string
		o    testpki.CAOptions
	}{
		{"expired", testpki.CAOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}},
		{"expiring this second", testpki.CAOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now}},
		{"not yet valid", testpki.CAOptions{NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			root := signertest.NewCA(t, tt.o)
			_, err := ca.New(signertest.IssuerCA(t, root), nil).Sign(template(t, testpki.ECDSAP256, signers.Input{}, signers.Policy{}, now), now)
			if !errors.Is(err, signers.ErrCANotValid) {
				t.Fatalf("err = %v, want ErrCANotValid", err)
			}
			var f *signers.Failure
			if errors.As(err, &f) {
				t.Errorf("an invalid CA is retried, not a Failure: %v", err)
			}
		})
	}
}

// TestChainDropsTheRoot: status.certificate is the leaf and the
// intermediates of tls.crt; self-signed certificates are left out.
func TestChainDropsTheRoot(t *testing.T) {
	now := time.Now()
	root := signertest.NewCA(t, testpki.CAOptions{CommonName: "root"})
	inter := signertest.NewCA(t, testpki.CAOptions{CommonName: "intermediate", Parent: root, KeyType: testpki.Ed25519})
	inter2 := signertest.NewCA(t, testpki.CAOptions{CommonName: "intermediate 2", Parent: inter})

	tests := []struct {
		desc          string
		ca            *signers.CA
		leafIssuer    string
		intermediates []string
		wantCA        []byte
	}{
		{"root alone", signertest.IssuerCA(t, root), "root", nil, root.CertPEM()},
		{"intermediate and root", signertest.IssuerCA(t, inter, root), "intermediate", []string{"intermediate"}, root.CertPEM()},
		{"intermediate alone", signertest.IssuerCA(t, inter), "intermediate", []string{"intermediate"}, inter.CertPEM()},
		{"two intermediates and root", signertest.IssuerCA(t, inter2, inter, root), "intermediate 2", []string{"intermediate 2", "intermediate"}, root.CertPEM()},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			res, err := ca.New(tt.ca, nil).Sign(template(t, testpki.ECDSAP256, signers.Input{Usages: []string{"client auth"}}, signers.Policy{}, now), now)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			chain := parseChain(t, res.CertificatePEM)
			var subjects []string
			for _, c := range chain[1:] {
				subjects = append(subjects, c.Subject.CommonName)
			}
			if chain[0].Issuer.CommonName != tt.leafIssuer || !slices.Equal(subjects, tt.intermediates) {
				t.Errorf("leaf issued by %s, then %v; want issued by %s, then %v", chain[0].Issuer.CommonName, subjects, tt.leafIssuer, tt.intermediates)
			}
			if !bytes.Equal(res.CAPEM, tt.wantCA) {
				t.Errorf("CAPEM is not the expected trust anchor")
			}
			verify(t, root.Cert, chain, now, x509.ExtKeyUsageClientAuth)
		})
	}
}

func TestSignCopiesIssuerURLs(t *testing.T) {
	now := time.Now()
	root := signertest.CA(t, testpki.ECDSAP256)
	cfg := &ca.Config{
		CRLDistributionPoints:  []string{"http://crl.example.com/ca.crl"},
		OCSPServers:            []string{"http://ocsp.example.com"},
		IssuingCertificateURLs: []string{"http://example.com/ca.crt"},
	}
	res, err := ca.New(signertest.IssuerCA(t, root), cfg).Sign(template(t, testpki.ECDSAP256, signers.Input{}, signers.Policy{}, now), now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parseChain(t, res.CertificatePEM)[0]
	if !slices.Equal(leaf.CRLDistributionPoints, cfg.CRLDistributionPoints) || !slices.Equal(leaf.OCSPServer, cfg.OCSPServers) ||
		!slices.Equal(leaf.IssuingCertificateURL, cfg.IssuingCertificateURLs) {
		t.Errorf("CRL %v OCSP %v issuing %v", leaf.CRLDistributionPoints, leaf.OCSPServer, leaf.IssuingCertificateURL)
	}
}

// TestSignCACertificate: a request-is-ca certificate can itself sign.
func TestSignCACertificate(t *testing.T) {
	now := time.Now()
	root := signertest.CA(t, testpki.ECDSAP256)
	subKey := signertest.Key(t, testpki.ECDSAP384)
	tmpl := template(t, testpki.ECDSAP384, signers.Input{
		Request:     signertest.CSR(t, subKey, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sub CA"}}),
		Usages:      []string{"digital signature"},
		Annotations: map[string]string{signers.AnnotationRequestIsCA: "true"},
	}, signers.Policy{}, now)
	res, err := ca.New(signertest.IssuerCA(t, root), nil).Sign(tmpl, now)
	if err != nil {
		t.Fatal(err)
	}
	sub := parseChain(t, res.CertificatePEM)[0]
	if !sub.IsCA || sub.KeyUsage&x509.KeyUsageCertSign == 0 || sub.MaxPathLen > 0 {
		t.Fatalf("sub CA isCA=%v keyUsage=%v maxPathLen=%d", sub.IsCA, sub.KeyUsage, sub.MaxPathLen)
	}
	subCA := &signers.CA{Certificate: sub, Chain: []*x509.Certificate{sub}, Key: subKey, CAPEM: res.CAPEM}
	res2, err := ca.New(subCA, nil).Sign(template(t, testpki.Ed25519, signers.Input{Usages: []string{"client auth"}}, signers.Policy{}, now), now)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, root.Cert, parseChain(t, res2.CertificatePEM), now, x509.ExtKeyUsageClientAuth)
}

// TestSignLeafNamedLikeItsCA: a leaf whose subject is the CA's still names
// the CA's key.
func TestSignLeafNamedLikeItsCA(t *testing.T) {
	now := time.Now()
	root := signertest.CA(t, testpki.ECDSAP256)
	tmpl := template(t, testpki.ECDSAP256, signers.Input{
		Request: signertest.CSR(t, signertest.Key(t, testpki.ECDSAP256), &x509.CertificateRequest{Subject: root.Cert.Subject}),
	}, signers.Policy{}, now)
	res, err := ca.New(signertest.IssuerCA(t, root), nil).Sign(tmpl, now)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := parseChain(t, res.CertificatePEM)[0]; !bytes.Equal(leaf.AuthorityKeyId, root.Cert.SubjectKeyId) {
		t.Errorf("AuthorityKeyId %x, want %x", leaf.AuthorityKeyId, root.Cert.SubjectKeyId)
	}
}

// TestSignDoesNotChangeTheTemplate: a template can be signed twice.
func TestSignDoesNotChangeTheTemplate(t *testing.T) {
	now := time.Now()
	short := signertest.NewCA(t, testpki.CAOptions{NotAfter: now.Add(time.Hour)})
	tmpl := template(t, testpki.ECDSAP256, signers.Input{}, signers.Policy{}, now)
	before := *tmpl.Cert
	if _, err := ca.New(signertest.IssuerCA(t, short), &ca.Config{OCSPServers: []string{"http://ocsp"}}).Sign(tmpl, now); err != nil {
		t.Fatal(err)
	}
	if !tmpl.Cert.NotAfter.Equal(before.NotAfter) || tmpl.Cert.OCSPServer != nil || tmpl.Cert.AuthorityKeyId != nil {
		t.Errorf("Sign changed the template")
	}
}

func ptr[T any](v T) *T { return &v }
