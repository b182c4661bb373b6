package controller

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
	"github.com/signet-dev/signet/pkg/issuers"
)

// bridged is the CertificateRequest made for CSR name, waiting until the
// backend's cache and the fake client both have it.
func (f *fixture) bridged(name string) *unstructured.Unstructured {
	f.t.Helper()
	crName := certificaterequest.Name(issuance.Object{Kind: issuance.KindCertificateSigningRequest, Name: name, UID: types.UID("uid-" + name)})
	var cr *unstructured.Unstructured
	if err := wait.PollUntilContextTimeout(f.t.Context(), 10*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		cr, err = f.dyn.Resource(certificaterequest.GVR).Namespace("ns").Get(ctx, crName, metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		f.t.Fatalf("no CertificateRequest ns/%s for CSR %s", crName, name)
	}
	return cr
}

func (f *fixture) certificateRequests() int {
	f.t.Helper()
	list, err := f.dyn.Resource(certificaterequest.GVR).Namespace("").List(f.t.Context(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(list.Items)
}

// A CSR for an issuer cert-manager signs with becomes one approved
// CertificateRequest; while it waits there is one event, however often the
// CSR is synced; when cert-manager has signed, the CertificateRequest's change
// re-drives the CSR and its certificate is written.
func TestBridgedCSRThroughItsCertificateRequest(t *testing.T) {
	f := newFixture(t, Options{WaitingApprovalEventDelay: time.Nanosecond}, issuance.Policy{})
	f.addCSR("app", refVaultUp.SignerName(), func(c *certificatesv1.CertificateSigningRequest) {
		c.Status.Conditions = append(c.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "KubectlApprove", Message: "This CSR was approved by kubectl certificate approve."})
	})
	for range 3 {
		if err := f.ctrl.sync(t.Context(), "app"); err != nil {
			t.Fatal(err)
		}
	}
	if events := f.drainEvents(); len(events) != 1 || !strings.HasPrefix(events[0], "Warning CertificateRequestPending Waiting for Vault Issuer ns/vault-up to sign CertificateRequest ns/app-") {
		t.Errorf("events %q, want one CertificateRequestPending naming the issuer and the CertificateRequest", events)
	}
	if n := f.certificateRequests(); n != 1 {
		t.Fatalf("%d CertificateRequests, want one", n)
	}
	cr := f.bridged("app")
	conds, _, _ := unstructured.NestedSlice(cr.Object, "status", "conditions")
	if len(conds) != 1 || !strings.Contains(conds[0].(map[string]interface{})["message"].(string), "KubectlApprove: This CSR was approved by kubectl certificate approve.") {
		t.Errorf("CertificateRequest conditions %v, want Approved naming the CSR's approval", conds)
	}
	if len(f.writes()) != 0 {
		t.Errorf("CSR writes %v while waiting", f.writes())
	}

	// cert-manager signs; the queue gets the CSR back from the
	// CertificateRequest's change.
	for f.ctrl.queue.Len() > 0 {
		k, _ := f.ctrl.queue.Get()
		f.ctrl.queue.Done(k)
	}
	ca := testpki.MustCA(testpki.CAOptions{CommonName: "vault CA"})
	leaf := leafFor(t, ca, f.key.Public())
	signed := cr.DeepCopy()
	conds = append(conds, map[string]interface{}{"type": "Ready", "status": "True", "reason": "Issued", "message": "Certificate fetched from issuer successfully"})
	_ = unstructured.SetNestedSlice(signed.Object, conds, "status", "conditions")
	_ = unstructured.SetNestedField(signed.Object, base64.StdEncoding.EncodeToString(leaf), "status", "certificate")
	_ = unstructured.SetNestedField(signed.Object, base64.StdEncoding.EncodeToString(ca.CertPEM()), "status", "ca")
	if _, err := f.dyn.Resource(certificaterequest.GVR).Namespace("ns").UpdateStatus(t.Context(), signed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var key string
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		if f.ctrl.queue.Len() == 0 {
			return false, nil
		}
		key, _ = f.ctrl.queue.Get()
		f.ctrl.queue.Done(key)
		return key == "app", nil
	}); err != nil {
		t.Fatalf("the CertificateRequest's change did not requeue the CSR (last key %q)", key)
	}
	// The backend's cache may lag the fake client by a moment.
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := f.ctrl.sync(ctx, "app"); err != nil {
			return false, err
		}
		return len(f.current("app").Status.Certificate) > 0, nil
	}); err != nil {
		t.Fatalf("certificate not written: %v", err)
	}
	if got := string(f.current("app").Status.Certificate); got != string(leaf) {
		t.Errorf("status.certificate is not the CertificateRequest's")
	}
}

// leafFor is a certificate for pub signed by ca, as PEM.
func leafFor(t *testing.T, ca *testpki.CA, pub crypto.PublicKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "app"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return testpki.CertPEM(mustParse(t, der))
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A CSR deleted while its CertificateRequest waits takes it along, even
// before the garbage collector would.
func TestDeletedCSRWithdrawsItsCertificateRequest(t *testing.T) {
	f := newFixture(t, Options{WaitingApprovalEventDelay: time.Nanosecond}, issuance.Policy{})
	csr := f.addCSR("gone", refVaultUp.SignerName(), approved)
	if err := f.ctrl.sync(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	f.bridged("gone")
	// A second CSR's CertificateRequest stays.
	f.addCSR("stays", refVaultUp.SignerName(), approved)
	if err := f.ctrl.sync(t.Context(), "stays"); err != nil {
		t.Fatal(err)
	}
	f.bridged("stays")

	if err := f.informer.GetIndexer().Delete(csr); err != nil {
		t.Fatal(err)
	}
	f.ctrl.forget(csr)
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := f.ctrl.sync(ctx, "gone"); err != nil {
			return false, nil // the cache may not have the CertificateRequest yet
		}
		return f.certificateRequests() == 1, nil
	}); err != nil {
		t.Fatalf("%d CertificateRequests after the CSR was deleted, want only the other CSR's", f.certificateRequests())
	}
	if _, pending := f.ctrl.deleted.Load("gone"); pending {
		t.Error("the deleted CSR is still remembered after its CertificateRequest was withdrawn")
	}
}

// Denial is the end: whatever was made for the CSR goes.
func TestDeniedCSRWithdraws(t *testing.T) {
	withdrawn := make(chan issuance.Object, 1)
	f := newFixture(t, Options{}, issuance.Policy{})
	f.ctrl.pipeline = withdrawRecorder{Pipeline: f.ctrl.pipeline, withdrawn: withdrawn}
	f.addCSR("denied", refVaultUp.SignerName(), condition(certificatesv1.CertificateDenied))
	if err := f.ctrl.sync(t.Context(), "denied"); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-withdrawn:
		if o.Name != "denied" || o.UID != "uid-denied" {
			t.Errorf("withdrew %+v", o)
		}
	default:
		t.Error("a denied CSR withdrew nothing")
	}
}

type withdrawRecorder struct {
	Pipeline
	withdrawn chan issuance.Object
}

func (w withdrawRecorder) Withdraw(_ context.Context, _ issuers.Ref, obj issuance.Object) error {
	w.withdrawn <- obj
	return nil
}
