// Package clustersigner is the storage of clustersigners: one per cert-manager ClusterIssuer.
package clustersigner

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/registry/certmanager/computed"
)

// NewREST returns the storage of clustersigners, computed from source.
func NewREST(source computed.Source) *computed.REST {
	return computed.NewREST(computed.Resource{
		Kind:         issuers.KindClusterIssuer,
		Resource:     certmanager.Resource("clustersigners"),
		SingularName: "clustersigner",
		Namespaced:   false,
		Categories:   []string{"cert-manager"}, // cert-manager's CRDs' category: kubectl get cert-manager lists signers too
		New:          func() runtime.Object { return &certmanager.ClusterSigner{} },
		NewList:      func() runtime.Object { return &certmanager.ClusterSignerList{} },
		Build: func(m metav1.ObjectMeta, spec certmanager.SignerSpec, status certmanager.SignerStatus) runtime.Object {
			return &certmanager.ClusterSigner{ObjectMeta: m, Spec: spec, Status: status}
		},
		SetItems: func(list runtime.Object, items []runtime.Object) {
			l := list.(*certmanager.ClusterSignerList)
			l.Items = make([]certmanager.ClusterSigner, len(items))
			for i, o := range items {
				l.Items[i] = *o.(*certmanager.ClusterSigner)
			}
		},
	}, source)
}
