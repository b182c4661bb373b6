package app

import (
	"bufio"
	"bytes"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/pkg/wire"
)

// The cert-manager API this plugin reads. Only the fields that decide the
// certificate are parsed; the rest of a Certificate (secretName,
// renewBefore, secretTemplate, keystores, ...) is about the Secret
// cert-manager would manage and is ignored.
const (
	certificateAPIVersion = wire.Group + "/v1"
	certificateKind       = "Certificate"
	maxCommonNameLength   = 64
)

// certificateManifest is the subset of a cert-manager.io/v1 Certificate that
// the plugin reads, in cert-manager's field names.
type certificateManifest struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   manifestMetadata `json:"metadata"`
	Spec       certificateSpec  `json:"spec"`
}

type manifestMetadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type certificateSpec struct {
	CommonName     string          `json:"commonName"`
	DNSNames       []string        `json:"dnsNames"`
	IPAddresses    []string        `json:"ipAddresses"`
	URIs           []string        `json:"uris"`
	EmailAddresses []string        `json:"emailAddresses"`
	Subject        *subjectSpec    `json:"subject"`
	Duration       string          `json:"duration"`
	Usages         []string        `json:"usages"`
	IsCA           bool            `json:"isCA"`
	PrivateKey     *privateKeySpec `json:"privateKey"`
	IssuerRef      *issuerRefSpec  `json:"issuerRef"`

	// Parsed only to refuse them: they change the certificate and the plugin
	// does not implement them.
	LiteralSubject string        `json:"literalSubject"`
	OtherNames     []interface{} `json:"otherNames"`
}

type subjectSpec struct {
	Organizations       []string `json:"organizations"`
	Countries           []string `json:"countries"`
	OrganizationalUnits []string `json:"organizationalUnits"`
	Localities          []string `json:"localities"`
	Provinces           []string `json:"provinces"`
	StreetAddresses     []string `json:"streetAddresses"`
	PostalCodes         []string `json:"postalCodes"`
	SerialNumber        string   `json:"serialNumber"`
}

type privateKeySpec struct {
	Algorithm string `json:"algorithm"`
	Encoding  string `json:"encoding"`
	Size      int    `json:"size"`
}

type issuerRefSpec struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Group string `json:"group"`
}

// IssuerRef names the cert-manager issuer that should sign.
type IssuerRef struct {
	// Kind is Issuer or ClusterIssuer.
	Kind wire.IssuerKind
	// Name is the issuer's name; an Issuer is in the Certificate's namespace.
	Name string
}

// CertificateRequest is a validated Certificate manifest: everything needed
// to generate a key, build a PKCS#10 request and ask a signer for it.
type CertificateRequest struct {
	// Name and Namespace are the Certificate's metadata; Namespace may be
	// empty, and is then the one from the command line or kubeconfig.
	Name        string
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string

	Subject        pkix.Name
	DNSNames       []string
	IPAddresses    []net.IP
	URIs           []*url.URL
	EmailAddresses []string

	// Duration is the requested validity; zero leaves it to the signer
	// (90 days).
	Duration time.Duration
	// Usages are certificates.k8s.io key usages, defaulted and de-duplicated.
	Usages []string
	IsCA   bool
	Key    KeySpec
	Issuer IssuerRef
}

// knownUsages are the usage strings of cert-manager's Certificate, which are
// exactly certificates.k8s.io/v1's.
var knownUsages = map[string]bool{}

func init() {
	for _, u := range []certificatesv1.KeyUsage{
		certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
		certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
		certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
		certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
		certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
		certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
		certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
		certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
	} {
		knownUsages[string(u)] = true
	}
}

// defaultUsages are cert-manager's (and the CSR API's) when none are given.
var defaultUsages = []string{string(certificatesv1.UsageDigitalSignature), string(certificatesv1.UsageKeyEncipherment)}

// ReadCertificateManifest reads exactly one cert-manager Certificate from r
// (YAML or JSON; a multi-document stream may hold only one non-empty
// document) and validates it. source names r in errors.
func ReadCertificateManifest(r io.Reader, source string) (*CertificateRequest, error) {
	docs := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var found []byte
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", source, err)
		}
		if len(bytes.TrimSpace(stripYAMLComments(doc))) == 0 {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%s holds more than one object; expected exactly one Certificate", source)
		}
		found = doc
	}
	if found == nil {
		return nil, fmt.Errorf("%s holds no object; expected one Certificate", source)
	}
	req, err := ParseCertificate(found)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return req, nil
}

// stripYAMLComments drops comment-only lines, so that a document of just
// comments counts as empty.
func stripYAMLComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// ParseCertificate parses and validates one Certificate document.
func ParseCertificate(doc []byte) (*CertificateRequest, error) {
	var m certificateManifest
	if err := yaml.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("parsing the Certificate: %w", err)
	}
	if m.Kind != certificateKind {
		return nil, fmt.Errorf("kind %q: expected a cert-manager %s (apiVersion %s)", m.Kind, certificateKind, certificateAPIVersion)
	}
	if m.APIVersion != certificateAPIVersion {
		return nil, fmt.Errorf("apiVersion %q: expected %s", m.APIVersion, certificateAPIVersion)
	}
	return m.toRequest()
}

func (m *certificateManifest) toRequest() (*CertificateRequest, error) {
	s := &m.Spec
	name := m.Metadata.Name
	if name == "" {
		name = "<unnamed>"
	}
	var errs []string
	bad := func(format string, args ...interface{}) { errs = append(errs, fmt.Sprintf(format, args...)) }

	req := &CertificateRequest{
		Name:           m.Metadata.Name,
		Namespace:      m.Metadata.Namespace,
		Labels:         m.Metadata.Labels,
		Annotations:    m.Metadata.Annotations,
		DNSNames:       s.DNSNames,
		EmailAddresses: s.EmailAddresses,
		IsCA:           s.IsCA,
	}
	if m.Metadata.Name == "" {
		bad("metadata.name is required")
	}

	req.Subject.CommonName = s.CommonName
	if len(s.CommonName) > maxCommonNameLength {
		bad("spec.commonName is %d bytes long; at most %d are allowed", len(s.CommonName), maxCommonNameLength)
	}
	if sub := s.Subject; sub != nil {
		req.Subject.Organization = sub.Organizations
		req.Subject.Country = sub.Countries
		req.Subject.OrganizationalUnit = sub.OrganizationalUnits
		req.Subject.Locality = sub.Localities
		req.Subject.Province = sub.Provinces
		req.Subject.StreetAddress = sub.StreetAddresses
		req.Subject.PostalCode = sub.PostalCodes
		req.Subject.SerialNumber = sub.SerialNumber
	}
	if s.LiteralSubject != "" {
		bad("spec.literalSubject is not supported by kubectl signet; use spec.commonName and spec.subject")
	}
	if len(s.OtherNames) > 0 {
		bad("spec.otherNames is not supported by kubectl signet")
	}

	for i, d := range s.DNSNames {
		if strings.TrimSpace(d) == "" {
			bad("spec.dnsNames[%d] is empty", i)
		}
	}
	for i, e := range s.EmailAddresses {
		if !strings.Contains(e, "@") {
			bad("spec.emailAddresses[%d] %q is not an email address", i, e)
		}
	}
	for i, a := range s.IPAddresses {
		ip := net.ParseIP(a)
		if ip == nil {
			bad("spec.ipAddresses[%d] %q is not an IP address", i, a)
			continue
		}
		req.IPAddresses = append(req.IPAddresses, ip)
	}
	for i, u := range s.URIs {
		parsed, err := url.Parse(u)
		if err != nil || parsed.Scheme == "" {
			bad("spec.uris[%d] %q is not an absolute URI", i, u)
			continue
		}
		req.URIs = append(req.URIs, parsed)
	}
	if s.CommonName == "" && len(s.DNSNames) == 0 && len(s.IPAddresses) == 0 && len(s.URIs) == 0 && len(s.EmailAddresses) == 0 {
		bad("at least one of spec.commonName, spec.dnsNames, spec.ipAddresses, spec.uris or spec.emailAddresses must be set")
	}

	if s.Duration != "" {
		d, err := time.ParseDuration(s.Duration)
		switch {
		case err != nil:
			bad("spec.duration %q is not a Go duration such as 2160h or 24h30m", s.Duration)
		case d < wire.MinDuration:
			bad("spec.duration %s is shorter than the minimum of %s", s.Duration, wire.MinDuration)
		case d.Seconds() > math.MaxInt32:
			bad("spec.duration %s is too long", s.Duration)
		default:
			req.Duration = d
		}
	}

	usages, err := requestUsages(s.Usages, s.IsCA)
	if err != nil {
		bad("%v", err)
	}
	req.Usages = usages

	key, err := keySpecFrom(s.PrivateKey)
	if err != nil {
		bad("%v", err)
	}
	req.Key = key

	issuer, err := issuerRefFrom(s.IssuerRef)
	if err != nil {
		bad("%v", err)
	}
	req.Issuer = issuer

	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid Certificate %s: %s", name, strings.Join(errs, "; "))
	}
	return req, nil
}

// requestUsages validates cert-manager usages and applies cert-manager's
// defaults: digital signature + key encipherment when none are given, and
// cert sign for a CA.
func requestUsages(in []string, isCA bool) ([]string, error) {
	if len(in) == 0 {
		in = defaultUsages
	}
	var out, unknown []string
	seen := map[string]bool{}
	for _, u := range in {
		if !knownUsages[u] {
			unknown = append(unknown, fmt.Sprintf("%q", u))
			continue
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("spec.usages: unknown usage %s; usages are certificates.k8s.io key usages such as \"digital signature\", \"key encipherment\", \"server auth\", \"client auth\"", strings.Join(unknown, ", "))
	}
	if isCA && !seen[string(certificatesv1.UsageCertSign)] {
		out = append(out, string(certificatesv1.UsageCertSign))
	}
	return out, nil
}

func issuerRefFrom(ref *issuerRefSpec) (IssuerRef, error) {
	if ref == nil {
		return IssuerRef{}, errors.New("spec.issuerRef is required: name the cert-manager Issuer or ClusterIssuer that should sign")
	}
	if ref.Name == "" {
		return IssuerRef{}, errors.New("spec.issuerRef.name is required")
	}
	if ref.Group != "" && ref.Group != wire.Group {
		return IssuerRef{}, fmt.Errorf("spec.issuerRef.group %q is not supported: signet signs only for %s Issuers and ClusterIssuers, not external issuers", ref.Group, wire.Group)
	}
	switch wire.IssuerKind(ref.Kind) {
	case "", wire.KindIssuer:
		return IssuerRef{Kind: wire.KindIssuer, Name: ref.Name}, nil
	case wire.KindClusterIssuer:
		return IssuerRef{Kind: wire.KindClusterIssuer, Name: ref.Name}, nil
	}
	return IssuerRef{}, fmt.Errorf("spec.issuerRef.kind %q: expected %s or %s", ref.Kind, wire.KindIssuer, wire.KindClusterIssuer)
}
