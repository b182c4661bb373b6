package podcertificates

import (
	"context"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/pkg/issuers"
)

// Reference decisions are cached briefly, per ServiceAccount and signer, as
// the CSR path does: a Deployment's pods share a ServiceAccount, so a rollout
// of many pods costs one SubjectAccessReview. A grant or revocation takes
// effect within the TTL.
const (
	referenceAllowedTTL = 10 * time.Second
	referenceDeniedTTL  = 2 * time.Second
	referenceCacheSize  = 4096
)

// referenceCheck asks kube-apiserver whether a pod's ServiceAccount may
// reference a signer.
type referenceCheck struct {
	kube      kubernetes.Interface
	decisions *utilcache.LRUExpireCache
}

func newReferenceCheck(kube kubernetes.Interface) *referenceCheck {
	return &referenceCheck{kube: kube, decisions: utilcache.NewLRUExpireCache(referenceCacheSize)}
}

type referenceKey struct {
	namespace, serviceAccount string
	uid                       types.UID
	ref                       issuers.Ref
}

// allowed reviews `reference` on signers/<name> in the issuer's namespace, or
// on clustersigners/<name>, for the ServiceAccount's user and groups, then
// with the wildcard name, as the CSR path does, so that a Role with
// resourceNames ["*"] works too. ClusterIssuers are always checked for pods:
// a pod has no other gate.
func (rc *referenceCheck) allowed(ctx context.Context, namespace, serviceAccount string, uid types.UID, ref issuers.Ref) (bool, error) {
	key := referenceKey{namespace, serviceAccount, uid, ref}
	if v, ok := rc.decisions.Get(key); ok {
		return v.(bool), nil
	}
	user, groups := ServiceAccountUser(namespace, serviceAccount)
	attrs := authorizationv1.ResourceAttributes{
		Group:     issuers.Group,
		Resource:  "signers",
		Verb:      issuers.ReferenceVerb,
		Namespace: ref.Namespace,
	}
	if ref.Kind == issuers.KindClusterIssuer {
		attrs.Resource, attrs.Namespace = "clustersigners", ""
	}
	allowed := false
	for _, name := range []string{ref.Name, "*"} {
		a := attrs
		a.Name = name
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user,
			Groups: groups,
			// A ServiceAccount token's user UID is the ServiceAccount's UID.
			UID:                string(uid),
			ResourceAttributes: &a,
		}}
		resp, err := rc.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		if resp.Status.Allowed {
			allowed = true
			break
		}
	}
	ttl := referenceDeniedTTL
	if allowed {
		ttl = referenceAllowedTTL
	}
	rc.decisions.Add(key, allowed, ttl)
	return allowed, nil
}
