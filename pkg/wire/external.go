package wire

import (
	"fmt"
	"regexp"
	"strings"
)

// Resource names are DNS labels; API groups of CRDs are DNS subdomains with
// at least one dot.
var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	apiGroup = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`)
)

const maxGroupLength = 253

// ExternalIssuer is a cert-manager external issuer resource (AWS Private CA,
// Google CAS, step-issuer, ...): a CRD of another API group whose controller
// signs cert-manager CertificateRequests. Its CSR signer names are
// <resource>.<group>/<namespace>.<name> (namespaced) and
// <resource>.<group>/<name> (cluster-scoped), as cert-manager's issuer-lib
// names them.
type ExternalIssuer struct {
	// Resource is <resource>.<group>: awspcaissuers.awspca.cert-manager.io.
	Resource string
	// Kind is the scope: KindIssuer (namespaced) or KindClusterIssuer.
	Kind IssuerKind
}

// ResourceAndGroup splits Resource at its first ".".
func (e ExternalIssuer) ResourceAndGroup() (resource, group string) {
	resource, group, _ = strings.Cut(e.Resource, ".")
	return resource, group
}

func (e ExternalIssuer) String() string {
	if e.Kind == KindClusterIssuer {
		return e.Resource + ",cluster"
	}
	return e.Resource
}

// ParseExternalIssuer parses <resource>.<group>[,cluster], the form of
// signet's --external-issuer flag.
func ParseExternalIssuer(s string) (ExternalIssuer, error) {
	spec, scope, scoped := strings.Cut(s, ",")
	e := ExternalIssuer{Resource: spec, Kind: KindIssuer}
	if scoped {
		if scope != "cluster" {
			return ExternalIssuer{}, fmt.Errorf("%q: after the comma only \"cluster\" may follow (a cluster-scoped issuer resource)", s)
		}
		e.Kind = KindClusterIssuer
	}
	resource, group, found := strings.Cut(spec, ".")
	if !found || resource == "" || group == "" {
		return ExternalIssuer{}, fmt.Errorf("%q: want <resource>.<group>, e.g. awspcaissuers.awspca.cert-manager.io", s)
	}
	if !dnsLabel.MatchString(resource) {
		return ExternalIssuer{}, fmt.Errorf("%q: resource %q is not a lower-case DNS label, as resource names are", s, resource)
	}
	if len(group) > maxGroupLength || !apiGroup.MatchString(group) {
		return ExternalIssuer{}, fmt.Errorf("%q: group %q is not a DNS subdomain with a dot, as API groups of CRDs are", s, group)
	}
	if group == Group && (resource == issuersType || resource == clusterIssuersType) {
		return ExternalIssuer{}, fmt.Errorf("%q: cert-manager's own issuers are not external issuers", s)
	}
	return e, nil
}

// SignerNames parses CSR signer names: cert-manager's own, and those of the
// external issuer resources it is given. The zero value knows cert-manager's only.
type SignerNames struct {
	external map[string]IssuerKind
}

// NewSignerNames returns a parser for cert-manager's signer names and those
// of external. A resource given twice is an error.
func NewSignerNames(external ...ExternalIssuer) (SignerNames, error) {
	n := SignerNames{external: make(map[string]IssuerKind, len(external))}
	for _, e := range external {
		if _, dup := n.external[e.Resource]; dup {
			return SignerNames{}, fmt.Errorf("external issuer %s given twice", e.Resource)
		}
		n.external[e.Resource] = e.Kind
	}
	return n, nil
}

// Parse is ParseSignerName, extended to the external issuers: for those the
// left part must be one of their resources exactly; a namespaced one's right
// part splits at its first "." into namespace and name, a cluster-scoped
// one's right part is the name.
func (n SignerNames) Parse(signerName string) (IssuerRef, bool) {
	if ref, ok := ParseSignerName(signerName); ok {
		return ref, true
	}
	left, right, found := strings.Cut(signerName, "/")
	if !found || right == "" || strings.Contains(right, "/") {
		return IssuerRef{}, false
	}
	kind, ok := n.external[left]
	if !ok {
		return IssuerRef{}, false
	}
	if kind == KindClusterIssuer {
		return IssuerRef{Kind: KindClusterIssuer, External: left, Name: right}, true
	}
	ns, name, found := strings.Cut(right, ".")
	if !found || ns == "" || name == "" {
		return IssuerRef{}, false
	}
	return IssuerRef{Kind: KindIssuer, External: left, Namespace: ns, Name: name}, true
}

// ObjectRefs are the issuers a signer object of this kind, namespace and
// name may show (IssuerRef.ObjectName): an external issuer's when the name
// starts with one of n's resources of that scope and a dot, then the
// cert-manager issuer of that name (an Issuer may be named so, too).
func (n SignerNames) ObjectRefs(kind IssuerKind, namespace, objectName string) []IssuerRef {
	var refs []IssuerRef
	for resource, k := range n.external {
		if k != kind {
			continue
		}
		if name, found := strings.CutPrefix(objectName, resource+"."); found && name != "" {
			refs = append(refs, IssuerRef{Kind: kind, External: resource, Namespace: namespace, Name: name})
		}
	}
	return append(refs, IssuerRef{Kind: kind, Namespace: namespace, Name: objectName})
}

// External lists the external issuers n knows, in no particular order.
func (n SignerNames) External() []ExternalIssuer {
	out := make([]ExternalIssuer, 0, len(n.external))
	for r, k := range n.external {
		out = append(out, ExternalIssuer{Resource: r, Kind: k})
	}
	return out
}
