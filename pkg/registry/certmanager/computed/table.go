package computed

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
)

// table renders signers for kubectl get: NAME, TYPE, READY, SIGNER NAME,
// CA EXPIRES, AGE, and with -o wide whether the CA is short-lived and the
// readiness reason and message.
type table struct{}

var columns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name of the signer, the same as its issuer's."},
	{Name: "Type", Type: "string", Description: "Issuer type: CA, SelfSigned, Vault, ACME, Venafi or Unknown."},
	{Name: "Ready", Type: "string", Description: "Whether signet can sign with this signer now."},
	{Name: "Signer Name", Type: "string", Description: "The spec.signerName a CertificateSigningRequest uses."},
	{Name: "CA Expires", Type: "string", Description: "Time until the CA certificate expires, for CA signers."},
	{Name: "Age", Type: "string", Description: "Time since the issuer was created."},
	{Name: "Short-Lived CA", Type: "string", Priority: 1, Description: "Status of the ShortLivedCA condition: True if the CA certificate ends before a certificate of the default duration signed now would."},
	{Name: "Reason", Type: "string", Priority: 1, Description: "Reason of the Ready condition."},
	{Name: "Message", Type: "string", Priority: 1, Description: "Message of the Ready condition."},
}

// signerView is what the table reads of Signer and ClusterSigner alike.
type signerView interface {
	runtime.Object
	metav1.Object
}

func (table) ConvertToTable(_ context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{}
	if o, ok := opts.(*metav1.TableOptions); !ok || !o.NoHeaders {
		t.ColumnDefinitions = columns
	}
	if lm, err := meta.ListAccessor(obj); err == nil {
		t.ResourceVersion = lm.GetResourceVersion()
		t.Continue = lm.GetContinue()
		t.RemainingItemCount = lm.GetRemainingItemCount()
	}
	now := time.Now()
	add := func(o runtime.Object) error {
		spec, status, ok := specStatus(o)
		if !ok {
			return fmt.Errorf("cannot show %T as a signer", o)
		}
		m := o.(signerView)
		ready, reason, message, shortLivedCA := "Unknown", "", "", "<none>"
		for _, c := range status.Conditions {
			switch c.Type {
			case certmanager.SignerConditionReady:
				ready, reason, message = string(c.Status), c.Reason, c.Message
			case certmanager.SignerConditionShortLivedCA:
				shortLivedCA = string(c.Status)
			}
		}
		expires := "<none>"
		if status.CA != nil {
			if left := status.CA.NotAfter.Sub(now); left > 0 {
				expires = duration.HumanDuration(left)
			} else {
				expires = "expired " + duration.HumanDuration(-left) + " ago"
			}
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells: []interface{}{m.GetName(), string(spec.Type), ready, spec.SignerName, expires,
				duration.HumanDuration(now.Sub(m.GetCreationTimestamp().Time)), shortLivedCA, reason, message},
			Object: runtime.RawExtension{Object: o},
		})
		return nil
	}
	if meta.IsListType(obj) {
		if err := meta.EachListItem(obj, add); err != nil {
			return nil, err
		}
		return t, nil
	}
	if err := add(obj); err != nil {
		return nil, err
	}
	return t, nil
}

func specStatus(o runtime.Object) (certmanager.SignerSpec, certmanager.SignerStatus, bool) {
	switch s := o.(type) {
	case *certmanager.Signer:
		return s.Spec, s.Status, true
	case *certmanager.ClusterSigner:
		return s.Spec, s.Status, true
	}
	return certmanager.SignerSpec{}, certmanager.SignerStatus{}, false
}
