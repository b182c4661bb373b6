package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// SignerType is the kind of cert-manager issuer behind a signer.
// +enum
type SignerType string

const (
	// SignerTypeCA signs with a CA certificate and key held in a Secret.
	SignerTypeCA SignerType = "CA"
	// SignerTypeSelfSigned signs each certificate with its own private key.
	SignerTypeSelfSigned SignerType = "SelfSigned"
	// SignerTypeVault signs through a HashiCorp Vault PKI mount.
	SignerTypeVault SignerType = "Vault"
	// SignerTypeACME obtains certificates from an ACME server.
	SignerTypeACME SignerType = "ACME"
	// SignerTypeVenafi obtains certificates from Venafi.
	SignerTypeVenafi SignerType = "Venafi"
	// SignerTypeUnknown is an issuer whose spec names no issuer type signet knows.
	SignerTypeUnknown SignerType = "Unknown"
)

// SignerConditionReady is the condition type that says whether a signer can
// sign now.
const SignerConditionReady = "Ready"

// SignerConditionShortLivedCA is the condition type, on CA signers, that says
// whether the CA certificate ends before a certificate of the default duration
// signed now would.
const SignerConditionShortLivedCA = "ShortLivedCA"

// IssuerReference names the cert-manager issuer a signer is computed from.
type IssuerReference struct {
	// group is the API group of the issuer. It is always cert-manager.io.
	Group string `json:"group"`
	// kind is the kind of the issuer: Issuer for a Signer, ClusterIssuer for a
	// ClusterSigner.
	Kind string `json:"kind"`
	// name is the name of the issuer. An Issuer is in the same namespace as
	// its Signer.
	Name string `json:"name"`
}

// SignerSpec identifies a signer and the cert-manager issuer behind it.
type SignerSpec struct {
	// signerName is the value a CertificateSigningRequest puts in its
	// spec.signerName to be signed by this signer:
	// issuers.cert-manager.io/<namespace>.<name> for an Issuer,
	// clusterissuers.cert-manager.io/<name> for a ClusterIssuer.
	SignerName string `json:"signerName"`
	// issuerRef names the cert-manager issuer this signer is computed from.
	IssuerRef IssuerReference `json:"issuerRef"`
	// type is the kind of issuer, taken from which issuer section of the
	// issuer's spec is set. Unknown means the issuer names none that signet
	// recognises.
	Type SignerType `json:"type"`
}

// CertificateAuthority describes the CA certificate a CA signer signs with.
type CertificateAuthority struct {
	// subject is the distinguished name of the CA certificate, in RFC 2253 form.
	Subject string `json:"subject"`
	// issuer is the distinguished name of the certificate authority that
	// issued the CA certificate, in RFC 2253 form. It equals subject for a
	// self-signed root.
	Issuer string `json:"issuer"`
	// serialNumber is the serial number of the CA certificate, as upper-case
	// hexadecimal byte pairs separated by colons (the way openssl prints it).
	SerialNumber string `json:"serialNumber"`
	// notBefore is the time from which the CA certificate is valid.
	NotBefore metav1.Time `json:"notBefore"`
	// notAfter is the time at which the CA certificate expires. As with
	// cert-manager, a certificate this signer issues may end later (it then
	// stops verifying when the CA expires, unless the CA is renewed with the
	// same key); signet started with --cap-to-ca-expiry never signs past it.
	NotAfter metav1.Time `json:"notAfter"`
	// fingerprintSHA256 is the SHA-256 digest of the CA certificate's DER
	// encoding, as upper-case hexadecimal byte pairs separated by colons (the
	// way `openssl x509 -fingerprint -sha256` prints it). Compare it with the
	// certificate a client trusts.
	FingerprintSHA256 string `json:"fingerprintSHA256"`
	// keyAlgorithm describes the CA's public key, such as "ECDSA P-256",
	// "RSA 2048" or "Ed25519".
	KeyAlgorithm string `json:"keyAlgorithm"`
}

// SignerStatus is what signet last observed about a signer.
type SignerStatus struct {
	// conditions are the signer's current conditions. The Ready condition
	// says whether the signer can sign now and, if not, why. Its reasons:
	// Ready; Pending (the CA Secret is not read yet); InvalidIssuerSpec;
	// SecretNotFound; SecretInvalid (tls.crt, tls.key or ca.crt missing or
	// unparsable); KeyMismatch (tls.key is not the key of tls.crt); NotCA;
	// CAExpired; CANotYetValid; UnsupportedIssuerType (signet does not sign
	// with Vault, ACME or Venafi issuers). CA signers whose CA certificate
	// parsed also have a ShortLivedCA condition: True (reason
	// CAExpiresWithinDefaultDuration) when the CA ends before a certificate of
	// the default duration (90 days, or --max-duration if shorter) signed now
	// would, False (CAOutlivesDefaultDuration) otherwise.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ca describes the CA certificate that a CA signer signs with. It is
	// omitted for other signer types and while the CA's Secret cannot be read.
	// +optional
	CA *CertificateAuthority `json:"ca,omitempty"`
}

// +genclient
// +genclient:onlyVerbs=get,list,watch
// +genclient:method=Sign,verb=create,subresource=sign,input=github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1.SigningRequest,result=github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1.SigningRequest
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Signer is a certificate signer backed by a cert-manager Issuer. signet
// keeps one Signer, with the same name and namespace, for every Issuer. Once
// a CertificateSigningRequest whose spec.signerName equals the Signer's
// spec.signerName is approved, signet signs it with the Issuer. Signers are
// read-only: change the Issuer to change the Signer.
type Signer struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata; name and namespace are those of the Issuer.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec identifies the signer and the Issuer behind it.
	Spec SignerSpec `json:"spec"`
	// status is what signet last observed about the signer.
	// +optional
	Status SignerStatus `json:"status,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SignerList is a list of Signers.
type SignerList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the Signers.
	Items []Signer `json:"items"`
}

// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=get,list,watch
// +genclient:method=Sign,verb=create,subresource=sign,input=github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1.SigningRequest,result=github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1.SigningRequest
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterSigner is a cluster-scoped certificate signer backed by a
// cert-manager ClusterIssuer. signet keeps one ClusterSigner, with the same
// name, for every ClusterIssuer. Once a CertificateSigningRequest whose
// spec.signerName equals the ClusterSigner's spec.signerName is approved,
// signet signs it with the ClusterIssuer. ClusterSigners are read-only:
// change the ClusterIssuer to change the ClusterSigner.
type ClusterSigner struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata; the name is that of the ClusterIssuer.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec identifies the signer and the ClusterIssuer behind it.
	Spec SignerSpec `json:"spec"`
	// status is what signet last observed about the signer.
	// +optional
	Status SignerStatus `json:"status,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterSignerList is a list of ClusterSigners.
type ClusterSignerList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the ClusterSigners.
	Items []ClusterSigner `json:"items"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SigningRequest asks a signer to sign a certificate request synchronously:
// POST it to signers/<name>/sign or clustersigners/<name>/sign and the
// response carries the certificate. Permission to create that subresource is
// the approval. Nothing is stored.
type SigningRequest struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// spec is the request.
	Spec SigningRequestSpec `json:"spec"`
	// status is the result, set in the response.
	// +optional
	Status SigningRequestStatus `json:"status,omitempty"`
}

// SigningRequestSpec is what to sign, with the same policy as a
// CertificateSigningRequest to the same signer.
type SigningRequestSpec struct {
	// request is a PEM-encoded PKCS#10 certificate request ("CERTIFICATE
	// REQUEST" block); base64 in JSON. Its signature must verify.
	// +listType=atomic
	Request []byte `json:"request"`
	// expirationSeconds is the requested validity. Default 90 days, at least
	// 600; capped by the signer's --max-duration and the CA's expiry.
	// +optional
	ExpirationSeconds *int32 `json:"expirationSeconds,omitempty"`
	// usages are certificates.k8s.io key usages such as "digital signature",
	// "key encipherment", "server auth", "client auth". Default: digital
	// signature and key encipherment.
	// +optional
	// +listType=atomic
	Usages []string `json:"usages,omitempty"`
	// isCA asks for a CA certificate.
	// +optional
	IsCA bool `json:"isCA,omitempty"`
}

// SigningRequestStatus is the signed result.
type SigningRequestStatus struct {
	// certificate is the PEM-encoded certificate followed by any intermediate
	// CA certificates (the root is not included).
	// +optional
	// +listType=atomic
	Certificate []byte `json:"certificate,omitempty"`
	// ca is the PEM-encoded CA certificate to trust the certificate with.
	// +optional
	// +listType=atomic
	CA []byte `json:"ca,omitempty"`
	// notBefore is when the certificate becomes valid.
	// +optional
	NotBefore metav1.Time `json:"notBefore,omitempty"`
	// notAfter is when the certificate expires.
	// +optional
	NotAfter metav1.Time `json:"notAfter,omitempty"`
}
