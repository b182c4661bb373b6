// Package issuers is signet's read model of cert-manager Issuers and
// ClusterIssuers: it reads them through a dynamic client (signet never imports
// cert-manager), converts them into its own structs, reads exactly the CA
// Secrets they reference (told of changes by one metadata-only watch of all
// Secrets), and computes each one's readiness. The API (pkg/registry) and the
// CSR controller both read from one Cache.
package issuers

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Group is the API group of cert-manager's issuers, and of signet's signers.
const Group = "cert-manager.io"

// ReferenceVerb is the RBAC verb a CSR requester needs on a signer to use it.
// No request serves it: it exists so that RBAC rules and `kubectl auth can-i`
// name a resource that discovery lists with that verb.
const ReferenceVerb = "reference"

var (
	IssuerGVR        = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "issuers"}
	ClusterIssuerGVR = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "clusterissuers"}
)

// Kind is the kind of a cert-manager issuer object.
type Kind string

const (
	KindIssuer        Kind = "Issuer"
	KindClusterIssuer Kind = "ClusterIssuer"
)

// Type is which cert-manager issuer implementation an issuer configures.
type Type string

const (
	TypeCA         Type = "CA"
	TypeSelfSigned Type = "SelfSigned"
	TypeVault      Type = "Vault"
	TypeACME       Type = "ACME"
	TypeVenafi     Type = "Venafi"
	TypeUnknown    Type = "Unknown"
)

// Ref identifies one issuer. Namespace is empty for a ClusterIssuer.
type Ref struct {
	Kind      Kind
	Namespace string
	Name      string
}

func (r Ref) String() string {
	if r.Kind == KindClusterIssuer {
		return "ClusterIssuer " + r.Name
	}
	return "Issuer " + r.Namespace + "/" + r.Name
}

// Issuer is signet's view of a cert-manager Issuer or ClusterIssuer: only what
// signet signs with or shows.
type Issuer struct {
	Ref
	UID               types.UID
	CreationTimestamp metav1.Time
	Labels            map[string]string
	Type              Type
	// ConfigError is set when the issuer's spec can't be understood (say, a
	// field of the wrong type); the issuer is then never ready.
	ConfigError string

	CA         *CAConfig
	SelfSigned *SelfSignedConfig
}

// CAConfig is a CA issuer's spec.ca.
type CAConfig struct {
	SecretName             string
	CRLDistributionPoints  []string
	OCSPServers            []string
	IssuingCertificateURLs []string
}

// SelfSignedConfig is a SelfSigned issuer's spec.selfSigned.
type SelfSignedConfig struct {
	CRLDistributionPoints []string
}

// typeFields maps the spec field that selects an issuer implementation to its
// Type, as cert-manager's IssuerConfig does: exactly one must be set.
var typeFields = []struct {
	field string
	typ   Type
}{
	{"ca", TypeCA},
	{"selfSigned", TypeSelfSigned},
	{"vault", TypeVault},
	{"acme", TypeACME},
	{"venafi", TypeVenafi},
}

// FromUnstructured converts a cert-manager.io/v1 Issuer or ClusterIssuer.
// It never fails on a bad spec: that is recorded in ConfigError, so that the
// signer still shows up, not ready, with the reason.
func FromUnstructured(u *unstructured.Unstructured) (*Issuer, error) {
	var kind Kind
	switch u.GetKind() {
	case string(KindIssuer):
		kind = KindIssuer
	case string(KindClusterIssuer):
		kind = KindClusterIssuer
	default:
		return nil, fmt.Errorf("object %s/%s has kind %q, want Issuer or ClusterIssuer", u.GetNamespace(), u.GetName(), u.GetKind())
	}
	iss := &Issuer{
		Ref:               Ref{Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName()},
		UID:               u.GetUID(),
		CreationTimestamp: u.GetCreationTimestamp(),
		Labels:            u.GetLabels(),
		Type:              TypeUnknown,
	}
	if kind == KindClusterIssuer {
		iss.Namespace = ""
	}

	spec, found, err := unstructured.NestedMap(u.Object, "spec")
	if err != nil {
		iss.ConfigError = fmt.Sprintf("spec: %v", err)
		return iss, nil
	}
	if !found {
		iss.ConfigError = "spec is missing"
		return iss, nil
	}
	var set []string
	for _, tf := range typeFields {
		if _, ok := spec[tf.field]; ok {
			set = append(set, tf.field)
			iss.Type = tf.typ
		}
	}
	switch len(set) {
	case 0:
		iss.ConfigError = "spec names no issuer type (ca, selfSigned, vault, acme or venafi)"
		return iss, nil
	case 1:
	default:
		iss.Type = TypeUnknown
		iss.ConfigError = fmt.Sprintf("spec sets more than one issuer type: %v", set)
		return iss, nil
	}

	switch iss.Type {
	case TypeCA:
		iss.CA, err = caConfig(spec)
	case TypeSelfSigned:
		iss.SelfSigned, err = selfSignedConfig(spec)
	}
	if err != nil {
		iss.ConfigError = err.Error()
	}
	return iss, nil
}

func caConfig(spec map[string]interface{}) (*CAConfig, error) {
	c := &CAConfig{}
	var err error
	if c.SecretName, _, err = unstructured.NestedString(spec, "ca", "secretName"); err != nil {
		return c, fmt.Errorf("spec.ca.secretName: %v", err)
	}
	if c.SecretName == "" {
		return c, fmt.Errorf("spec.ca.secretName is empty")
	}
	if c.CRLDistributionPoints, _, err = unstructured.NestedStringSlice(spec, "ca", "crlDistributionPoints"); err != nil {
		return c, fmt.Errorf("spec.ca.crlDistributionPoints: %v", err)
	}
	if c.OCSPServers, _, err = unstructured.NestedStringSlice(spec, "ca", "ocspServers"); err != nil {
		return c, fmt.Errorf("spec.ca.ocspServers: %v", err)
	}
	if c.IssuingCertificateURLs, _, err = unstructured.NestedStringSlice(spec, "ca", "issuingCertificateURLs"); err != nil {
		return c, fmt.Errorf("spec.ca.issuingCertificateURLs: %v", err)
	}
	return c, nil
}

func selfSignedConfig(spec map[string]interface{}) (*SelfSignedConfig, error) {
	c := &SelfSignedConfig{}
	var err error
	if c.CRLDistributionPoints, _, err = unstructured.NestedStringSlice(spec, "selfSigned", "crlDistributionPoints"); err != nil {
		return c, fmt.Errorf("spec.selfSigned.crlDistributionPoints: %v", err)
	}
	return c, nil
}
