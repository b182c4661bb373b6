package issuance

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/wire"
)

// ReferenceChecker decides whether a requester may use a signer.
type ReferenceChecker interface {
	MayReference(ctx context.Context, who Requester, ref issuers.Ref) (bool, error)
}

// Reference decisions are cached briefly, as kube-apiserver's own webhook
// authorizer caches its decisions: a burst of CSRs from one requester then
// costs one SubjectAccessReview, not one each, which halves the API requests
// a CSR costs. A grant or revocation takes effect within the TTL.
const (
	referenceAllowedTTL = 10 * time.Second
	referenceDeniedTTL  = 2 * time.Second
	referenceCacheSize  = 4096
)

// NewReferenceChecker asks kube-apiserver with SubjectAccessReviews whether
// a requester may reference a signer: first by name, then with the wildcard
// name, as cert-manager does, so that a Role with resourceNames ["*"] works too.
func NewReferenceChecker(kube kubernetes.Interface) ReferenceChecker {
	return &subjectAccessReviewer{kube: kube, decisions: utilcache.NewLRUExpireCache(referenceCacheSize)}
}

type subjectAccessReviewer struct {
	kube      kubernetes.Interface
	decisions *utilcache.LRUExpireCache
}

// referenceKey identifies a decision: the requester's whole identity and the signer.
func referenceKey(who Requester, ref issuers.Ref) string {
	groups := slices.Clone(who.Groups)
	sort.Strings(groups)
	extraKeys := make([]string, 0, len(who.Extra))
	for k := range who.Extra {
		extraKeys = append(extraKeys, k)
	}
	sort.Strings(extraKeys)
	extra := make([][]string, 0, len(extraKeys))
	for _, k := range extraKeys {
		extra = append(extra, append([]string{k}, who.Extra[k]...))
	}
	b, _ := json.Marshal([]interface{}{who.Username, who.UID, groups, extra, ref.Kind, ref.Namespace, ref.Name})
	return string(b)
}

func (r *subjectAccessReviewer) MayReference(ctx context.Context, who Requester, ref issuers.Ref) (bool, error) {
	key := referenceKey(who, ref)
	if v, ok := r.decisions.Get(key); ok {
		return v.(bool), nil
	}
	allowed, err := r.review(ctx, who, ref)
	if err != nil {
		return false, err
	}
	ttl := referenceDeniedTTL
	if allowed {
		ttl = referenceAllowedTTL
	}
	r.decisions.Add(key, allowed, ttl)
	return allowed, nil
}

func (r *subjectAccessReviewer) review(ctx context.Context, who Requester, ref issuers.Ref) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(who.Extra))
	for k, v := range who.Extra {
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
			User:               who.Username,
			Groups:             who.Groups,
			UID:                who.UID,
			Extra:              extra,
			ResourceAttributes: &a,
		}}
		resp, err := r.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		if resp.Status.Allowed {
			return true, nil
		}
	}
	return false, nil
}
