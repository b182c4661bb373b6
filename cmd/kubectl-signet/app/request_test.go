package app

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"reflect"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"

	"github.com/signet-dev/signet/pkg/wire"
)

func TestSignerName(t *testing.T) {
	tests := []struct {
		ref       IssuerRef
		namespace string
		want      string
	}{
		{IssuerRef{Kind: "Issuer", Name: "ca"}, "shop", "issuers.cert-manager.io/shop.ca"},
		// The issuer name may contain dots; the namespace cannot.
		{IssuerRef{Kind: "Issuer", Name: "ca.v2"}, "shop", "issuers.cert-manager.io/shop.ca.v2"},
		{IssuerRef{Kind: "ClusterIssuer", Name: "root"}, "shop", "clusterissuers.cert-manager.io/root"},
		{IssuerRef{Kind: "ClusterIssuer", Name: "root.v2"}, "", "clusterissuers.cert-manager.io/root.v2"},
	}
	for _, tt := range tests {
		got := SignerName(tt.ref, tt.namespace)
		if got != tt.want {
			t.Errorf("SignerName(%+v, %q) = %q, want %q", tt.ref, tt.namespace, got, tt.want)
		}
		// signet must read back the issuer the plugin meant.
		parsed, ok := wire.ParseSignerName(got)
		if !ok || parsed.Name != tt.ref.Name || parsed.Kind != tt.ref.Kind {
			t.Errorf("signet parses %q as %+v (ours: %v)", got, parsed, ok)
		}
		if tt.ref.Kind == "Issuer" && parsed.Namespace != tt.namespace {
			t.Errorf("signet parses %q into namespace %q, want %q", got, parsed.Namespace, tt.namespace)
		}
	}
}

func TestRequestAnnotations(t *testing.T) {
	tests := []struct {
		name string
		req  CertificateRequest
		want map[string]string
	}{
		{"nothing to say", CertificateRequest{}, nil},
		{"duration as a Go duration", CertificateRequest{Duration: 36 * time.Hour},
			map[string]string{wire.AnnotationRequestDuration: "36h0m0s"}},
		{"isCA only when true", CertificateRequest{IsCA: true},
			map[string]string{wire.AnnotationRequestIsCA: "true"}},
		{"the Certificate's annotations are kept, the spec decides ours", CertificateRequest{
			Duration: time.Hour,
			Annotations: map[string]string{
				"team":                         "payments",
				wire.AnnotationRequestIsCA:     "true",
				wire.AnnotationRequestDuration: "1m",
				wire.AnnotationCA:              "Zm9v",
				lastAppliedAnnotation:          "{}",
			},
		}, map[string]string{"team": "payments", wire.AnnotationRequestDuration: "1h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := copyMap(tt.req.Annotations)
			got := RequestAnnotations(&tt.req)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(tt.req.Annotations, before) {
				t.Error("the Certificate's annotations were modified")
			}
		})
	}
}

func parsedRequest(t *testing.T, doc string) *CertificateRequest {
	t.Helper()
	req, err := ParseCertificate([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestBuildCSR(t *testing.T) {
	req := parsedRequest(t, fullCertificate)
	req.IsCA = true
	csr := BuildCSR(req, "shop", "", []byte("pem"))
	if csr.Name != "" || csr.GenerateName != "web-" {
		t.Errorf("name %q generateName %q, want a generated name from web-", csr.Name, csr.GenerateName)
	}
	if csr.Spec.SignerName != "issuers.cert-manager.io/shop.shop-ca" {
		t.Errorf("signerName %q", csr.Spec.SignerName)
	}
	wantUsages := []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature}
	if !reflect.DeepEqual(csr.Spec.Usages, wantUsages) {
		t.Errorf("usages %v, want %v", csr.Spec.Usages, wantUsages)
	}
	if csr.Spec.ExpirationSeconds == nil || *csr.Spec.ExpirationSeconds != 2160*3600 {
		t.Errorf("expirationSeconds %v, want %d", csr.Spec.ExpirationSeconds, 2160*3600)
	}
	wantAnn := map[string]string{"team": "payments", wire.AnnotationRequestDuration: "2160h0m0s", wire.AnnotationRequestIsCA: "true"}
	if !reflect.DeepEqual(csr.Annotations, wantAnn) {
		t.Errorf("annotations %v, want %v", csr.Annotations, wantAnn)
	}
	if !reflect.DeepEqual(csr.Labels, map[string]string{"app": "web"}) {
		t.Errorf("labels %v", csr.Labels)
	}
	if string(csr.Spec.Request) != "pem" {
		t.Errorf("request %q", csr.Spec.Request)
	}

	named := BuildCSR(req, "shop", "web-1", nil)
	if named.Name != "web-1" || named.GenerateName != "" {
		t.Errorf("--name: name %q generateName %q", named.Name, named.GenerateName)
	}
	noDuration := parsedRequest(t, minimal("  commonName: a\n  issuerRef: {name: ca, kind: ClusterIssuer}\n"))
	csr = BuildCSR(noDuration, "ignored", "", nil)
	if csr.Spec.ExpirationSeconds != nil || csr.Annotations != nil {
		t.Errorf("no duration: expirationSeconds %v annotations %v", csr.Spec.ExpirationSeconds, csr.Annotations)
	}
	if csr.Spec.SignerName != "clusterissuers.cert-manager.io/ca" {
		t.Errorf("signerName %q", csr.Spec.SignerName)
	}
}

func TestBuildSigningRequest(t *testing.T) {
	req := parsedRequest(t, minimal("  commonName: a\n  duration: 1h\n  isCA: true\n  usages: [client auth]\n  issuerRef: {name: ca}\n"))
	sr := BuildSigningRequest(req, []byte("pem"))
	if string(sr.Spec.Request) != "pem" || !sr.Spec.IsCA {
		t.Errorf("spec %+v", sr.Spec)
	}
	if sr.Spec.ExpirationSeconds == nil || *sr.Spec.ExpirationSeconds != 3600 {
		t.Errorf("expirationSeconds %v", sr.Spec.ExpirationSeconds)
	}
	if !reflect.DeepEqual(sr.Spec.Usages, []string{"client auth", "cert sign"}) {
		t.Errorf("usages %v", sr.Spec.Usages)
	}
}

func TestBuildPKCS10(t *testing.T) {
	for _, alg := range []string{"RSA", "ECDSA", "Ed25519"} {
		t.Run(alg, func(t *testing.T) {
			req := parsedRequest(t, fullCertificate)
			req.Key.Algorithm = KeyAlgorithm(alg)
			req.Key.Size = map[string]int{"RSA": 2048, "ECDSA": 256}[alg]
			key, err := GenerateKey(req.Key)
			if err != nil {
				t.Fatal(err)
			}
			data, err := BuildPKCS10(req, key)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(data)
			if block == nil || block.Type != "CERTIFICATE REQUEST" {
				t.Fatalf("not a PEM CERTIFICATE REQUEST: %q", data)
			}
			cr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := cr.CheckSignature(); err != nil {
				t.Errorf("signature: %v", err)
			}
			if cr.Subject.String() != req.Subject.String() {
				t.Errorf("subject %q, want %q", cr.Subject, req.Subject)
			}
			if !reflect.DeepEqual(cr.DNSNames, req.DNSNames) || !reflect.DeepEqual(cr.EmailAddresses, req.EmailAddresses) ||
				len(cr.IPAddresses) != 2 || !cr.IPAddresses[1].Equal(req.IPAddresses[1]) ||
				len(cr.URIs) != 1 || cr.URIs[0].String() != req.URIs[0].String() {
				t.Errorf("SANs %v %v %v %v", cr.DNSNames, cr.IPAddresses, cr.URIs, cr.EmailAddresses)
			}
			// Usages and CA-ness travel in the CSR's spec and annotations only.
			if len(cr.Extensions) != 1 || !cr.Extensions[0].Id.Equal([]int{2, 5, 29, 17}) {
				t.Errorf("extensions %v, want subjectAltName only", cr.Extensions)
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cr.PublicKey) {
				t.Error("the request is not for the generated key")
			}
		})
	}
}
