package apiserver

import (
	"fmt"
	"path"
	"slices"
	"sync"

	restful "github.com/emicklei/go-restful/v3"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	discoveryendpoint "k8s.io/apiserver/pkg/endpoints/discovery/aggregated"

	"github.com/signet-dev/signet/pkg/wire"
)

// referenceVerbManager adds the reference verb to the listed resources of one
// group. k8s.io/apiserver derives verbs from the storage's interfaces and has
// no hook for extra ones, so this wraps the aggregated discovery manager (the
// /apis document) and remembers the result to rebuild the legacy
// /apis/<group>/<version> document the same way.
type referenceVerbManager struct {
	discoveryendpoint.ResourceManager
	group     string
	resources []string

	mu       sync.Mutex
	versions map[string][]apidiscoveryv2.APIResourceDiscovery
}

func newReferenceVerbManager(inner discoveryendpoint.ResourceManager, group string, resources ...string) *referenceVerbManager {
	return &referenceVerbManager{ResourceManager: inner, group: group, resources: resources, versions: map[string][]apidiscoveryv2.APIResourceDiscovery{}}
}

func (m *referenceVerbManager) AddGroupVersion(group string, v apidiscoveryv2.APIVersionDiscovery) {
	if group == m.group {
		v.Resources = slices.Clone(v.Resources)
		for i := range v.Resources {
			r := &v.Resources[i]
			if slices.Contains(m.resources, r.Resource) && !slices.Contains(r.Verbs, wire.ReferenceVerb) {
				r.Verbs = append(slices.Clone(r.Verbs), wire.ReferenceVerb)
			}
		}
		m.mu.Lock()
		m.versions[v.Version] = v.Resources
		m.mu.Unlock()
	}
	m.ResourceManager.AddGroupVersion(group, v)
}

// installLegacy replaces the GET handler of /apis/<group>/<version> for every
// version seen, so that it lists the same verbs as aggregated discovery.
func (m *referenceVerbManager) installLegacy(container *restful.Container, serializer runtime.NegotiatedSerializer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.versions) == 0 {
		return fmt.Errorf("discovery: no version of %s was installed", m.group)
	}
	for version, resources := range m.versions {
		gv := schema.GroupVersion{Group: m.group, Version: version}
		root := path.Join("/apis", m.group, version)
		var ws *restful.WebService
		for _, s := range container.RegisteredWebServices() {
			if s.RootPath() == root {
				ws = s
			}
		}
		if ws == nil {
			return fmt.Errorf("discovery: no web service at %s", root)
		}
		// go-restful removes routes only from "dynamic" web services; this runs
		// before the server serves, so switch it on just for the removal.
		ws.SetDynamicRoutes(true)
		removed := 0
		for _, r := range ws.Routes() {
			if r.Method == "GET" && (r.Path == root || r.Path == root+"/") {
				if err := ws.RemoveRoute(r.Path, r.Method); err != nil {
					return fmt.Errorf("discovery: removing %s: %w", r.Path, err)
				}
				removed++
			}
		}
		ws.SetDynamicRoutes(false)
		if removed != 1 {
			return fmt.Errorf("discovery: expected one GET route at %s, found %d", root, removed)
		}
		discovery.NewAPIVersionHandler(serializer, gv, staticResources(legacyResources(resources))).AddToWebService(ws)
	}
	return nil
}

type staticResources []metav1.APIResource

func (s staticResources) ListAPIResources() []metav1.APIResource { return s }

// legacyResources converts aggregated discovery entries into the legacy
// APIResourceList form: subresources become "<resource>/<subresource>" entries.
func legacyResources(in []apidiscoveryv2.APIResourceDiscovery) []metav1.APIResource {
	var out []metav1.APIResource
	for _, r := range in {
		namespaced := r.Scope == apidiscoveryv2.ScopeNamespace
		res := metav1.APIResource{
			Name:         r.Resource,
			SingularName: r.SingularResource,
			Namespaced:   namespaced,
			Verbs:        r.Verbs,
			ShortNames:   r.ShortNames,
			Categories:   r.Categories,
		}
		if r.ResponseKind != nil {
			res.Kind = r.ResponseKind.Kind
		}
		out = append(out, res)
		for _, sr := range r.Subresources {
			sub := metav1.APIResource{Name: r.Resource + "/" + sr.Subresource, Namespaced: namespaced, Verbs: sr.Verbs}
			if sr.ResponseKind != nil {
				sub.Kind = sr.ResponseKind.Kind
				sub.Group, sub.Version = sr.ResponseKind.Group, sr.ResponseKind.Version
			}
			out = append(out, sub)
		}
	}
	return out
}
