package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
)

// TestSIGKILLMidBurst kills signet with SIGKILL while it works through a burst
// of approved CSRs, starts it again, and checks that every CSR ends issued
// and that no certificate ever changes once written (issued exactly once).
func TestSIGKILLMidBurst(t *testing.T) {
	const n = 500
	signer := newCAIssuerNamespace(t, "burst", "ca")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Record every certificate write from here on.
	writes := watchCertificates(ctx, t)
	names := writes.createTracked(t, signer, "burst", n)
	issued := writes.issued
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
	if missing := writes.confirmFromAPI(ctx, t, names); missing > 0 {
		t.Errorf("%d of %d CSRs never issued", missing, n)
	}
	if changed := writes.changedNames(); len(changed) > 0 {
		t.Errorf("certificates changed after first written (issued twice): %v", changed)
	}
	// A watch that ended early saw only some of the writes: a second
	// certificate written after it ended would have gone unnoticed.
	if err := writes.watchErr(); err != nil {
		t.Errorf("the CSR watch recording certificate writes ended early: %v", err)
	}
}
