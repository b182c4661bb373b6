package bridge

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
)

// TestSIGKILLMidBurstOfBridgedCSRs kills signet with SIGKILL while a burst
// of approved CSRs for a Vault Issuer is on its way through cert-manager,
// starts it again, and checks: one CertificateRequest per CSR (none made
// twice across the restart), each signed by cert-manager once, every CSR
// issued, and no certificate ever written twice.
func TestSIGKILLMidBurstOfBridgedCSRs(t *testing.T) {
	const n = 200
	createNamespace(t, "burst")
	createReadyIssuer(t, cmIssuer, "burst", "vault", vaultSpec(), nil)
	waitSignerReady(t, "burst", "vault", "Vault")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Every certificate write, from a watch on the CSRs.
	var mu sync.Mutex
	written := map[string][]byte{}
	changed := map[string]bool{}
	w, err := env.kube.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	go func() {
		for e := range w.ResultChan() {
			csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
			if !ok || e.Type == watch.Deleted || len(csr.Status.Certificate) == 0 {
				continue
			}
			mu.Lock()
			if prev, seen := written[csr.Name]; seen && string(prev) != string(csr.Status.Certificate) {
				changed[csr.Name] = true
			}
			written[csr.Name] = csr.Status.Certificate
			mu.Unlock()
		}
	}()
	issuedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(written)
	}

	names := make([]string, n)
	for i := range names {
		names[i], _ = createCSR(t, "issuers.cert-manager.io/burst.vault", "")
	}
	jobs := make(chan string)
	errs := make(chan error, n)
	var approvers sync.WaitGroup
	for range 8 {
		approvers.Go(func() {
			for name := range jobs {
				if err := setCSRCondition(ctx, name, certificatesv1.CertificateApproved); err != nil {
					errs <- fmt.Errorf("approving %s: %w", name, err)
				}
			}
		})
	}
	go func() {
		for _, name := range names {
			jobs <- name
		}
		close(jobs)
	}()
	for issuedCount() < n/10 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	env.signet.Kill()
	t.Logf("SIGKILL with %d of %d issued", issuedCount(), n)
	if err := env.signet.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	approvers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	start := time.Now()
	for issuedCount() < n && time.Since(start) < 3*time.Minute {
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("after the restart: %d of %d issued in %s", issuedCount(), n, time.Since(start).Round(time.Millisecond))

	// From the API, not only from the watch.
	missing := 0
	for _, name := range names {
		csr, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(csr.Status.Certificate) == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d CSRs never issued", missing, n)
	}
	mu.Lock()
	if len(changed) > 0 {
		t.Errorf("certificates changed after they were written (issued twice): %v", changed)
	}
	mu.Unlock()
	list, err := env.dyn.Resource(certificaterequest.GVR).Namespace("burst").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	perCSR := map[string]int{}
	for _, cr := range list.Items {
		perCSR[cr.GetLabels()[certificaterequest.LabelRequestUID]]++
		if got := env.fake.Issued("burst", cr.GetName()); got != 1 {
			t.Errorf("CertificateRequest %s signed %d times by cert-manager", cr.GetName(), got)
		}
	}
	if len(list.Items) != n || len(perCSR) != n {
		t.Errorf("%d CertificateRequests for %d CSRs, want %d for %d", len(list.Items), len(perCSR), n, n)
	}
}
