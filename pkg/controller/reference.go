package controller

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilcache "k8s.io/apimachinery/pkg/util/cache"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/wire"
)

// Reference decisions are cached briefly, as kube-apiserver's own webhook
// authorizer caches its decisions: a burst of CSRs from one requester then
// costs one SubjectAccessReview, not one each, which halves the API requests
// a CSR costs. A grant or revocation takes effect within the TTL.
const (
	referenceAllowedTTL = 10 * time.Second
	referenceDeniedTTL  = 2 * time.Second
	referenceCacheSize  = 4096
)

func newReferenceCache() *utilcache.LRUExpireCache {
	return utilcache.NewLRUExpireCache(referenceCacheSize)
}

// referenceKey identifies a decision: the requester's whole identity and the signer.
func referenceKey(csr *certificatesv1.CertificateSigningRequest, ref issuers.Ref) string {
	groups := slices.Clone(csr.Spec.Groups)
	sort.Strings(groups)
	extraKeys := make([]string, 0, len(csr.Spec.Extra))
	for k := range csr.Spec.Extra {
		extraKeys = append(extraKeys, k)
	}
	sort.Strings(extraKeys)
	extra := make([][]string, 0, len(extraKeys))
	for _, k := range extraKeys {
		extra = append(extra, append([]string{k}, csr.Spec.Extra[k]...))
	}
	b, _ := json.Marshal([]interface{}{csr.Spec.Username, csr.Spec.UID, groups, extra, ref.Kind, ref.Namespace, ref.Name})
	return string(b)
}

// mayReference asks kube-apiserver whether the CSR's requester may reference
// the signer: first by name, then with the wildcard name, as cert-manager does,
// so that a Role with resourceNames ["*"] works too.
func (c *Controller) mayReference(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, ref issuers.Ref) (bool, error) {
	key := referenceKey(csr, ref)
	if v, ok := c.references.Get(key); ok {
		return v.(bool), nil
	}
	allowed, err := c.reviewReference(ctx, csr, ref)
	if err != nil {
		return false, err
	}
	ttl := referenceDeniedTTL
	if allowed {
		ttl = referenceAllowedTTL
	}
	c.references.Add(key, allowed, ttl)
	return allowed, nil
}

func (c *Controller) reviewReference(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, ref issuers.Ref) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	attrs := &authorizationv1.ResourceAttributes{
		Group:     wire.Group,
		Resource:  "signers",
		Verb:      wire.ReferenceVerb,
		Namespace: ref.Namespace,
	}
	if ref.Kind == issuers.KindClusterIssuer {
		attrs.Resource, attrs.Namespace = "clustersigners", ""
	}
	for _, name := range []string{ref.Name, "*"} {
		a := *attrs
		a.Name = name
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               csr.Spec.Username,
			Groups:             csr.Spec.Groups,
			UID:                csr.Spec.UID,
			Extra:              extra,
			ResourceAttributes: &a,
		}}
		resp, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		if resp.Status.Allowed {
			return true, nil
		}
	}
	return false, nil
}
