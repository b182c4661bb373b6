package integration

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/signet-dev/signet/internal/testpki"
)

// TestSIGKILLMidBurst kills signet with SIGKILL while it works through a burst
// of approved CSRs, starts it again, and checks that every CSR ends issued
// and that no certificate ever changes once written (issued exactly once).
func TestSIGKILLMidBurst(t *testing.T) {
	const n = 500
	createNamespace(t, "burst")
	ca := newCA(t, testpki.CAOptions{})
	putCASecret(t, "burst", "ca", ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, "burst", "ca", nil, caSpec("ca"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Record every certificate write from here on.
	w, err := env.kube.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var (
		mu      sync.Mutex
		burst   = map[string]bool{}
		first   = map[string][]byte{}
		changed []string
	)
	go func() {
		for e := range w.ResultChan() {
			csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
			if !ok || e.Type == watch.Deleted || len(csr.Status.Certificate) == 0 {
				continue
			}
			mu.Lock()
			if !burst[csr.Name] {
				mu.Unlock()
				continue
			}
			if prev, seen := first[csr.Name]; !seen {
				first[csr.Name] = csr.Status.Certificate
			} else if !bytes.Equal(prev, csr.Status.Certificate) {
				changed = append(changed, csr.Name)
			}
			mu.Unlock()
		}
	}()

	// One requester key for all: the point is the controller, not keygen.
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/burst.ca", key: key, commonName: fmt.Sprintf("burst-%d", i)})
		mu.Lock()
		burst[names[i]] = true
		mu.Unlock()
	}
	issued := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(first)
	}
	// Approve from several goroutines, as a burst, and kill signet while
	// approvals are still arriving.
	jobs := make(chan string)
	approveErrs := make(chan error, n)
	var approvers sync.WaitGroup
	for range 8 {
		approvers.Go(func() {
			for name := range jobs {
				if err := trySetCondition(name, certificatesv1.CertificateApproved, t.Name()); err != nil {
					approveErrs <- fmt.Errorf("approving %s: %w", name, err)
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
	for issued() < n/10 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	env.signet.Kill()
	killedAt := issued()
	t.Logf("SIGKILL with %d of %d issued", killedAt, n)
	if err := env.signet.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	approvers.Wait()
	close(approveErrs)
	for err := range approveErrs {
		t.Error(err)
	}
	start := time.Now()
	deadline := time.Now().Add(3 * time.Minute)
	for issued() < n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("after restart: %d of %d issued in %s", issued(), n, time.Since(start).Round(time.Millisecond))
	// Confirm from the API, not only from the watch.
	list, err := env.kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*certificatesv1.CertificateSigningRequest{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	missing := 0
	for _, name := range names {
		csr := byName[name]
		if csr == nil || len(csr.Status.Certificate) == 0 {
			missing++
			continue
		}
		mu.Lock()
		if prev, ok := first[name]; ok && !bytes.Equal(prev, csr.Status.Certificate) {
			changed = append(changed, name)
		}
		mu.Unlock()
	}
	if missing > 0 {
		t.Errorf("%d of %d CSRs never issued", missing, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changed) > 0 {
		t.Errorf("certificates changed after first written (issued twice): %v", changed)
	}
}
