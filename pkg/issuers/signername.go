package issuers

import "strings"

// Signer name prefixes: spec.signerName of a CSR is
// issuers.cert-manager.io/<namespace>.<name> or clusterissuers.cert-manager.io/<name>.
const (
	issuersType        = "issuers"
	clusterIssuersType = "clusterissuers"
)

// SignerName is the CSR spec.signerName that selects this issuer.
func (r Ref) SignerName() string {
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
func ParseSignerName(signerName string) (ref Ref, ok bool) {
	left, right, found := strings.Cut(signerName, "/")
	if !found || strings.Contains(right, "/") {
		return Ref{}, false
	}
	typ, group, found := strings.Cut(left, ".")
	if !found || group != Group {
		return Ref{}, false
	}
	switch typ {
	case issuersType:
		ns, name, found := strings.Cut(right, ".")
		if !found || ns == "" || name == "" {
			return Ref{}, false
		}
		return Ref{Kind: KindIssuer, Namespace: ns, Name: name}, true
	case clusterIssuersType:
		if right == "" {
			return Ref{}, false
		}
		return Ref{Kind: KindClusterIssuer, Name: right}, true
	}
	return Ref{}, false
}
