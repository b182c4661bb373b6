package signers_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/ca"
	"github.com/signet-dev/signet/pkg/signers/internal/signertest"
	"github.com/signet-dev/signet/pkg/wire"
)

// The seed corpora live in test/fuzz/signers/<FuzzName>; testdata/fuzz in
// this package is a symbolic link to that directory, which is where go test
// reads seeds from and where go test -fuzz writes the inputs that fail.
// TestWriteFuzzCorpus regenerates the request seeds:
//
//	go test ./pkg/signers -run TestWriteFuzzCorpus -update-fuzz-corpus
var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the seed corpus files under test/fuzz/signers")

var knownReasons = []string{
	signers.ReasonErrorParseCSR, signers.ReasonInvalidCSRSignature, signers.ReasonUnknownKeyUsage,
	signers.ReasonKeyUsageMismatch, signers.ReasonIsCAMismatch, signers.ReasonRequestTooLarge,
}

// buildTemplateSeed is one input of FuzzBuildTemplate: what a CSR carries
// (its annotations as strings), read into an Input as the CSR edge and the
// pipeline read it.
type buildTemplateSeed struct {
	name        string
	request     []byte
	usages      string // newline-separated spec.usages
	expiration  int32
	hasExpiry   bool
	duration    string
	hasDuration bool
	isCA        string
	maxDuration int64 // Policy.MaxDuration in seconds
}

func (s buildTemplateSeed) args() []any {
	return []any{s.request, s.usages, s.expiration, s.hasExpiry, s.duration, s.hasDuration, s.isCA, s.maxDuration}
}

// input is the seed as BuildTemplate gets it; ok is false for a lifetime
// the pipeline refuses before BuildTemplate (FuzzRequestedDuration's ground).
func (s buildTemplateSeed) input() (in signers.Input, maxDuration time.Duration, ok bool) {
	annotations := map[string]string{}
	if s.hasDuration {
		annotations[wire.AnnotationRequestDuration] = s.duration
	}
	if s.isCA != "" {
		annotations[wire.AnnotationRequestIsCA] = s.isCA
	}
	var expiry *int32
	if s.hasExpiry {
		expiry = &s.expiration
	}
	asked, err := wire.ParseRequestAnnotations(annotations, expiry)
	if err != nil {
		return in, 0, false
	}
	maxDuration = time.Duration(s.maxDuration) * time.Second
	lifetime, failed := issuance.Policy{MaxDuration: maxDuration}.Lifetime(asked.Duration)
	if failed != nil {
		return in, 0, false
	}
	in = signers.Input{Request: s.request, IsCA: asked.IsCA, Duration: lifetime}
	if s.usages != "" {
		in.Usages = strings.Split(s.usages, "\n")
	}
	return in, maxDuration, true
}

// requestSeeds are the checked-in seeds: requests of every key type, and
// the shapes of the bad cases in TestBuildTemplate.
func requestSeeds(t testing.TB) []buildTemplateSeed {
	var seeds []buildTemplateSeed
	full := &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "fuzz", Organization: []string{"signet"}, Country: []string{"NL"}},
		DNSNames:       []string{"fuzz.example.com", "*.fuzz.example.com"},
		IPAddresses:    []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")},
		URIs:           []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/fuzz/sa/default"}},
		EmailAddresses: []string{"fuzz@example.com"},
	}
	for _, kt := range signertest.KeyTypes {
		seeds = append(seeds, buildTemplateSeed{name: "valid-" + strings.ToLower(string(kt)), request: signertest.CSR(t, signertest.Key(t, kt), full),
			usages: "digital signature\nkey encipherment\nserver auth\nclient auth", duration: "2160h", hasDuration: true})
	}
	key := signertest.Key(t, testpki.ECDSAP256)
	csr := func(tmpl *x509.CertificateRequest) []byte { return signertest.CSR(t, key, tmpl) }
	der := signertest.CSRDER(t, key, full)
	tampered := slices.Clone(der)
	tampered[len(tampered)-3] ^= 0xff
	ekuServer := ext(t, oidExtKeyUsage, []asn1.ObjectIdentifier{oidServerAuth})
	var many []string
	for i := 0; i < 1001; i++ {
		many = append(many, fmt.Sprintf("h%d.x", i))
	}
	upn, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: mustMarshal(t, struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue
	}{asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: mustMarshal(t, "u@example.com")}})}})
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds,
		buildTemplateSeed{name: "expiration-seconds", request: csr(full), expiration: 3600, hasExpiry: true},
		buildTemplateSeed{name: "max-duration", request: csr(full), maxDuration: 86400},
		buildTemplateSeed{name: "bad-signature", request: pemBlock("CERTIFICATE REQUEST", tampered)},
		buildTemplateSeed{name: "trailing-der", request: pemBlock("CERTIFICATE REQUEST", append(slices.Clone(der), 0, 0))},
		buildTemplateSeed{name: "trailing-pem", request: append(pemBlock("CERTIFICATE REQUEST", der), "junk"...)},
		buildTemplateSeed{name: "wrong-pem-type", request: pemBlock("CERTIFICATE", der)},
		buildTemplateSeed{name: "ca-annotation", request: csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "ca"}}), isCA: "true", usages: "cert sign\ncrl sign"},
		buildTemplateSeed{name: "ca-extension-without-annotation", request: csr(&x509.CertificateRequest{ExtraExtensions: []pkix.Extension{ext(t, oidBasicConstraints, basicConstraints{true})}})},
		buildTemplateSeed{name: "ca-extension-and-annotation", request: csr(&x509.CertificateRequest{ExtraExtensions: []pkix.Extension{
			ext(t, oidBasicConstraints, basicConstraints{true}), keyUsageExt(t, x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign)}}), isCA: "true", usages: "digital signature"},
		buildTemplateSeed{name: "eku-mismatch", request: csr(&x509.CertificateRequest{ExtraExtensions: []pkix.Extension{ekuServer}}), usages: "client auth"},
		buildTemplateSeed{name: "ku-mismatch", request: csr(&x509.CertificateRequest{ExtraExtensions: []pkix.Extension{keyUsageExt(t, x509.KeyUsageCertSign)}})},
		buildTemplateSeed{name: "unknown-usage", request: csr(full), usages: "digital signature\nflying"},
		buildTemplateSeed{name: "too-many-sans", request: csr(&x509.CertificateRequest{DNSNames: many})},
		buildTemplateSeed{name: "large-subject", request: csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: strings.Repeat("x", 5000)}})},
		buildTemplateSeed{name: "rsa-8200", request: bigRSARequest(t, 8200)},
		buildTemplateSeed{name: "othername-san", request: csr(&x509.CertificateRequest{ExtraExtensions: []pkix.Extension{{Id: oidSubjectAltName, Value: upn}}})},
		buildTemplateSeed{name: "empty-subject", request: csr(&x509.CertificateRequest{DNSNames: []string{"only.example.com"}})},
		buildTemplateSeed{name: "short-duration", request: csr(full), duration: "9m59s", hasDuration: true},
		buildTemplateSeed{name: "bad-duration", request: csr(full), duration: "forever", hasDuration: true},
	)
	return seeds
}

func FuzzBuildTemplate(f *testing.F) {
	// Cheap shapes; the checked-in corpus holds real requests.
	for _, s := range []buildTemplateSeed{
		{request: nil},
		{request: []byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n")},
		{request: []byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"), usages: "any", isCA: "true"},
		{request: []byte("not pem"), duration: "1h", hasDuration: true},
	} {
		f.Add(s.request, s.usages, s.expiration, s.hasExpiry, s.duration, s.hasDuration, s.isCA, s.maxDuration)
	}
	root := signertest.CA(f, testpki.ECDSAP256)
	signer := ca.New(signertest.IssuerCA(f, root), &ca.Config{CRLDistributionPoints: []string{"http://crl.example.com"}})
	now := time.Now()

	f.Fuzz(func(t *testing.T, request []byte, usages string, expiration int32, hasExpiry bool, duration string, hasDuration bool, isCA string, maxDuration int64) {
		s := buildTemplateSeed{request: request, usages: usages, expiration: expiration, hasExpiry: hasExpiry,
			duration: duration, hasDuration: hasDuration, isCA: isCA, maxDuration: maxDuration}
		in, maxD, ok := s.input()
		if !ok {
			return
		}
		tmpl, err := signers.BuildTemplate(in, signers.Policy{}, now)
		if err != nil {
			var f *signers.Failure
			if !errors.As(err, &f) {
				t.Fatalf("BuildTemplate returned a non-Failure error: %v", err)
			}
			if !slices.Contains(knownReasons, f.Reason) || f.Message == "" || len(f.Message) > 1024 {
				t.Fatalf("Failure %q with a %d-byte message: %q", f.Reason, len(f.Message), f.Message)
			}
			return
		}

		// What BuildTemplate lets through is within the limits...
		if len(request) > signers.MaxRequestBytes || len(tmpl.CSR.RawSubject) > signers.MaxSubjectBytes {
			t.Fatalf("accepted a %d-byte request with a %d-byte subject", len(request), len(tmpl.CSR.RawSubject))
		}
		c := tmpl.Cert
		if n := len(c.DNSNames) + len(c.IPAddresses) + len(c.EmailAddresses) + len(c.URIs); n > signers.MaxSANs {
			t.Fatalf("accepted %d SANs", n)
		}
		if err := tmpl.CSR.CheckSignature(); err != nil {
			t.Fatalf("accepted a request whose signature does not verify: %v", err)
		}
		if tmpl.Duration != in.Duration || (maxD > 0 && tmpl.Duration > maxD) || (maxD <= 0 && tmpl.Duration < wire.MinDuration) {
			t.Fatalf("duration %s for %s with max %s", tmpl.Duration, in.Duration, maxD)
		}
		if c.IsCA != (isCA == "true") {
			t.Fatalf("isCA %v from annotation %q", c.IsCA, isCA)
		}

		// ...and can be signed into a certificate that parses and verifies.
		res, err := signer.Sign(tmpl, now)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		block, _ := pem.Decode(res.CertificatePEM)
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("the signed certificate does not parse: %v", err)
		}
		if err := leaf.CheckSignatureFrom(root.Cert); err != nil {
			t.Fatalf("the signed certificate does not verify: %v", err)
		}
		if !signers.PublicKeysEqual(leaf.PublicKey, tmpl.PublicKey) || leaf.IsCA != c.IsCA || leaf.KeyUsage != c.KeyUsage ||
			!slices.Equal(leaf.ExtKeyUsage, c.ExtKeyUsage) || !slices.Equal(leaf.DNSNames, c.DNSNames) || len(leaf.IPAddresses) != len(c.IPAddresses) {
			t.Fatalf("the signed certificate is not the template")
		}
	})
}

// TestWriteFuzzCorpus writes the request seeds of FuzzBuildTemplate in go
// test's corpus format.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateFuzzCorpus {
		t.Skip("run with -update-fuzz-corpus to rewrite test/fuzz/signers")
	}
	dir := filepath.Join("..", "..", "test", "fuzz", "signers")
	write := func(fuzzer, name string, args ...any) {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&b, "string(%q)\n", v)
			default:
				fmt.Fprintf(&b, "%T(%v)\n", v, v)
			}
		}
		p := filepath.Join(dir, fuzzer, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range requestSeeds(t) {
		write("FuzzBuildTemplate", s.name, s.args()...)
	}
}

// TestSeedCorporaAreReached: plain go test (make test) runs the seed files
// of each fuzz target only through the testdata/fuzz link to test/fuzz; a
// checkout that lost the link would run fewer seeds without a word.
func TestSeedCorporaAreReached(t *testing.T) {
	for _, target := range []string{"FuzzBuildTemplate"} {
		dir := filepath.Join("testdata", "fuzz", target)
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Errorf("no seed files for %s in %s (%v): the link testdata/fuzz -> ../../test/fuzz/signers is missing or broken", target, dir, err)
		}
	}
}
