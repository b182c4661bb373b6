package certmanager

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// SignerType is the kind of cert-manager issuer behind a signer.
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
	// Group is the issuer's API group, always cert-manager.io.
	Group string
	// Kind is Issuer or ClusterIssuer.
	Kind string
	// Name is the issuer's name; a namespaced issuer is in the signer's namespace.
	Name string
}

// SignerSpec identifies a signer and the issuer behind it.
type SignerSpec struct {
	// SignerName is the spec.signerName a CertificateSigningRequest uses to
	// ask this signer for a certificate.
	SignerName string
	// IssuerRef is the cert-manager issuer this signer is computed from.
	IssuerRef IssuerReference
	// Type is the kind of issuer.
	Type SignerType
}

// CertificateAuthority describes the CA certificate a CA signer signs with.
type CertificateAuthority struct {
	// Subject is the CA certificate's subject distinguished name.
	Subject string
	// Issuer is the distinguished name of the CA certificate's issuer.
	Issuer string
	// SerialNumber is the CA certificate's serial number.
	SerialNumber string
	// NotBefore is the start of the CA certificate's validity.
	NotBefore metav1.Time
	// NotAfter is the end of the CA certificate's validity.
	NotAfter metav1.Time
	// FingerprintSHA256 is the SHA-256 digest of the CA certificate's DER encoding.
	FingerprintSHA256 string
	// KeyAlgorithm describes the CA's public key, such as "ECDSA P-256".
	KeyAlgorithm string
}

// SignerStatus is what signet observed about a signer.
type SignerStatus struct {
	// Conditions are the signer's observed conditions, keyed by type.
	Conditions []metav1.Condition
	// CA describes the CA certificate of a CA signer.
	CA *CertificateAuthority
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Signer is a namespaced cert-manager Issuer seen as a certificate signer.
type Signer struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   SignerSpec
	Status SignerStatus
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SignerList is a list of Signers.
type SignerList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []Signer
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterSigner is a cert-manager ClusterIssuer seen as a certificate signer.
type ClusterSigner struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   SignerSpec
	Status SignerStatus
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterSignerList is a list of ClusterSigners.
type ClusterSignerList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []ClusterSigner
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SigningRequest asks a signer to sign a certificate request synchronously.
type SigningRequest struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Spec   SigningRequestSpec
	Status SigningRequestStatus
}

// SigningRequestSpec is what to sign.
type SigningRequestSpec struct {
	Request           []byte
	ExpirationSeconds *int32
	Usages            []string
	IsCA              bool
}

// SigningRequestStatus is the signed result.
type SigningRequestStatus struct {
	Certificate []byte
	CA          []byte
	NotBefore   metav1.Time
	NotAfter    metav1.Time
}
