package computed

import (
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
)

// Fields computes a signer's metadata, spec and status from its issuer's State.
// The labels are the issuer's own, so label selectors select the same objects
// on both; the labels map is shared, read-only.
func Fields(s *issuers.State) (metav1.ObjectMeta, certmanager.SignerSpec, certmanager.SignerStatus) {
	iss := s.Issuer
	m := metav1.ObjectMeta{
		Name:              iss.Name,
		Namespace:         iss.Namespace,
		UID:               iss.UID,
		ResourceVersion:   strconv.FormatUint(s.ResourceVersion, 10),
		CreationTimestamp: iss.CreationTimestamp,
		Labels:            iss.Labels,
	}
	spec := certmanager.SignerSpec{
		SignerName: iss.Ref.SignerName(),
		IssuerRef:  certmanager.IssuerReference{Group: issuers.Group, Kind: string(iss.Kind), Name: iss.Name},
		Type:       certmanager.SignerType(iss.Type),
	}
	ready := metav1.ConditionFalse
	if s.Ready {
		ready = metav1.ConditionTrue
	}
	status := certmanager.SignerStatus{
		Conditions: []metav1.Condition{{
			Type:               certmanager.SignerConditionReady,
			Status:             ready,
			Reason:             s.Reason,
			Message:            s.Message,
			LastTransitionTime: metav1.NewTime(s.LastTransitionTime),
		}},
	}
	if e := s.CAExpiry; e != nil {
		short := metav1.ConditionFalse
		if e.ShortLived {
			short = metav1.ConditionTrue
		}
		status.Conditions = append(status.Conditions, metav1.Condition{
			Type:               certmanager.SignerConditionShortLivedCA,
			Status:             short,
			Reason:             e.Reason,
			Message:            e.Message,
			LastTransitionTime: metav1.NewTime(e.LastTransitionTime),
		})
	}
	if s.CA != nil {
		c := s.CA.Certificate
		status.CA = &certmanager.CertificateAuthority{
			Subject:           c.Subject.String(),
			Issuer:            c.Issuer.String(),
			SerialNumber:      signers.SerialNumber(c),
			NotBefore:         metav1.NewTime(c.NotBefore),
			NotAfter:          metav1.NewTime(c.NotAfter),
			FingerprintSHA256: signers.FingerprintSHA256(c),
			KeyAlgorithm:      signers.KeyAlgorithm(c.PublicKey),
		}
	}
	return m, spec, status
}
