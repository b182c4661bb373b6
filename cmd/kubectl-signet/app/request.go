package app

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	certmanagerv1alpha1 "github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/wire"
)

// lastAppliedAnnotation is kubectl's bookkeeping; it describes the
// Certificate, not the request, so it is not copied onto the CSR.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// wireRef is ref as signet names it; an Issuer is in namespace.
func wireRef(ref IssuerRef, namespace string) wire.IssuerRef {
	if ref.Kind == wire.KindClusterIssuer {
		return wire.IssuerRef{Kind: ref.Kind, Name: ref.Name}
	}
	return wire.IssuerRef{Kind: wire.KindIssuer, Namespace: namespace, Name: ref.Name}
}

// SignerName is the CSR spec.signerName that reaches the issuer: for an
// Issuer issuers.cert-manager.io/<namespace>.<name>, for a ClusterIssuer
// clusterissuers.cert-manager.io/<name>.
func SignerName(ref IssuerRef, namespace string) string {
	return wireRef(ref, namespace).SignerName()
}

// IssuerString names the issuer in messages: Issuer ns/name or ClusterIssuer name.
func IssuerString(ref IssuerRef, namespace string) string {
	return wireRef(ref, namespace).String()
}

// BuildPKCS10 returns the PEM "CERTIFICATE REQUEST" for req, signed by key.
// It carries the subject and SANs only: key usages, extended key usages and
// CA-ness are asked for through the CSR's spec.usages and annotations (or
// the SigningRequest's fields), so they can never disagree with the request.
func BuildPKCS10(req *CertificateRequest, key crypto.Signer) ([]byte, error) {
	tmpl := &x509.CertificateRequest{
		Subject:        req.Subject,
		DNSNames:       req.DNSNames,
		IPAddresses:    req.IPAddresses,
		URIs:           req.URIs,
		EmailAddresses: req.EmailAddresses,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("building the certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// BuildCSR is the CertificateSigningRequest for req in namespace (the
// Certificate's namespace, which an Issuer's signer name includes). An empty
// name lets the API server pick one from the Certificate's name.
func BuildCSR(req *CertificateRequest, namespace, name string, pkcs10 []byte) *certificatesv1.CertificateSigningRequest {
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      copyMap(req.Labels),
			Annotations: RequestAnnotations(req),
		},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pkcs10,
			SignerName:        SignerName(req.Issuer, namespace),
			Usages:            kubeUsages(req.Usages),
			ExpirationSeconds: expirationSeconds(req),
		},
	}
	if name != "" {
		csr.Name = name
	} else {
		csr.GenerateName = req.Name + "-"
	}
	return csr
}

// RequestAnnotations are the CSR's annotations: the Certificate's own (as
// cmctl copies them), with the duration and isCA annotations set from the
// spec alone.
func RequestAnnotations(req *CertificateRequest) map[string]string {
	out := copyMap(req.Annotations)
	if out == nil {
		out = map[string]string{}
	}
	delete(out, lastAppliedAnnotation)
	delete(out, wire.AnnotationRequestDuration)
	delete(out, wire.AnnotationRequestIsCA)
	delete(out, wire.AnnotationCA)
	if req.Duration > 0 {
		out[wire.AnnotationRequestDuration] = req.Duration.String()
	}
	if req.IsCA {
		out[wire.AnnotationRequestIsCA] = "true"
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// BuildSigningRequest is the body of a signers/<name>/sign call for req.
func BuildSigningRequest(req *CertificateRequest, pkcs10 []byte) *certmanagerv1alpha1.SigningRequest {
	return &certmanagerv1alpha1.SigningRequest{
		Spec: certmanagerv1alpha1.SigningRequestSpec{
			Request:           pkcs10,
			ExpirationSeconds: expirationSeconds(req),
			Usages:            append([]string(nil), req.Usages...),
			IsCA:              req.IsCA,
		},
	}
}

// expirationSeconds mirrors the duration into spec.expirationSeconds, as
// cmctl does, so that signers that read only the spec agree.
func expirationSeconds(req *CertificateRequest) *int32 {
	if req.Duration <= 0 {
		return nil
	}
	s := int32(req.Duration.Seconds())
	return &s
}

func kubeUsages(usages []string) []certificatesv1.KeyUsage {
	out := make([]certificatesv1.KeyUsage, 0, len(usages))
	for _, u := range usages {
		out = append(out, certificatesv1.KeyUsage(u))
	}
	return out
}

func copyMap(in map[string]string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
