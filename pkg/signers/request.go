package signers

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Annotations a requester sets on a CSR, as cert-manager defines them.
const (
	// AnnotationRequestDuration asks for a certificate lifetime, as a Go duration ("2160h").
	AnnotationRequestDuration = "experimental.cert-manager.io/request-duration"
	// AnnotationRequestIsCA asks for a CA certificate when it is exactly "true".
	AnnotationRequestIsCA = "experimental.cert-manager.io/request-is-ca"
)

// Durations of the policy.
const (
	// DefaultDuration is the lifetime when the request asks for none
	// (cert-manager's default certificate duration).
	DefaultDuration = 90 * 24 * time.Hour
	// MinDuration is the shortest lifetime a request may ask for; it is also
	// the minimum of the CSR API's spec.expirationSeconds.
	MinDuration = 10 * time.Minute
)

// Limits on what a request may carry. A real request is a few hundred bytes
// to a few kilobytes; these bound the work and memory one hostile request
// can cost.
const (
	// MaxRequestBytes bounds the PEM request.
	MaxRequestBytes = 64 << 10
	// MaxSubjectBytes bounds the DER-encoded subject.
	MaxSubjectBytes = 4 << 10
	// MaxSANs bounds the number of subject alternative names of all kinds.
	MaxSANs = 1000
	// MaxRSAKeyBits bounds the size of an RSA public key in a request.
	MaxRSAKeyBits = 8192
	// maxDurationAnnotationBytes bounds the request-duration annotation;
	// any real Go duration is far shorter.
	maxDurationAnnotationBytes = 64
)

// Input is what a request to sign carries, independent of where it came from.
type Input struct {
	Request           []byte            // PEM "CERTIFICATE REQUEST" (PKCS#10), as in CSR spec.request
	Usages            []string          // certificates.k8s.io/v1 KeyUsage strings (spec.usages)
	ExpirationSeconds *int32            // spec.expirationSeconds
	Annotations       map[string]string // the CSR's annotations (request-duration, request-is-ca)
}

// Policy is signet-wide configuration.
type Policy struct {
	// MaxDuration caps every certificate's lifetime: a longer request is
	// shortened to it, not refused. Zero or negative: no cap (--max-duration).
	MaxDuration time.Duration
	// CapToCAExpiry ends a certificate no later than its CA certificate
	// (kube-controller-manager's rule, --cap-to-ca-expiry). Off, a certificate
	// gets its full duration even past the CA's NotAfter, as cert-manager
	// issues it: a CA renewed with the same key keeps it valid.
	CapToCAExpiry bool
}

// DefaultGrant is the lifetime a request that asks for none gets:
// DefaultDuration, or MaxDuration if that is shorter. A CA that expires
// sooner cannot cover such a certificate.
func (p Policy) DefaultGrant() time.Duration {
	if p.MaxDuration > 0 && p.MaxDuration < DefaultDuration {
		return p.MaxDuration
	}
	return DefaultDuration
}

// Template is a verified request turned into what to sign.
type Template struct {
	// Cert is complete but for the issuer: serial, subject, SANs, key usages,
	// basic constraints, SubjectKeyId and validity. The signers fill in the
	// issuer's part; a CA signer shortens the validity to its CA's only
	// with CapToCAExpiry.
	Cert      *x509.Certificate
	PublicKey crypto.PublicKey
	CSR       *x509.CertificateRequest
	// Duration is the lifetime granted: requested, or capped by Policy.MaxDuration.
	// Cert's NotAfter - NotBefore is exactly Duration, in whole seconds.
	Duration time.Duration
	// RequestedDuration is what the request asked for (or the default).
	RequestedDuration time.Duration
	IsCA              bool
	// CapToCAExpiry is Policy.CapToCAExpiry: the CA signer may end the
	// certificate at its CA's NotAfter, sooner than Duration.
	CapToCAExpiry bool
}

// BuildTemplate checks a request against signet's policy and turns it into a
// certificate template. Every error it returns is a *Failure.
//
// The rules, in the order they are checked (cert-manager checks the duration
// before anything else, so signet does too):
//   - duration: the request-duration annotation if present (a Go duration),
//     else spec.expirationSeconds, else DefaultDuration; at least MinDuration;
//     then capped at Policy.MaxDuration;
//   - the request: one PEM "CERTIFICATE REQUEST" block and nothing after it
//     (text before it, as `openssl req -text` prints, is allowed), within the
//     size limits, with a valid self-signature;
//   - usages: spec.usages mapped as Kubernetes maps them, or digital
//     signature + key encipherment when empty; an unknown usage fails;
//   - isCA: only the request-is-ca annotation, and only "true", makes a CA
//     certificate (cert-manager compares with "true" the same way). A CA
//     certificate also gets the keyCertSign usage, as cert-manager gives it
//     to CA Certificates; cert-manager's CSR controller does not add it,
//     leaving a CA certificate that cannot verify the certificates it signs
//     unless the requester listed "cert sign";
//   - the request's own BasicConstraints, KeyUsage and ExtKeyUsage
//     extensions, when present, must agree with the above (for a CA, the
//     encoded KeyUsage may include keyCertSign or not);
//   - subject and SANs are copied as encoded; other extensions the request
//     asks for are not;
//   - validity: NotBefore is now, NotAfter is NotBefore + duration, both in
//     whole seconds (what X.509 encodes), so NotAfter - NotBefore is exactly
//     the duration, as cert-manager issues it.
func BuildTemplate(in Input, p Policy, now time.Time) (*Template, error) {
	requested, err := RequestedDuration(in)
	if err != nil {
		return nil, err
	}
	duration := requested
	if p.MaxDuration > 0 && duration > p.MaxDuration {
		duration = p.MaxDuration
	}
	// X.509 encodes whole seconds: truncate before adding so that the
	// encoded window is the duration itself, not a second less.
	duration = duration.Truncate(time.Second)
	// No backdating for clock skew. cert-manager starts a certificate at the
	// signing time; backdating with an exact window (as kube-controller-manager
	// does for long certificates) would move NotAfter in by as much, taking
	// half the life of a 10-minute certificate at 5 minutes. Skew is the
	// clocks' problem: /livez's clockHealth watches signet's own.
	notBefore := now.Truncate(time.Second)

	csr, f := parseRequest(in.Request)
	if f != nil {
		return nil, f
	}
	if f := checkLimits(csr); f != nil {
		return nil, f
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, failf(ReasonInvalidCSRSignature, fmt.Sprintf("the certificate request's signature does not verify: %v", err))
	}

	ku, eku, err := KeyUsagesFromStrings(in.Usages)
	if err != nil {
		return nil, err
	}
	isCA := in.Annotations[AnnotationRequestIsCA] == "true"
	if isCA {
		ku |= x509.KeyUsageCertSign
	}
	ext, f := parseRequestedExtensions(csr)
	if f != nil {
		return nil, f
	}
	if f := ext.agree(isCA, ku, eku); f != nil {
		return nil, f
	}

	serial, err := newSerial()
	if err != nil {
		return nil, failf(ReasonErrorGenerating, fmt.Sprintf("generating a serial number: %v", err))
	}
	skid, err := subjectKeyID(csr.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, failf(ReasonErrorParseCSR, "the certificate request's public key: "+derError(err))
	}

	cert := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            csr.RawSubject,
		Subject:               csr.Subject,
		PublicKeyAlgorithm:    csr.PublicKeyAlgorithm,
		PublicKey:             csr.PublicKey,
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(duration),
		KeyUsage:              ku,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		SubjectKeyId:          skid,
		DNSNames:              csr.DNSNames,
		EmailAddresses:        csr.EmailAddresses,
		IPAddresses:           csr.IPAddresses,
		URIs:                  csr.URIs,
	}
	if ext.san != nil {
		// The SAN extension goes into the certificate as the request encoded
		// it, names of every kind included (cert-manager does the same);
		// RFC 5280 4.2.1.6 wants it critical when the subject is empty.
		cert.ExtraExtensions = []pkix.Extension{{
			Id:       oidSubjectAltName,
			Critical: isEmptySubject(csr.RawSubject),
			Value:    ext.san,
		}}
	}
	return &Template{
		Cert:              cert,
		PublicKey:         csr.PublicKey,
		CSR:               csr,
		Duration:          duration,
		RequestedDuration: requested,
		IsCA:              isCA,
		CapToCAExpiry:     p.CapToCAExpiry,
	}, nil
}

// RequestedDuration is the lifetime a request asks for: the request-duration
// annotation if present, else spec.expirationSeconds, else DefaultDuration.
// An annotation that is present but not a Go duration (empty included) is
// ErrorParseDuration, as in cert-manager; anything under MinDuration is
// InvalidDuration. Errors are *Failure.
func RequestedDuration(in Input) (time.Duration, error) {
	var d time.Duration
	if s, ok := in.Annotations[AnnotationRequestDuration]; ok {
		if len(s) > maxDurationAnnotationBytes {
			return 0, failf(ReasonErrorParseDuration, fmt.Sprintf("annotation %s is longer than %d bytes", AnnotationRequestDuration, maxDurationAnnotationBytes))
		}
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, failf(ReasonErrorParseDuration, fmt.Sprintf("annotation %s: %s is not a duration such as \"2160h\" or \"90m\"", AnnotationRequestDuration, echo(s)))
		}
	} else if in.ExpirationSeconds != nil {
		d = time.Duration(*in.ExpirationSeconds) * time.Second
	} else {
		return DefaultDuration, nil
	}
	if d < MinDuration {
		return 0, failf(ReasonInvalidDuration, fmt.Sprintf("requested duration %s is shorter than the minimum %s", d, MinDuration))
	}
	return d, nil
}

// parseRequest decodes the PEM and parses the PKCS#10 request in it.
func parseRequest(data []byte) (*x509.CertificateRequest, *Failure) {
	if len(data) > MaxRequestBytes {
		return nil, failf(ReasonRequestTooLarge, fmt.Sprintf("the certificate request is %d bytes, more than the limit of %d", len(data), MaxRequestBytes))
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, failf(ReasonErrorParseCSR, "the request holds no PEM block; want one \"CERTIFICATE REQUEST\"")
	}
	if block.Type != "CERTIFICATE REQUEST" {
		return nil, failf(ReasonErrorParseCSR, fmt.Sprintf("the request holds a PEM %s block; want \"CERTIFICATE REQUEST\"", echo(block.Type)))
	}
	if len(block.Headers) > 0 {
		return nil, failf(ReasonErrorParseCSR, "the PEM \"CERTIFICATE REQUEST\" block has headers; want none")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, failf(ReasonErrorParseCSR, "the request has data after its PEM \"CERTIFICATE REQUEST\" block; want exactly one block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, failf(ReasonErrorParseCSR, "parsing the PKCS#10 certificate request: "+derError(err))
	}
	return csr, nil
}

func checkLimits(csr *x509.CertificateRequest) *Failure {
	if n := len(csr.RawSubject); n > MaxSubjectBytes {
		return failf(ReasonRequestTooLarge, fmt.Sprintf("the subject is %d bytes encoded, more than the limit of %d", n, MaxSubjectBytes))
	}
	if k, ok := csr.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() > MaxRSAKeyBits {
		return failf(ReasonRequestTooLarge, fmt.Sprintf("the RSA key has %d bits, more than the limit of %d", k.N.BitLen(), MaxRSAKeyBits))
	}
	// The SAN count is checked when the SAN extension is walked.
	return nil
}

// serialLimit is 2^128: serials are 128 random bits (RFC 5280 asks for at
// most 20 octets; CA/Browser Forum for at least 64 random bits).
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

func newSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// KeyUsagesFromStrings maps certificates.k8s.io/v1 usage strings to x509 key
// usages exactly as kube-controller-manager's signer does ("signing" and
// "digital signature" are the same bit, "s/mime" is "email protection";
// extended usages come out de-duplicated, in x509.ExtKeyUsage order). No
// usages means digital signature + key encipherment, the CSR API's default.
// An unknown usage is an UnknownKeyUsage *Failure.
func KeyUsagesFromStrings(usages []string) (x509.KeyUsage, []x509.ExtKeyUsage, error) {
	if len(usages) == 0 {
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, nil, nil
	}
	var (
		ku      x509.KeyUsage
		eku     []x509.ExtKeyUsage
		unknown []string
	)
	for _, u := range usages {
		if bit, ok := keyUsages[u]; ok {
			ku |= bit
		} else if e, ok := extKeyUsages[u]; ok {
			if !slices.Contains(eku, e) {
				eku = append(eku, e)
			}
		} else if len(unknown) < 5 {
			unknown = append(unknown, echo(u))
		}
	}
	if len(unknown) > 0 {
		return 0, nil, failf(ReasonUnknownKeyUsage, fmt.Sprintf("unknown usages %s; usages must be certificates.k8s.io key usages such as \"digital signature\" or \"client auth\"", strings.Join(unknown, ", ")))
	}
	slices.Sort(eku)
	return ku, eku, nil
}
