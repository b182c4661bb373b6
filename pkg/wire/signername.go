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
	// Kind is the issuer's scope: KindIssuer (namespaced) or
	// KindClusterIssuer (cluster-scoped), for external issuers too.
	Kind IssuerKind
	// External is the <resource>.<group> of an external issuer
	// (awspcaissuers.awspca.cert-manager.io); empty for cert-manager's own.
	External  string
	Namespace string
	Name      string
}

func (r IssuerRef) String() string {
	kind := string(r.Kind)
	if r.External != "" {
		kind = r.External
	}
	if r.Kind == KindClusterIssuer {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

// ObjectName is the name of the signer object (signers, clustersigners) that
// shows this issuer: the issuer's name; for an external issuer,
// <resource>.<group>.<name>, so that it is told apart from an Issuer of the
// same name.
func (r IssuerRef) ObjectName() string {
	if r.External != "" {
		return r.External + "." + r.Name
	}
	return r.Name
}

// Signer name prefixes: spec.signerName of a CSR is
// issuers.cert-manager.io/<namespace>.<name> or clusterissuers.cert-manager.io/<name>.
const (
	issuersType        = "issuers"
	clusterIssuersType = "clusterissuers"
)

// SignerName is the CSR spec.signerName that selects this issuer.
func (r IssuerRef) SignerName() string {
	if r.External != "" {
		if r.Kind == KindClusterIssuer {
			return r.External + "/" + r.Name
		}
		return r.External + "/" + r.Namespace + "." + r.Name
	}
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
