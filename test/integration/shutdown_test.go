package integration

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/test/framework"
)

// TestSIGTERMReleasesTheLease: a signet told to stop hands the controller's
// Lease over at once instead of letting the next replica wait it out.
func TestSIGTERMReleasesTheLease(t *testing.T) {
	ctx := context.Background()
	leases := env.kube.CoordinationV1().Leases("signet-system")
	eventually(t, "a leader", func() (bool, error) {
		l, err := leases.Get(ctx, "signet", metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
	})
	env.signet.Stop()
	l, err := leases.Get(ctx, "signet", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
		t.Errorf("after SIGTERM the Lease is still held by %q", *l.Spec.HolderIdentity)
	}
	start := time.Now()
	s, err := framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: baseSignetArgs})
	if err != nil {
		t.Fatal(err)
	}
	env.signet = s
	eventually(t, "the new process to lead", func() (bool, error) {
		l, err := leases.Get(ctx, "signet", metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
	})
	t.Logf("new leader %s after start", time.Since(start).Round(time.Millisecond))
}
