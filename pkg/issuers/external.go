package issuers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/signet-dev/signet/pkg/wire"
)

// ExternalResource is an external issuer resource the read model serves as
// signers: the resource (with the version kube-apiserver prefers) and the
// scope, KindIssuer (namespaced) or KindClusterIssuer.
type ExternalResource struct {
	GVR  schema.GroupVersionResource
	Kind Kind
}

// Resource is <resource>.<group>, the left part of its signer names.
func (e ExternalResource) Resource() string { return e.GVR.Resource + "." + e.GVR.Group }

// FromExternal converts an external issuer object. Its spec is the external
// issuer's business; signet reads only its identity and its Ready condition.
func FromExternal(u *unstructured.Unstructured, e ExternalResource) *Issuer {
	iss := &Issuer{
		Ref:               Ref{Kind: e.Kind, External: e.Resource(), Namespace: u.GetNamespace(), Name: u.GetName()},
		UID:               u.GetUID(),
		CreationTimestamp: u.GetCreationTimestamp(),
		Labels:            u.GetLabels(),
		Type:              TypeExternal,
		ObjectKind:        u.GetKind(),
		Generation:        u.GetGeneration(),
		StatusReady:       statusCondition(u, "Ready"),
	}
	if e.Kind == KindClusterIssuer {
		iss.Namespace = ""
	}
	return iss
}

// ResolveExternal finds an external issuer resource in kube-apiserver's
// discovery: its group's preferred version, and that the resource exists
// there with the scope the flag says.
func ResolveExternal(disco discovery.DiscoveryInterface, e wire.ExternalIssuer) (ExternalResource, error) {
	resource, group := e.ResourceAndGroup()
	groups, err := disco.ServerGroups()
	if err != nil {
		return ExternalResource{}, fmt.Errorf("external issuer %s: discovery: %w", e.Resource, err)
	}
	for _, g := range groups.Groups {
		if g.Name != group {
			continue
		}
		version := g.PreferredVersion.GroupVersion
		list, err := disco.ServerResourcesForGroupVersion(version)
		if err != nil {
			return ExternalResource{}, fmt.Errorf("external issuer %s: discovery of %s: %w", e.Resource, version, err)
		}
		for _, r := range list.APIResources {
			if r.Name != resource {
				continue
			}
			if r.Namespaced != (e.Kind == KindIssuer) {
				scope := "namespaced: drop ,cluster from the flag"
				if !r.Namespaced {
					scope = "cluster-scoped: add ,cluster to the flag"
				}
				return ExternalResource{}, fmt.Errorf("external issuer %s is %s", e, scope)
			}
			gv, err := schema.ParseGroupVersion(version)
			if err != nil {
				return ExternalResource{}, err
			}
			return ExternalResource{GVR: gv.WithResource(resource), Kind: e.Kind}, nil
		}
		return ExternalResource{}, fmt.Errorf("external issuer %s: group %s has no resource %q (is its CRD installed?)", e.Resource, version, resource)
	}
	return ExternalResource{}, fmt.Errorf("external issuer %s: kube-apiserver serves no API group %q (is its CRD installed?)", e.Resource, group)
}
