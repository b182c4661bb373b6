package signers_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/internal/signertest"
)

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidServerAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

func ext(t testing.TB, oid asn1.ObjectIdentifier, v any) pkix.Extension {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oid, Value: b}
}

type basicConstraints struct {
	IsCA bool `asn1:"optional"`
}

// keyUsageExt encodes a KeyUsage extension the way crypto/x509 does.
func keyUsageExt(t testing.TB, ku x509.KeyUsage) pkix.Extension {
	t.Helper()
	var b [2]byte
	b[0] = reverseBits(byte(ku))
	b[1] = reverseBits(byte(ku >> 8))
	n := 1
	if b[1] != 0 {
		n = 2
	}
	bits := n * 8
	for bits > 0 && b[(bits-1)/8]&(1<<(7-uint((bits-1)%8))) == 0 {
		bits--
	}
	return ext(t, oidKeyUsage, asn1.BitString{Bytes: b[:n], BitLength: bits})
}

func reverseBits(b byte) byte {
	var r byte
	for i := 0; i < 8; i++ {
		r = r<<1 | b&1
		b >>= 1
	}
	return r
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func ptr[T any](v T) *T { return &v }

func reasonOf(err error) string {
	var f *signers.Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	if err != nil {
		return "non-Failure error: " + err.Error()
	}
	return ""
}

func TestBuildTemplate(t *testing.T) {
	now := time.Now()
	p256 := signertest.Key(t, testpki.ECDSAP256)
	csr := func(tmpl *x509.CertificateRequest) []byte { return signertest.CSR(t, p256, tmpl) }
	basic := csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "basic", Organization: []string{"signet"}}, DNSNames: []string{"basic.example.com"}})
	basicDER, _ := pem.Decode(basic)

	tampered := append([]byte(nil), basicDER.Bytes...)
	tampered[len(tampered)-3] ^= 0xff

	manyNames := func(n int) []string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("h%d.x", i)
		}
		return names
	}
	// 1000 names of all four kinds: at the limit.
	var thousand x509.CertificateRequest
	for i := 0; i < 250; i++ {
		thousand.DNSNames = append(thousand.DNSNames, fmt.Sprintf("d%d.example", i))
		thousand.IPAddresses = append(thousand.IPAddresses, net.IPv4(10, 0, byte(i/256), byte(i)))
		thousand.EmailAddresses = append(thousand.EmailAddresses, fmt.Sprintf("m%d@example.com", i))
		thousand.URIs = append(thousand.URIs, &url.URL{Scheme: "spiffe", Host: "example", Path: fmt.Sprintf("/w/%d", i)})
	}

	// An otherName SAN (a Microsoft UPN) next to a DNS name: crypto/x509
	// does not parse otherName, signet carries it.
	upnSAN, err := asn1.Marshal([]asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: mustMarshal(t, struct {
			ID    asn1.ObjectIdentifier
			Value asn1.RawValue
		}{asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: mustMarshal(t, "user@example.com")}})},
		{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("upn.example.com")},
	})
	if err != nil {
		t.Fatal(err)
	}

	dur := func(d string) map[string]string { return map[string]string{signers.AnnotationRequestDuration: d} }
	isCA := map[string]string{signers.AnnotationRequestIsCA: "true"}
	withBC := func(ca bool) []byte {
		return csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "bc"}, ExtraExtensions: []pkix.Extension{ext(t, oidBasicConstraints, basicConstraints{ca})}})
	}
	withExt := func(exts ...pkix.Extension) []byte {
		return csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "ext"}, ExtraExtensions: exts})
	}
	const day = 24 * time.Hour

	tests := []struct {
		desc       string
		in         signers.Input
		policy     signers.Policy
		wantReason string // empty: success
		check      func(t *testing.T, tmpl *signers.Template)
	}{
		// The request itself.
		{desc: "valid P-256 request gets the defaults", in: signers.Input{Request: basic}, check: func(t *testing.T, tmpl *signers.Template) {
			c := tmpl.Cert
			if c.Subject.CommonName != "basic" || !slices.Equal(c.Subject.Organization, []string{"signet"}) {
				t.Errorf("subject = %v", c.Subject)
			}
			if tmpl.Duration != signers.DefaultDuration || tmpl.IsCA || c.IsCA {
				t.Errorf("duration %s isCA %v/%v", tmpl.Duration, tmpl.IsCA, c.IsCA)
			}
			if c.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || len(c.ExtKeyUsage) != 0 {
				t.Errorf("usages %v %v", c.KeyUsage, c.ExtKeyUsage)
			}
			if !slices.Equal(c.DNSNames, []string{"basic.example.com"}) {
				t.Errorf("DNS names %v", c.DNSNames)
			}
		}},
		{desc: "empty request", in: signers.Input{}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "not PEM", in: signers.Input{Request: []byte("hello, signer")}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "DER without PEM", in: signers.Input{Request: basicDER.Bytes}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "wrong PEM type", in: signers.Input{Request: pemBlock("CERTIFICATE", basicDER.Bytes)}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "legacy NEW CERTIFICATE REQUEST type", in: signers.Input{Request: pemBlock("NEW CERTIFICATE REQUEST", basicDER.Bytes)}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "PEM headers", in: signers.Input{Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: basicDER.Bytes})}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "PEM of garbage", in: signers.Input{Request: pemBlock("CERTIFICATE REQUEST", []byte("garbage"))}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "trailing data after the PEM block", in: signers.Input{Request: append(append([]byte(nil), basic...), "junk"...)}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "two requests", in: signers.Input{Request: append(append([]byte(nil), basic...), basic...)}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "trailing bytes inside the DER", in: signers.Input{Request: pemBlock("CERTIFICATE REQUEST", append(append([]byte(nil), basicDER.Bytes...), 0, 0))}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "truncated DER", in: signers.Input{Request: pemBlock("CERTIFICATE REQUEST", basicDER.Bytes[:len(basicDER.Bytes)-10])}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "text before the PEM block, as openssl req -text prints", in: signers.Input{Request: append([]byte("Certificate Request:\n    Data: ...\n"), basic...)}},
		{desc: "trailing whitespace", in: signers.Input{Request: append(append([]byte(nil), basic...), "\n\n  \n"...)}},
		{desc: "signature does not verify", in: signers.Input{Request: pemBlock("CERTIFICATE REQUEST", tampered)}, wantReason: signers.ReasonInvalidCSRSignature},
		{desc: "request over 64 KiB", in: signers.Input{Request: append(append([]byte(nil), basic...), bytes.Repeat([]byte("\n"), signers.MaxRequestBytes)...)}, wantReason: signers.ReasonRequestTooLarge},
		{desc: "300 KB subject", in: signers.Input{Request: csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: strings.Repeat("x", 300<<10)}})}, wantReason: signers.ReasonRequestTooLarge},
		{desc: "5 KB subject within the byte limit", in: signers.Input{Request: csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: strings.Repeat("x", 5<<10)}})}, wantReason: signers.ReasonRequestTooLarge},
		{desc: "RSA key over 8192 bits", in: signers.Input{Request: bigRSARequest(t, 8200)}, wantReason: signers.ReasonRequestTooLarge},
		{desc: "3000 SANs", in: signers.Input{Request: csr(&x509.CertificateRequest{DNSNames: manyNames(3000)})}, wantReason: signers.ReasonRequestTooLarge},
		{desc: "1001 SANs", in: signers.Input{Request: csr(&x509.CertificateRequest{DNSNames: manyNames(1001)})}, wantReason: signers.ReasonRequestTooLarge},
		{desc: "1000 SANs of four kinds", in: signers.Input{Request: csr(&thousand)}, check: func(t *testing.T, tmpl *signers.Template) {
			c := tmpl.Cert
			if len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs) != 1000 {
				t.Errorf("got %d+%d+%d+%d names", len(c.DNSNames), len(c.IPAddresses), len(c.EmailAddresses), len(c.URIs))
			}
		}},
		{desc: "SANs of every kind are copied", in: signers.Input{Request: csr(&x509.CertificateRequest{
			Subject:        pkix.Name{CommonName: "sans"},
			DNSNames:       []string{"a.example.com", "*.b.example.com"},
			IPAddresses:    []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")},
			URIs:           []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/a/sa/b"}},
			EmailAddresses: []string{"a@example.com"},
		})}, check: func(t *testing.T, tmpl *signers.Template) {
			c := tmpl.Cert
			if !slices.Equal(c.DNSNames, []string{"a.example.com", "*.b.example.com"}) || len(c.IPAddresses) != 2 ||
				!c.IPAddresses[1].Equal(net.ParseIP("2001:db8::1")) || len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://cluster.local/ns/a/sa/b" ||
				!slices.Equal(c.EmailAddresses, []string{"a@example.com"}) {
				t.Errorf("SANs %v %v %v %v", c.DNSNames, c.IPAddresses, c.URIs, c.EmailAddresses)
			}
			if len(c.ExtraExtensions) != 1 || !c.ExtraExtensions[0].Id.Equal(oidSubjectAltName) || c.ExtraExtensions[0].Critical {
				t.Errorf("SAN extension %+v, want one, not critical", c.ExtraExtensions)
			}
		}},
		{desc: "empty subject makes the SAN extension critical", in: signers.Input{Request: csr(&x509.CertificateRequest{DNSNames: []string{"only.example.com"}})}, check: func(t *testing.T, tmpl *signers.Template) {
			if len(tmpl.Cert.ExtraExtensions) != 1 || !tmpl.Cert.ExtraExtensions[0].Critical {
				t.Errorf("SAN extension %+v, want critical", tmpl.Cert.ExtraExtensions)
			}
		}},
		{desc: "otherName SAN is carried as encoded", in: signers.Input{Request: csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "upn"},
			ExtraExtensions: []pkix.Extension{{Id: oidSubjectAltName, Value: upnSAN}}})}, check: func(t *testing.T, tmpl *signers.Template) {
			if len(tmpl.Cert.ExtraExtensions) != 1 || !bytes.Equal(tmpl.Cert.ExtraExtensions[0].Value, upnSAN) {
				t.Errorf("SAN extension %+v, want the request's bytes", tmpl.Cert.ExtraExtensions)
			}
		}},
		{desc: "empty SAN extension is dropped", in: signers.Input{Request: withExt(pkix.Extension{Id: oidSubjectAltName, Value: []byte{0x30, 0}})}, check: func(t *testing.T, tmpl *signers.Template) {
			if len(tmpl.Cert.ExtraExtensions) != 0 {
				t.Errorf("extensions %+v, want none", tmpl.Cert.ExtraExtensions)
			}
		}},
		{desc: "duplicate extension", in: signers.Input{Request: withExt(ext(t, oidBasicConstraints, basicConstraints{}), ext(t, oidBasicConstraints, basicConstraints{}))}, wantReason: signers.ReasonErrorParseCSR},

		// Duration.
		{desc: "annotation wins over expirationSeconds", in: signers.Input{Request: basic, ExpirationSeconds: ptr[int32](3600), Annotations: dur("2h")}, check: wantDuration(2 * time.Hour)},
		{desc: "expirationSeconds without annotation", in: signers.Input{Request: basic, ExpirationSeconds: ptr[int32](3600)}, check: wantDuration(time.Hour)},
		{desc: "neither: 90 days", in: signers.Input{Request: basic}, check: wantDuration(90 * day)},
		{desc: "unparsable annotation", in: signers.Input{Request: basic, Annotations: dur("forever")}, wantReason: signers.ReasonErrorParseDuration},
		{desc: "unit typo", in: signers.Input{Request: basic, Annotations: dur("1hh")}, wantReason: signers.ReasonErrorParseDuration},
		{desc: "empty annotation is present, so parsed", in: signers.Input{Request: basic, ExpirationSeconds: ptr[int32](3600), Annotations: dur("")}, wantReason: signers.ReasonErrorParseDuration},
		{desc: "unparsable annotation wins over a good expirationSeconds", in: signers.Input{Request: basic, ExpirationSeconds: ptr[int32](3600), Annotations: dur("2 hours")}, wantReason: signers.ReasonErrorParseDuration},
		{desc: "overflowing annotation", in: signers.Input{Request: basic, Annotations: dur("99999999999h")}, wantReason: signers.ReasonErrorParseDuration},
		{desc: "annotation over 64 bytes", in: signers.Input{Request: basic, Annotations: dur(strings.Repeat("1", 100) + "h")}, wantReason: signers.ReasonErrorParseDuration},
		{desc: "9m59s", in: signers.Input{Request: basic, Annotations: dur("9m59s")}, wantReason: signers.ReasonInvalidDuration},
		{desc: "exactly 10m", in: signers.Input{Request: basic, Annotations: dur("10m")}, check: wantDuration(10 * time.Minute)},
		{desc: "negative annotation", in: signers.Input{Request: basic, Annotations: dur("-1h")}, wantReason: signers.ReasonInvalidDuration},
		{desc: "zero annotation", in: signers.Input{Request: basic, Annotations: dur("0s")}, wantReason: signers.ReasonInvalidDuration},
		{desc: "expirationSeconds 599", in: signers.Input{Request: basic, ExpirationSeconds: ptr[int32](599)}, wantReason: signers.ReasonInvalidDuration},
		{desc: "negative expirationSeconds", in: signers.Input{Request: basic, ExpirationSeconds: ptr[int32](-1)}, wantReason: signers.ReasonInvalidDuration},
		{desc: "duration is checked before the request", in: signers.Input{Request: []byte("junk"), Annotations: dur("forever")}, wantReason: signers.ReasonErrorParseDuration},
		{desc: "max-duration caps the default", in: signers.Input{Request: basic}, policy: signers.Policy{MaxDuration: day}, check: func(t *testing.T, tmpl *signers.Template) {
			wantDuration(day)(t, tmpl)
			if tmpl.RequestedDuration != 90*day {
				t.Errorf("RequestedDuration = %s", tmpl.RequestedDuration)
			}
		}},
		{desc: "max-duration caps an annotation", in: signers.Input{Request: basic, Annotations: dur("8760h")}, policy: signers.Policy{MaxDuration: 30 * day}, check: wantDuration(30 * day)},
		{desc: "max-duration leaves shorter requests alone", in: signers.Input{Request: basic, ExpirationSeconds: ptr[int32](3600)}, policy: signers.Policy{MaxDuration: day}, check: wantDuration(time.Hour)},
		{desc: "max-duration does not lift the minimum", in: signers.Input{Request: basic, Annotations: dur("5m")}, policy: signers.Policy{MaxDuration: day}, wantReason: signers.ReasonInvalidDuration},

		// isCA.
		{desc: "request-is-ca true", in: signers.Input{Request: basic, Annotations: isCA}, check: func(t *testing.T, tmpl *signers.Template) {
			if !tmpl.IsCA || !tmpl.Cert.IsCA || !tmpl.Cert.BasicConstraintsValid || tmpl.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Errorf("isCA %v/%v keyUsage %v", tmpl.IsCA, tmpl.Cert.IsCA, tmpl.Cert.KeyUsage)
			}
		}},
		{desc: "request-is-ca True is not true", in: signers.Input{Request: basic, Annotations: map[string]string{signers.AnnotationRequestIsCA: "True"}}, check: wantCA(false)},
		{desc: "request-is-ca yes is not true", in: signers.Input{Request: basic, Annotations: map[string]string{signers.AnnotationRequestIsCA: "yes"}}, check: wantCA(false)},
		{desc: "request-is-ca false", in: signers.Input{Request: basic, Annotations: map[string]string{signers.AnnotationRequestIsCA: "false"}}, check: wantCA(false)},
		{desc: "CSR says CA, no annotation", in: signers.Input{Request: withBC(true)}, wantReason: signers.ReasonIsCAMismatch},
		{desc: "annotation says CA, CSR says not", in: signers.Input{Request: withBC(false), Annotations: isCA}, wantReason: signers.ReasonIsCAMismatch},
		{desc: "CSR and annotation say CA", in: signers.Input{Request: withBC(true), Annotations: isCA}, check: wantCA(true)},
		{desc: "CSR and annotation say not CA", in: signers.Input{Request: withBC(false)}, check: wantCA(false)},
		{desc: "malformed basicConstraints", in: signers.Input{Request: withExt(pkix.Extension{Id: oidBasicConstraints, Value: []byte{0x04, 0x01, 0x00}})}, wantReason: signers.ReasonErrorParseCSR},

		// Usages.
		{desc: "unknown usage", in: signers.Input{Request: basic, Usages: []string{"digital signature", "flying"}}, wantReason: signers.ReasonUnknownKeyUsage},
		{desc: "usage with different case is unknown", in: signers.Input{Request: basic, Usages: []string{"Server Auth"}}, wantReason: signers.ReasonUnknownKeyUsage},
		{desc: "aliases and duplicates collapse, extended usages sorted", in: signers.Input{Request: basic,
			Usages: []string{"signing", "digital signature", "s/mime", "email protection", "client auth", "server auth", "client auth"}},
			check: wantUsages(x509.KeyUsageDigitalSignature, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection)},
		{desc: "encoded server auth, usages client auth", in: signers.Input{Request: withExt(ext(t, oidExtKeyUsage, []asn1.ObjectIdentifier{oidServerAuth})), Usages: []string{"digital signature", "client auth"}}, wantReason: signers.ReasonKeyUsageMismatch},
		{desc: "encoded server auth agrees", in: signers.Input{Request: withExt(ext(t, oidExtKeyUsage, []asn1.ObjectIdentifier{oidServerAuth})), Usages: []string{"digital signature", "server auth"}},
			check: wantUsages(x509.KeyUsageDigitalSignature, x509.ExtKeyUsageServerAuth)},
		{desc: "encoded extended usages in another order agree", in: signers.Input{Request: withExt(ext(t, oidExtKeyUsage, []asn1.ObjectIdentifier{oidClientAuth, oidServerAuth})), Usages: []string{"server auth", "client auth"}},
			check: wantUsages(0, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)},
		{desc: "encoded unknown extended usage", in: signers.Input{Request: withExt(ext(t, oidExtKeyUsage, []asn1.ObjectIdentifier{oidServerAuth, {1, 2, 3, 4}})), Usages: []string{"server auth"}}, wantReason: signers.ReasonKeyUsageMismatch},
		{desc: "encoded cert sign, default usages", in: signers.Input{Request: withExt(keyUsageExt(t, x509.KeyUsageCertSign))}, wantReason: signers.ReasonKeyUsageMismatch},
		{desc: "encoded key usage agrees with the default", in: signers.Input{Request: withExt(keyUsageExt(t, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment))},
			check: wantUsages(x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment)},
		{desc: "CA: encoded key usage with cert sign", in: signers.Input{Request: withExt(keyUsageExt(t, x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign)), Usages: []string{"digital signature"}, Annotations: isCA},
			check: wantUsages(x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign)},
		{desc: "CA: encoded key usage without cert sign", in: signers.Input{Request: withExt(keyUsageExt(t, x509.KeyUsageDigitalSignature)), Usages: []string{"digital signature"}, Annotations: isCA},
			check: wantUsages(x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign)},
		{desc: "not CA: encoded cert sign needs the usage", in: signers.Input{Request: withExt(keyUsageExt(t, x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign)), Usages: []string{"digital signature", "cert sign"}},
			check: wantUsages(x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign)},
		{desc: "malformed keyUsage", in: signers.Input{Request: withExt(pkix.Extension{Id: oidKeyUsage, Value: []byte{0x02, 0x01, 0x05}})}, wantReason: signers.ReasonErrorParseCSR},
		{desc: "malformed extKeyUsage", in: signers.Input{Request: withExt(pkix.Extension{Id: oidExtKeyUsage, Value: []byte{0x30, 0x03, 0x06, 0x01}})}, wantReason: signers.ReasonErrorParseCSR},

		// Validity (checkTemplate checks the window of every case).
		{desc: "a fraction of a second is dropped from the duration", in: signers.Input{Request: basic, Annotations: dur("10m0.9s")}, check: wantDuration(10 * time.Minute)},
		{desc: "cap-to-ca-expiry is passed to the signer", in: signers.Input{Request: basic}, policy: signers.Policy{CapToCAExpiry: true}, check: func(t *testing.T, tmpl *signers.Template) {
			if !tmpl.CapToCAExpiry {
				t.Error("template does not carry CapToCAExpiry")
			}
		}},
	}
	for _, kt := range []testpki.KeyType{testpki.RSA2048, testpki.ECDSAP384, testpki.ECDSAP521, testpki.Ed25519} {
		tests = append(tests, struct {
			desc       string
			in         signers.Input
			policy     signers.Policy
			wantReason string
			check      func(t *testing.T, tmpl *signers.Template)
		}{desc: string(kt) + " request", in: signers.Input{Request: signertest.CSR(t, signertest.Key(t, kt), &x509.CertificateRequest{Subject: pkix.Name{CommonName: string(kt)}})},
			check: func(t *testing.T, tmpl *signers.Template) {
				if !signers.PublicKeysEqual(signertest.Key(t, kt).Public(), tmpl.PublicKey) {
					t.Errorf("template public key is not the request's")
				}
			}})
	}

	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tmpl, err := signers.BuildTemplate(tt.in, tt.policy, now)
			if tt.wantReason != "" {
				if got := reasonOf(err); got != tt.wantReason {
					t.Fatalf("reason = %q (%v), want %q", got, err, tt.wantReason)
				}
				f := err.(*signers.Failure)
				if f.Message == "" || len(f.Message) > 512 {
					t.Errorf("message %q: want a short, non-empty message", f.Message)
				}
				t.Logf("%s: %s", f.Reason, f.Message)
				return
			}
			if err != nil {
				t.Fatalf("BuildTemplate: %v", err)
			}
			checkTemplate(t, tmpl, tt.policy, now)
			if tt.check != nil {
				tt.check(t, tmpl)
			}
		})
	}
	if len(tests) < 30 {
		t.Errorf("only %d cases", len(tests))
	}
}

// checkTemplate checks what holds for every template.
func checkTemplate(t *testing.T, tmpl *signers.Template, p signers.Policy, now time.Time) {
	t.Helper()
	c := tmpl.Cert
	if c.SerialNumber == nil || c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v: want positive, at most 128 bits", c.SerialNumber)
	}
	if len(c.SubjectKeyId) != 20 {
		t.Errorf("SubjectKeyId %x: want 20 bytes", c.SubjectKeyId)
	}
	if !c.BasicConstraintsValid || c.IsCA != tmpl.IsCA {
		t.Errorf("basic constraints valid=%v isCA=%v, template isCA=%v", c.BasicConstraintsValid, c.IsCA, tmpl.IsCA)
	}
	if !signers.PublicKeysEqual(tmpl.CSR.PublicKey, tmpl.PublicKey) || !signers.PublicKeysEqual(tmpl.CSR.PublicKey, c.PublicKey) {
		t.Errorf("public keys differ")
	}
	// cert-manager's window: from the signing second, exactly the duration.
	if start := now.Truncate(time.Second); !c.NotBefore.Equal(start) || !c.NotAfter.Equal(start.Add(tmpl.Duration)) {
		t.Errorf("validity %s to %s; want %s to +%s", c.NotBefore, c.NotAfter, start, tmpl.Duration)
	}
	if tmpl.CapToCAExpiry != p.CapToCAExpiry {
		t.Errorf("template CapToCAExpiry %v, policy %v", tmpl.CapToCAExpiry, p.CapToCAExpiry)
	}
	if !bytes.Equal(c.RawSubject, tmpl.CSR.RawSubject) {
		t.Errorf("subject not copied as encoded")
	}
}

func wantDuration(d time.Duration) func(*testing.T, *signers.Template) {
	return func(t *testing.T, tmpl *signers.Template) {
		t.Helper()
		if tmpl.Duration != d {
			t.Errorf("duration = %s, want %s", tmpl.Duration, d)
		}
	}
}

func wantCA(isCA bool) func(*testing.T, *signers.Template) {
	return func(t *testing.T, tmpl *signers.Template) {
		t.Helper()
		if tmpl.IsCA != isCA || tmpl.Cert.IsCA != isCA || (tmpl.Cert.KeyUsage&x509.KeyUsageCertSign != 0) != isCA {
			t.Errorf("isCA %v/%v keyUsage %v, want isCA %v", tmpl.IsCA, tmpl.Cert.IsCA, tmpl.Cert.KeyUsage, isCA)
		}
	}
}

func wantUsages(ku x509.KeyUsage, eku ...x509.ExtKeyUsage) func(*testing.T, *signers.Template) {
	return func(t *testing.T, tmpl *signers.Template) {
		t.Helper()
		if tmpl.Cert.KeyUsage != ku || !slices.Equal(tmpl.Cert.ExtKeyUsage, eku) {
			t.Errorf("usages %v %v, want %v %v", tmpl.Cert.KeyUsage, tmpl.Cert.ExtKeyUsage, ku, eku)
		}
	}
}

// bigRSARequest encodes by hand a request for an RSA key of the given size
// (generating one would take minutes); its signature is junk.
func bigRSARequest(t testing.TB, bits int) []byte {
	t.Helper()
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.SetBit(n, 0, 1)
	pub := x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: n, E: 65537})
	rsaAlg := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}, Parameters: asn1.NullRawValue}
	sha256WithRSA := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue}
	info := struct {
		Version   int
		Subject   asn1.RawValue
		PublicKey struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		Attributes []asn1.RawValue `asn1:"tag:0"`
	}{Subject: asn1.RawValue{FullBytes: mustMarshal(t, pkix.Name{CommonName: "big"}.ToRDNSequence())}}
	info.PublicKey.Algorithm = rsaAlg
	info.PublicKey.PublicKey = asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}
	der := mustMarshal(t, struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: mustMarshal(t, info)}, sha256WithRSA, asn1.BitString{Bytes: make([]byte, bits/8), BitLength: bits}})
	if _, err := x509.ParseCertificateRequest(der); err != nil {
		t.Fatalf("the hand-made request does not parse: %v", err)
	}
	return pemBlock("CERTIFICATE REQUEST", der)
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyUsagesFromStrings pins the mapping of every certificates.k8s.io
// usage string to kube-controller-manager's x509 bits.
func TestKeyUsagesFromStrings(t *testing.T) {
	tests := []struct {
		usage string
		ku    x509.KeyUsage
		eku   x509.ExtKeyUsage
	}{
		{"signing", x509.KeyUsageDigitalSignature, -1},
		{"digital signature", x509.KeyUsageDigitalSignature, -1},
		{"content commitment", x509.KeyUsageContentCommitment, -1},
		{"key encipherment", x509.KeyUsageKeyEncipherment, -1},
		{"key agreement", x509.KeyUsageKeyAgreement, -1},
		{"data encipherment", x509.KeyUsageDataEncipherment, -1},
		{"cert sign", x509.KeyUsageCertSign, -1},
		{"crl sign", x509.KeyUsageCRLSign, -1},
		{"encipher only", x509.KeyUsageEncipherOnly, -1},
		{"decipher only", x509.KeyUsageDecipherOnly, -1},
		{"any", 0, x509.ExtKeyUsageAny},
		{"server auth", 0, x509.ExtKeyUsageServerAuth},
		{"client auth", 0, x509.ExtKeyUsageClientAuth},
		{"code signing", 0, x509.ExtKeyUsageCodeSigning},
		{"email protection", 0, x509.ExtKeyUsageEmailProtection},
		{"s/mime", 0, x509.ExtKeyUsageEmailProtection},
		{"ipsec end system", 0, x509.ExtKeyUsageIPSECEndSystem},
		{"ipsec tunnel", 0, x509.ExtKeyUsageIPSECTunnel},
		{"ipsec user", 0, x509.ExtKeyUsageIPSECUser},
		{"timestamping", 0, x509.ExtKeyUsageTimeStamping},
		{"ocsp signing", 0, x509.ExtKeyUsageOCSPSigning},
		{"microsoft sgc", 0, x509.ExtKeyUsageMicrosoftServerGatedCrypto},
		{"netscape sgc", 0, x509.ExtKeyUsageNetscapeServerGatedCrypto},
	}
	for _, tt := range tests {
		ku, eku, f := signers.KeyUsagesFromStrings([]string{tt.usage})
		var wantEKU []x509.ExtKeyUsage
		if tt.eku >= 0 {
			wantEKU = []x509.ExtKeyUsage{tt.eku}
		}
		if f != nil || ku != tt.ku || !slices.Equal(eku, wantEKU) {
			t.Errorf("%q: got %v %v %v, want %v %v", tt.usage, ku, eku, f, tt.ku, wantEKU)
		}
	}
	if ku, eku, f := signers.KeyUsagesFromStrings(nil); f != nil || ku != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || eku != nil {
		t.Errorf("no usages: got %v %v %v, want digital signature + key encipherment", ku, eku, f)
	}
	if _, _, err := signers.KeyUsagesFromStrings([]string{""}); reasonOf(err) != signers.ReasonUnknownKeyUsage {
		t.Errorf("empty usage string: got %v, want %s", err, signers.ReasonUnknownKeyUsage)
	}
	// A long unknown usage is cut in the message.
	_, _, err := signers.KeyUsagesFromStrings([]string{strings.Repeat("z", 10000)})
	if reasonOf(err) != signers.ReasonUnknownKeyUsage || len(err.Error()) > 300 {
		t.Errorf("long unknown usage: %v", err)
	}
}
