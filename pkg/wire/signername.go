package wire

import "strings"

// IssuerKind is the kind of a cert-manager issuer object.
type IssuerKind string

const (
	KindIssuer        IssuerKind = "Issuer"
	KindClusterIssuer IssuerKind = "ClusterIssuer"
)

// IssuerRef identifies one issuer. Namespace is empty for a ClusterIssuer.
type IssuerRef struct {
	Kind      IssuerKind
	Namespace string
	Name      string
}

func (r IssuerRef) String() string {
	if r.Kind == KindClusterIssuer {
		return "ClusterIssuer " + r.Name
	}
	return "Issuer " + r.Namespace + "/" + r.Name
}

// Signer name prefixes: spec.signerName of a CSR is
// issuers.cert-manager.io/<namespace>.<name> or clusterissuers.cert-manager.io/<name>.
const (
	issuersType        = "issuers"
	clusterIssuersType = "clusterissuers"
)

// SignerName is the CSR spec.signerName that selects this issuer.
func (r IssuerRef) SignerName() string {
	if r.Kind == KindClusterIssuer {
		return clusterIssuersType + "." + Group + "/" + r.Name
	}
	return issuersType + "." + Group + "/" + r.Namespace + "." + r.Name
}

// ParseSignerName parses a CSR signerName the way cert-manager does: split on
// "/" into exactly two parts; the left part splits at its first "." into the
// type (issuers or clusterissuers) and the group (cert-manager.io); for
// issuers the right part splits at its first "." into namespace and name (the
// name may contain dots); for clusterissuers the whole right part is the name.
// ok is false for any name that is not one of signet's: such names are ignored.
func ParseSignerName(signerName string) (ref IssuerRef, ok bool) {
	left, right, found := strings.Cut(signerName, "/")
	if !found || strings.Contains(right, "/") {
		return IssuerRef{}, false
	}
	typ, group, found := strings.Cut(left, ".")
	if !found || group != Group {
		return IssuerRef{}, false
	}
	switch typ {
	case issuersType:
		ns, name, found := strings.Cut(right, ".")
		if !found || ns == "" || name == "" {
			return IssuerRef{}, false
		}
		return IssuerRef{Kind: KindIssuer, Namespace: ns, Name: name}, true
	case clusterIssuersType:
		if right == "" {
			return IssuerRef{}, false
		}
		return IssuerRef{Kind: KindClusterIssuer, Name: right}, true
	}
	return IssuerRef{}, false
}
