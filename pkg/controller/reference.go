package controller

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/pkg/issuers"
)

// ReferenceVerb is the verb a requester needs on a signer.
const ReferenceVerb = "reference"

// mayReference asks kube-apiserver whether the CSR's requester may reference
// the signer: first by name, then with the wildcard name, as cert-manager does,
// so that a Role with resourceNames ["*"] works too.
func (c *Controller) mayReference(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, ref issuers.Ref) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	attrs := &authorizationv1.ResourceAttributes{
		Group:     issuers.Group,
		Resource:  "signers",
		Verb:      ReferenceVerb,
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
