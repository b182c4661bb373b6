package signers

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
)

// Extension OIDs (RFC 5280 4.2.1).
var (
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
)

// keyUsages and extKeyUsages are kube-controller-manager's mapping of the
// CSR API's usage strings (pkg/controller/certificates/authority/policies.go).
var keyUsages = map[string]x509.KeyUsage{
	string(certificatesv1.UsageSigning):           x509.KeyUsageDigitalSignature,
	string(certificatesv1.UsageDigitalSignature):  x509.KeyUsageDigitalSignature,
	string(certificatesv1.UsageContentCommitment): x509.KeyUsageContentCommitment,
	string(certificatesv1.UsageKeyEncipherment):   x509.KeyUsageKeyEncipherment,
	string(certificatesv1.UsageKeyAgreement):      x509.KeyUsageKeyAgreement,
	string(certificatesv1.UsageDataEncipherment):  x509.KeyUsageDataEncipherment,
	string(certificatesv1.UsageCertSign):          x509.KeyUsageCertSign,
	string(certificatesv1.UsageCRLSign):           x509.KeyUsageCRLSign,
	string(certificatesv1.UsageEncipherOnly):      x509.KeyUsageEncipherOnly,
	string(certificatesv1.UsageDecipherOnly):      x509.KeyUsageDecipherOnly,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	string(certificatesv1.UsageAny):             x509.ExtKeyUsageAny,
	string(certificatesv1.UsageServerAuth):      x509.ExtKeyUsageServerAuth,
	string(certificatesv1.UsageClientAuth):      x509.ExtKeyUsageClientAuth,
	string(certificatesv1.UsageCodeSigning):     x509.ExtKeyUsageCodeSigning,
	string(certificatesv1.UsageEmailProtection): x509.ExtKeyUsageEmailProtection,
	string(certificatesv1.UsageSMIME):           x509.ExtKeyUsageEmailProtection,
	string(certificatesv1.UsageIPsecEndSystem):  x509.ExtKeyUsageIPSECEndSystem,
	string(certificatesv1.UsageIPsecTunnel):     x509.ExtKeyUsageIPSECTunnel,
	string(certificatesv1.UsageIPsecUser):       x509.ExtKeyUsageIPSECUser,
	string(certificatesv1.UsageTimestamping):    x509.ExtKeyUsageTimeStamping,
	string(certificatesv1.UsageOCSPSigning):     x509.ExtKeyUsageOCSPSigning,
	string(certificatesv1.UsageMicrosoftSGC):    x509.ExtKeyUsageMicrosoftServerGatedCrypto,
	string(certificatesv1.UsageNetscapeSGC):     x509.ExtKeyUsageNetscapeServerGatedCrypto,
}

// extKeyUsageOIDs are the OIDs of the extended usages the CSR API can name
// (RFC 5280 4.2.1.12 and the vendor arcs); crypto/x509 does not export its table.
var extKeyUsageOIDs = []struct {
	oid asn1.ObjectIdentifier
	eku x509.ExtKeyUsage
}{
	{asn1.ObjectIdentifier{2, 5, 29, 37, 0}, x509.ExtKeyUsageAny},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}, x509.ExtKeyUsageServerAuth},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}, x509.ExtKeyUsageClientAuth},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}, x509.ExtKeyUsageCodeSigning},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4}, x509.ExtKeyUsageEmailProtection},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 5}, x509.ExtKeyUsageIPSECEndSystem},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 6}, x509.ExtKeyUsageIPSECTunnel},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 7}, x509.ExtKeyUsageIPSECUser},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}, x509.ExtKeyUsageTimeStamping},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 9}, x509.ExtKeyUsageOCSPSigning},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 10, 3, 3}, x509.ExtKeyUsageMicrosoftServerGatedCrypto},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 113730, 4, 1}, x509.ExtKeyUsageNetscapeServerGatedCrypto},
}

// requestedExtensions are the extensions of a request that signet reads.
type requestedExtensions struct {
	hasBasicConstraints bool
	isCA                bool

	hasKeyUsage bool
	keyUsage    x509.KeyUsage

	hasExtKeyUsage bool
	extKeyUsage    []x509.ExtKeyUsage
	unknownEKU     []asn1.ObjectIdentifier

	// san is the SubjectAltName extension's value, nil if absent or empty.
	san []byte
}

// parseRequestedExtensions reads the request's BasicConstraints, KeyUsage,
// ExtKeyUsage and SubjectAltName extensions. crypto/x509 has already refused
// duplicates.
func parseRequestedExtensions(csr *x509.CertificateRequest) (requestedExtensions, *Failure) {
	var r requestedExtensions
	for _, e := range csr.Extensions {
		switch {
		case e.Id.Equal(oidBasicConstraints):
			var bc struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			if err := unmarshalAll(e.Value, &bc); err != nil {
				return r, failf(ReasonErrorParseCSR, "the request's basicConstraints extension: "+derError(err))
			}
			r.hasBasicConstraints, r.isCA = true, bc.IsCA
		case e.Id.Equal(oidKeyUsage):
			var bits asn1.BitString
			if err := unmarshalAll(e.Value, &bits); err != nil {
				return r, failf(ReasonErrorParseCSR, "the request's keyUsage extension: "+derError(err))
			}
			r.hasKeyUsage = true
			for i := 0; i < 9; i++ { // RFC 5280 defines bits 0 (digitalSignature) to 8 (decipherOnly)
				if bits.At(i) != 0 {
					r.keyUsage |= 1 << i
				}
			}
		case e.Id.Equal(oidExtKeyUsage):
			var oids []asn1.ObjectIdentifier
			if err := unmarshalAll(e.Value, &oids); err != nil {
				return r, failf(ReasonErrorParseCSR, "the request's extKeyUsage extension: "+derError(err))
			}
			r.hasExtKeyUsage = true
			for _, oid := range oids {
				if eku, ok := extKeyUsageFromOID(oid); ok {
					if !slices.Contains(r.extKeyUsage, eku) {
						r.extKeyUsage = append(r.extKeyUsage, eku)
					}
				} else if len(r.unknownEKU) < 5 {
					r.unknownEKU = append(r.unknownEKU, oid)
				}
			}
			slices.Sort(r.extKeyUsage)
		case e.Id.Equal(oidSubjectAltName):
			n, err := countGeneralNames(e.Value)
			if err != nil {
				return r, failf(ReasonErrorParseCSR, "the request's subjectAltName extension: "+derError(err))
			}
			if n > MaxSANs {
				return r, failf(ReasonRequestTooLarge, fmt.Sprintf("the request has %d or more subject alternative names, more than the limit of %d", n, MaxSANs))
			}
			if n > 0 {
				r.san = e.Value
			}
		}
	}
	return r, nil
}

// agree checks the encoded extensions against the usages and isCA the
// request was given. ku already includes keyCertSign for a CA; the encoded
// KeyUsage of a CA request may or may not have it.
func (r requestedExtensions) agree(isCA bool, ku x509.KeyUsage, eku []x509.ExtKeyUsage) *Failure {
	if r.hasBasicConstraints && r.isCA != isCA {
		if r.isCA {
			return failf(ReasonIsCAMismatch, "the request encodes basicConstraints CA:TRUE but does not ask for a CA certificate (request-is-ca annotation, or isCA)")
		}
		return failf(ReasonIsCAMismatch, "the request encodes basicConstraints CA:FALSE but asks for a CA certificate (request-is-ca annotation, or isCA)")
	}
	if r.hasKeyUsage && r.keyUsage != ku && !(isCA && r.keyUsage|x509.KeyUsageCertSign == ku) {
		return failf(ReasonKeyUsageMismatch, fmt.Sprintf("the request encodes key usages [%s] but spec.usages grant [%s]",
			keyUsageNames(r.keyUsage), keyUsageNames(ku)))
	}
	if r.hasExtKeyUsage && (len(r.unknownEKU) > 0 || !slices.Equal(r.extKeyUsage, eku)) {
		encoded := extKeyUsageNames(r.extKeyUsage)
		for _, oid := range r.unknownEKU {
			encoded = append(encoded, oid.String())
		}
		return failf(ReasonKeyUsageMismatch, fmt.Sprintf("the request encodes extended key usages [%s] but spec.usages grant [%s]",
			strings.Join(encoded, ", "), strings.Join(extKeyUsageNames(eku), ", ")))
	}
	return nil
}

// derError words an encoding/asn1 error for a user: its structural errors
// dump Go struct tags.
func derError(err error) string {
	var structural asn1.StructuralError
	if errors.As(err, &structural) {
		return "malformed ASN.1 DER (unexpected structure)"
	}
	var syntax asn1.SyntaxError
	if errors.As(err, &syntax) {
		return "malformed ASN.1 DER (" + syntax.Msg + ")"
	}
	return err.Error()
}

func unmarshalAll(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%d bytes of trailing data", len(rest))
	}
	return nil
}

func extKeyUsageFromOID(oid asn1.ObjectIdentifier) (x509.ExtKeyUsage, bool) {
	for _, e := range extKeyUsageOIDs {
		if e.oid.Equal(oid) {
			return e.eku, true
		}
	}
	return 0, false
}

// countGeneralNames counts the names in a SubjectAltName value (a SEQUENCE
// OF GeneralName, RFC 5280 4.2.1.6), stopping just past MaxSANs.
// crypto/x509 has already checked the names it understands.
func countGeneralNames(der []byte) (int, error) {
	var seq asn1.RawValue
	if err := unmarshalAll(der, &seq); err != nil {
		return 0, err
	}
	if seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return 0, fmt.Errorf("not a SEQUENCE")
	}
	n := 0
	for rest := seq.Bytes; len(rest) > 0 && n <= MaxSANs; n++ {
		var name asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &name); err != nil {
			return 0, err
		}
		if name.Class != asn1.ClassContextSpecific {
			return 0, fmt.Errorf("name %d is not a GeneralName", n+1)
		}
	}
	return n, nil
}

// subjectKeyID is RFC 7093 section 2 method 1: the leftmost 160 bits of the
// SHA-256 hash of the subjectPublicKey bits, as crypto/x509 computes it for CAs.
func subjectKeyID(rawSPKI []byte) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if err := unmarshalAll(rawSPKI, &spki); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// isEmptySubject reports whether a DER Name is the empty SEQUENCE.
func isEmptySubject(raw []byte) bool {
	return len(raw) == 2 && raw[0] == 0x30 && raw[1] == 0
}

// keyUsageNames names the bits of ku with the CSR API's words, in bit order.
func keyUsageNames(ku x509.KeyUsage) string {
	names := []struct {
		bit  x509.KeyUsage
		name certificatesv1.KeyUsage
	}{
		{x509.KeyUsageDigitalSignature, certificatesv1.UsageDigitalSignature},
		{x509.KeyUsageContentCommitment, certificatesv1.UsageContentCommitment},
		{x509.KeyUsageKeyEncipherment, certificatesv1.UsageKeyEncipherment},
		{x509.KeyUsageDataEncipherment, certificatesv1.UsageDataEncipherment},
		{x509.KeyUsageKeyAgreement, certificatesv1.UsageKeyAgreement},
		{x509.KeyUsageCertSign, certificatesv1.UsageCertSign},
		{x509.KeyUsageCRLSign, certificatesv1.UsageCRLSign},
		{x509.KeyUsageEncipherOnly, certificatesv1.UsageEncipherOnly},
		{x509.KeyUsageDecipherOnly, certificatesv1.UsageDecipherOnly},
	}
	var out []string
	for _, n := range names {
		if ku&n.bit != 0 {
			out = append(out, string(n.name))
		}
	}
	return strings.Join(out, ", ")
}

// extKeyUsageNames names extended usages with the CSR API's words.
func extKeyUsageNames(eku []x509.ExtKeyUsage) []string {
	out := make([]string, 0, len(eku))
	for _, e := range eku {
		name := fmt.Sprintf("ExtKeyUsage(%d)", e)
		for s, v := range extKeyUsages {
			// "s/mime" and "email protection" are one usage: say the latter.
			if v == e && s != string(certificatesv1.UsageSMIME) {
				name = s
				break
			}
		}
		out = append(out, name)
	}
	return out
}
