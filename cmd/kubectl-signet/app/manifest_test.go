package app

import (
	"crypto/x509/pkix"
	"net"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fullCertificate = `
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web
  namespace: shop
  labels: {app: web}
  annotations: {team: payments}
spec:
  secretName: web-tls          # cert-manager's, ignored here
  renewBefore: 24h             # likewise
  commonName: web.shop.svc
  dnsNames: [web.shop.svc, web.example.com]
  ipAddresses: [10.0.0.1, "2001:db8::1"]
  uris: [spiffe://cluster.local/ns/shop/sa/web]
  emailAddresses: [ops@example.com]
  subject:
    organizations: [Example Inc]
    countries: [NL]
    organizationalUnits: [Payments]
    localities: [Amsterdam]
    provinces: [Noord-Holland]
    streetAddresses: [Dam 1]
    postalCodes: [1012 JS]
    serialNumber: "42"
  duration: 2160h
  usages: [server auth, client auth, digital signature, server auth]
  isCA: false
  privateKey:
    algorithm: ECDSA
    size: 384
    encoding: PKCS8
    rotationPolicy: Always
  issuerRef:
    name: shop-ca
    kind: Issuer
    group: cert-manager.io
`

func TestParseCertificateReadsEveryField(t *testing.T) {
	got, err := ParseCertificate([]byte(fullCertificate))
	if err != nil {
		t.Fatal(err)
	}
	want := &CertificateRequest{
		Name:        "web",
		Namespace:   "shop",
		Labels:      map[string]string{"app": "web"},
		Annotations: map[string]string{"team": "payments"},
		Subject: pkix.Name{
			CommonName:         "web.shop.svc",
			Organization:       []string{"Example Inc"},
			Country:            []string{"NL"},
			OrganizationalUnit: []string{"Payments"},
			Locality:           []string{"Amsterdam"},
			Province:           []string{"Noord-Holland"},
			StreetAddress:      []string{"Dam 1"},
			PostalCode:         []string{"1012 JS"},
			SerialNumber:       "42",
		},
		DNSNames:       []string{"web.shop.svc", "web.example.com"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("2001:db8::1")},
		URIs:           []*url.URL{mustURL(t, "spiffe://cluster.local/ns/shop/sa/web")},
		EmailAddresses: []string{"ops@example.com"},
		Duration:       2160 * time.Hour,
		Usages:         []string{"server auth", "client auth", "digital signature"},
		Key:            KeySpec{Algorithm: ECDSA, Size: 384, Encoding: PKCS8},
		Issuer:         IssuerRef{Kind: "Issuer", Name: "shop-ca"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCertificate:\n got %+v\nwant %+v", got, want)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// minimal builds a Certificate manifest from spec lines (indented by the caller).
func minimal(spec string) string {
	return "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: app\nspec:\n" + spec
}

func TestParseCertificateDefaults(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want func(*CertificateRequest) bool
	}{
		{"RSA 2048 PKCS1 by default", "  commonName: a\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Key == KeySpec{Algorithm: RSA, Size: 2048, Encoding: PKCS1}
		}},
		{"RSA size default with explicit algorithm", "  commonName: a\n  privateKey: {algorithm: RSA}\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Key.Size == 2048
		}},
		{"ECDSA P-256 by default", "  commonName: a\n  privateKey: {algorithm: ECDSA}\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Key == KeySpec{Algorithm: ECDSA, Size: 256, Encoding: PKCS1}
		}},
		{"Ed25519 ignores size", "  commonName: a\n  privateKey: {algorithm: Ed25519, size: 4096}\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Key == KeySpec{Algorithm: Ed25519, Encoding: PKCS1}
		}},
		{"Issuer kind and group by default", "  commonName: a\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Issuer == IssuerRef{Kind: "Issuer", Name: "ca"}
		}},
		{"ClusterIssuer", "  commonName: a\n  issuerRef: {name: ca, kind: ClusterIssuer, group: cert-manager.io}\n", func(r *CertificateRequest) bool {
			return r.Issuer == IssuerRef{Kind: "ClusterIssuer", Name: "ca"}
		}},
		{"usages default to digital signature and key encipherment", "  commonName: a\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return reflect.DeepEqual(r.Usages, []string{"digital signature", "key encipherment"})
		}},
		{"a CA also gets cert sign", "  commonName: a\n  isCA: true\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.IsCA && reflect.DeepEqual(r.Usages, []string{"digital signature", "key encipherment", "cert sign"})
		}},
		{"a CA with cert sign keeps one", "  commonName: a\n  isCA: true\n  usages: [cert sign, crl sign]\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return reflect.DeepEqual(r.Usages, []string{"cert sign", "crl sign"})
		}},
		{"no duration leaves it to the signer", "  commonName: a\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Duration == 0
		}},
		{"duration of exactly ten minutes", "  commonName: a\n  duration: 10m\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Duration == 10*time.Minute
		}},
		{"namespace empty when the manifest has none", "  commonName: a\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Namespace == ""
		}},
		{"a SAN without a common name is enough", "  dnsNames: [a.example]\n  issuerRef: {name: ca}\n", func(r *CertificateRequest) bool {
			return r.Subject.CommonName == "" && len(r.DNSNames) == 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCertificate([]byte(minimal(tt.spec)))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(got) {
				t.Errorf("unexpected result %+v", got)
			}
		})
	}
}

func TestParseCertificateErrors(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{"unknown kind", "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: a}\n", `kind "Issuer": expected a cert-manager Certificate`},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", `kind "": expected a cert-manager Certificate`},
		{"old apiVersion", "apiVersion: cert-manager.io/v1alpha2\nkind: Certificate\nmetadata: {name: a}\n", `apiVersion "cert-manager.io/v1alpha2": expected cert-manager.io/v1`},
		{"not YAML", "apiVersion: [", "parsing the Certificate"},
		{"wrong field type", minimal("  dnsNames: a.example\n  issuerRef: {name: ca}\n"), "parsing the Certificate"},
		{"missing name", "apiVersion: cert-manager.io/v1\nkind: Certificate\nspec: {commonName: a, issuerRef: {name: ca}}\n", "metadata.name is required"},
		{"missing issuerRef", minimal("  commonName: a\n"), "spec.issuerRef is required"},
		{"missing issuerRef name", minimal("  commonName: a\n  issuerRef: {kind: Issuer}\n"), "spec.issuerRef.name is required"},
		{"external issuer group", minimal("  commonName: a\n  issuerRef: {name: ca, group: awspca.cert-manager.io, kind: AWSPCAIssuer}\n"), `spec.issuerRef.group "awspca.cert-manager.io" is not supported`},
		{"unknown issuer kind", minimal("  commonName: a\n  issuerRef: {name: ca, kind: Issuers}\n"), `spec.issuerRef.kind "Issuers": expected Issuer or ClusterIssuer`},
		{"unparsable duration", minimal("  commonName: a\n  duration: 90d\n  issuerRef: {name: ca}\n"), `spec.duration "90d" is not a Go duration`},
		{"duration too short", minimal("  commonName: a\n  duration: 5m\n  issuerRef: {name: ca}\n"), "spec.duration 5m is shorter than the minimum of 10m0s"},
		{"duration too long", minimal("  commonName: a\n  duration: 1000000h\n  issuerRef: {name: ca}\n"), "spec.duration 1000000h is too long"},
		{"bad RSA size", minimal("  commonName: a\n  privateKey: {algorithm: RSA, size: 1024}\n  issuerRef: {name: ca}\n"), "spec.privateKey.size 1024 is not a supported RSA key size"},
		{"bad ECDSA size", minimal("  commonName: a\n  privateKey: {algorithm: ECDSA, size: 2048}\n  issuerRef: {name: ca}\n"), "spec.privateKey.size 2048 is not a supported ECDSA curve size"},
		{"unknown algorithm", minimal("  commonName: a\n  privateKey: {algorithm: DSA}\n  issuerRef: {name: ca}\n"), `spec.privateKey.algorithm "DSA": expected RSA, ECDSA or Ed25519`},
		{"unknown encoding", minimal("  commonName: a\n  privateKey: {encoding: DER}\n  issuerRef: {name: ca}\n"), `spec.privateKey.encoding "DER": expected PKCS1 or PKCS8`},
		{"unknown usage", minimal("  commonName: a\n  usages: [server auth, serverAuth]\n  issuerRef: {name: ca}\n"), `spec.usages: unknown usage "serverAuth"`},
		{"bad IP", minimal("  ipAddresses: [10.0.0.300]\n  issuerRef: {name: ca}\n"), `spec.ipAddresses[0] "10.0.0.300" is not an IP address`},
		{"relative URI", minimal("  uris: [just-a-path]\n  issuerRef: {name: ca}\n"), `spec.uris[0] "just-a-path" is not an absolute URI`},
		{"bad email", minimal("  emailAddresses: [nobody]\n  issuerRef: {name: ca}\n"), `spec.emailAddresses[0] "nobody" is not an email address`},
		{"empty DNS name", minimal("  dnsNames: [\"\"]\n  issuerRef: {name: ca}\n"), "spec.dnsNames[0] is empty"},
		{"no identity at all", minimal("  subject: {organizations: [x]}\n  issuerRef: {name: ca}\n"), "at least one of spec.commonName"},
		{"common name too long", minimal("  commonName: " + strings.Repeat("a", 65) + "\n  issuerRef: {name: ca}\n"), "spec.commonName is 65 bytes long"},
		{"literalSubject", minimal("  literalSubject: CN=a\n  issuerRef: {name: ca}\n"), "spec.literalSubject is not supported"},
		{"otherNames", minimal("  commonName: a\n  otherNames: [{oid: 1.2.3, utf8Value: x}]\n  issuerRef: {name: ca}\n"), "spec.otherNames is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCertificate([]byte(tt.doc))
			if err == nil {
				t.Fatalf("no error; want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseCertificateReportsAllProblemsAtOnce(t *testing.T) {
	_, err := ParseCertificate([]byte(minimal("  duration: soon\n  privateKey: {size: 1}\n")))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"spec.duration", "spec.privateKey.size", "spec.issuerRef is required", "at least one of"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestReadCertificateManifest(t *testing.T) {
	one := minimal("  commonName: a\n  issuerRef: {name: ca}\n")
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"one document", one, ""},
		{"leading separator and comments", "# a comment\n---\n" + one + "---\n# trailing\n", ""},
		{"JSON", `{"apiVersion":"cert-manager.io/v1","kind":"Certificate","metadata":{"name":"a"},"spec":{"commonName":"a","issuerRef":{"name":"ca"}}}`, ""},
		{"two documents", one + "---\n" + one, "holds more than one object"},
		{"empty", "\n---\n", "holds no object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadCertificateManifest(strings.NewReader(tt.in), "cert.yaml")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v; want one containing %q", err, tt.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "cert.yaml"):
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}
