// Package signer is the storage of signers: one per cert-manager Issuer.
package signer

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/registry/certmanager/computed"
)

// NewREST returns the storage of signers, computed from source.
func NewREST(source computed.Source) *computed.REST {
	return computed.NewREST(computed.Resource{
		Kind:         issuers.KindIssuer,
		Resource:     certmanager.Resource("signers"),
		SingularName: "signer",
		Namespaced:   true,
		Categories:   []string{"cert-manager"}, // cert-manager's CRDs' category: kubectl get cert-manager lists signers too
		New:          func() runtime.Object { return &certmanager.Signer{} },
		NewList:      func() runtime.Object { return &certmanager.SignerList{} },
		Build: func(m metav1.ObjectMeta, spec certmanager.SignerSpec, status certmanager.SignerStatus) runtime.Object {
			return &certmanager.Signer{ObjectMeta: m, Spec: spec, Status: status}
		},
		SetItems: func(list runtime.Object, items []runtime.Object) {
			l := list.(*certmanager.SignerList)
			l.Items = make([]certmanager.Signer, len(items))
			for i, o := range items {
				l.Items[i] = *o.(*certmanager.Signer)
			}
		},
	}, source)
}
