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
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/signers/ca"
	"github.com/signet-dev/signet/pkg/signers/internal/signertest"
)

// The seed corpora live in test/fuzz/signers/<FuzzName>; testdata/fuzz in
// this package is a symbolic link to that directory, which is where go test
// reads seeds from and where go test -fuzz writes the inputs that fail.
// TestWriteFuzzCorpus regenerates the request seeds:
//
//	go test ./pkg/signers -run TestWriteFuzzCorpus -update-fuzz-corpus
var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the seed corpus files under test/fuzz/signers")

var knownReasons = []string{
	signers.ReasonErrorParseDuration, signers.ReasonInvalidDuration, signers.ReasonErrorParseCSR,
	signers.ReasonInvalidCSRSignature, signers.ReasonUnknownKeyUsage, signers.ReasonKeyUsageMismatch,
	signers.ReasonIsCAMismatch, signers.ReasonRequestTooLarge,
}

// buildTemplateSeed is one input of FuzzBuildTemplate.
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

func (s buildTemplateSeed) input() (signers.Input, signers.Policy) {
	in := signers.Input{Request: s.request, Annotations: map[string]string{}}
	if s.usages != "" {
		in.Usages = strings.Split(s.usages, "\n")
	}
	if s.hasExpiry {
		in.ExpirationSeconds = &s.expiration
	}
	if s.hasDuration {
		in.Annotations[signers.AnnotationRequestDuration] = s.duration
	}
	if s.isCA != "" {
		in.Annotations[signers.AnnotationRequestIsCA] = s.isCA
	}
	return in, signers.Policy{MaxDuration: time.Duration(s.maxDuration) * time.Second}
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
		in, p := s.input()
		tmpl, err := signers.BuildTemplate(in, p, now)
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
		if tmpl.Duration <= 0 || (p.MaxDuration > 0 && tmpl.Duration > p.MaxDuration) || (p.MaxDuration <= 0 && tmpl.Duration < signers.MinDuration) {
			t.Fatalf("duration %s with max %s", tmpl.Duration, p.MaxDuration)
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

func FuzzRequestedDuration(f *testing.F) {
	for _, d := range []string{"2160h", "1h", "10m", "9m59s", "", "forever", "-1h", "1h30m", ".5h", "99999999999h", "9223372036854775807ns", "1µs"} {
		f.Add(d, true, int32(0), false)
	}
	f.Add("", false, int32(3600), true)
	f.Add("", false, int32(599), true)
	f.Add("", false, int32(0), false)

	f.Fuzz(func(t *testing.T, annotation string, hasAnnotation bool, expiration int32, hasExpiry bool) {
		in := signers.Input{}
		if hasAnnotation {
			in.Annotations = map[string]string{signers.AnnotationRequestDuration: annotation}
		}
		if hasExpiry {
			in.ExpirationSeconds = &expiration
		}
		got, err := signers.RequestedDuration(in)

		// The model: cert-manager's rule, plus the length bound.
		var want time.Duration
		wantReason := ""
		switch {
		case hasAnnotation:
			d, perr := time.ParseDuration(annotation)
			if perr != nil || len(annotation) > 64 {
				wantReason = signers.ReasonErrorParseDuration
			}
			want = d
		case hasExpiry:
			want = time.Duration(expiration) * time.Second
		default:
			want = signers.DefaultDuration
		}
		if wantReason == "" && want < signers.MinDuration {
			wantReason = signers.ReasonInvalidDuration
		}

		if wantReason != "" {
			if reasonOf(err) != wantReason {
				t.Fatalf("RequestedDuration(%q, %v, %d, %v) = %s, %v; want %s", annotation, hasAnnotation, expiration, hasExpiry, got, err, wantReason)
			}
			if len(err.(*signers.Failure).Message) > 300 {
				t.Fatalf("message of %d bytes", len(err.(*signers.Failure).Message))
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("RequestedDuration(%q, %v, %d, %v) = %s, %v; want %s", annotation, hasAnnotation, expiration, hasExpiry, got, err, want)
		}
	})
}

// TestWriteFuzzCorpus writes the request seeds of FuzzBuildTemplate and the
// duration seeds of FuzzRequestedDuration in go test's corpus format.
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
	for _, d := range []struct {
		name, annotation string
		hasAnnotation    bool
		expiration       int32
		hasExpiry        bool
	}{
		{"90-days", "2160h", true, 0, false},
		{"compound", "1h30m15s", true, 0, false},
		{"annotation-over-expiration", "2h", true, 3600, true},
		{"minimum", "10m", true, 0, false},
		{"under-minimum", "9m59.999s", true, 0, false},
		{"unit-typo", "1hh", true, 0, false},
		{"overflow", "2562048h", true, 0, false},
		{"expiration-seconds", "", false, 86400, true},
		{"expiration-under-minimum", "", false, 599, true},
	} {
		write("FuzzRequestedDuration", d.name, d.annotation, d.hasAnnotation, d.expiration, d.hasExpiry)
	}
}

// TestSeedCorporaAreReached: plain go test (make test) runs the seed files
// of each fuzz target only through the testdata/fuzz link to test/fuzz; a
// checkout that lost the link would run fewer seeds without a word.
func TestSeedCorporaAreReached(t *testing.T) {
	for _, target := range []string{"FuzzBuildTemplate", "FuzzRequestedDuration"} {
		dir := filepath.Join("testdata", "fuzz", target)
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Errorf("no seed files for %s in %s (%v): the link testdata/fuzz -> ../../test/fuzz/signers is missing or broken", target, dir, err)
		}
	}
}
