package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"

	"github.com/signet-dev/signet/internal/issuancetest"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
)

// TestRun: the controller, started on informers over the fake clientset,
// signs an approved CSR created after it started, and retries a waiting one
// when its issuer changes.
func TestRun(t *testing.T) {
	f := newFixture(t, Options{Workers: 2}, issuance.Policy{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		go f.informer.RunWithContext(ctx)
		f.ctrl.Run(ctx)
	}()

	create := func(name string, ref issuers.Ref) {
		csr := &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				SignerName: ref.SignerName(), Request: issuancetest.CSR(t, f.key, name), Username: "alice",
				Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature},
			},
		}
		approved(csr)
		if _, err := f.kube.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	issued := func(name string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			csr, err := f.kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
			return err == nil && len(csr.Status.Certificate) > 0, nil
		}
	}

	create("now", refCA)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, issued("now")); err != nil {
		t.Fatalf("an approved CSR was not signed: %v", err)
	}

	// Waits for an issuer that does not exist yet; its arrival re-drives it.
	later := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "later"}
	create("later", later)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return slices.ContainsFunc(f.drainEvents(), func(e string) bool { return strings.Contains(e, "IssuerNotFound") }), nil
	}); err != nil {
		t.Fatalf("no IssuerNotFound event: %v", err)
	}
	f.source.Set(issuancetest.CAState(t, later, f.root))
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, issued("later")); err != nil {
		t.Fatalf("a CSR waiting for its issuer was not signed once the issuer came: %v", err)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// enqueueSigner requeues the unfinished CSRs of one signer, and only those.
func TestEnqueueSigner(t *testing.T) {
	f := newFixture(t, Options{}, issuance.Policy{})
	f.addCSR("waiting", refCA.SignerName(), approved)
	f.addCSR("done", refCA.SignerName(), approved, func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("x") })
	f.addCSR("elsewhere", refSelf.SignerName(), approved)
	f.ctrl.enqueueSigner(refCA)
	if n := f.ctrl.queue.Len(); n != 1 {
		t.Fatalf("%d queued, want 1", n)
	}
	if key, _ := f.ctrl.queue.Get(); key != "waiting" {
		t.Errorf("queued %q, want waiting", key)
	}
}

// Other signers' CSRs are cached as a name; signet's keep their spec.
func TestSlimCSR(t *testing.T) {
	full := func(signer string) *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "c", UID: "u", ResourceVersion: "7", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
			Spec:       certificatesv1.CertificateSigningRequestSpec{SignerName: signer, Request: []byte("pem"), Username: "alice"},
		}
	}
	obj, _ := slimCSR(full("kubernetes.io/kubelet-serving"))
	other := obj.(*certificatesv1.CertificateSigningRequest)
	if other.Name != "c" || other.UID != "u" || other.ResourceVersion != "7" || other.Spec.SignerName != "kubernetes.io/kubelet-serving" ||
		other.Spec.Request != nil || other.Spec.Username != "" || other.ManagedFields != nil {
		t.Errorf("another signer's CSR kept as %+v", other)
	}
	obj, _ = slimCSR(full(refCA.SignerName()))
	ours := obj.(*certificatesv1.CertificateSigningRequest)
	if string(ours.Spec.Request) != "pem" || ours.Spec.Username != "alice" || ours.ManagedFields != nil {
		t.Errorf("signet's CSR kept as %+v", ours)
	}
	if obj, _ := slimCSR("not a CSR"); obj != "not a CSR" {
		t.Errorf("a foreign object changed")
	}
}

// A deleted CSR's memory goes, whether the informer saw the deletion or not.
func TestForgetTombstone(t *testing.T) {
	f := newFixture(t, Options{}, issuance.Policy{})
	csr := f.addCSR("req", refCA.SignerName())
	f.ctrl.waitingApproval.Store(csr.UID, struct{}{})
	f.ctrl.forget(cache.DeletedFinalStateUnknown{Key: "req", Obj: csr})
	if _, ok := f.ctrl.waitingApproval.Load(csr.UID); ok {
		t.Error("remembered after deletion")
	}
}

func TestRequesterOf(t *testing.T) {
	csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
		Username: "alice", UID: "1", Groups: []string{"devs"}, Extra: map[string]certificatesv1.ExtraValue{"scope": {"a", "b"}}}}
	r := requesterOf(csr)
	if r.Username != "alice" || r.UID != "1" || !slices.Equal(r.Groups, []string{"devs"}) || !slices.Equal(r.Extra["scope"], []string{"a", "b"}) {
		t.Errorf("requester %+v", r)
	}
}
