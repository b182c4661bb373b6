package integration

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

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

// TestLosingTheLeaseEndsTheProcess: when another holder takes the Lease, the
// leader cannot renew it and exits, so that it never signs beside a new
// leader; kubelet restarts it as a follower.
func TestLosingTheLeaseEndsTheProcess(t *testing.T) {
	ctx := context.Background()
	leases := env.kube.CoordinationV1().Leases("signet-system")
	eventually(t, "a leader", func() (bool, error) {
		l, err := leases.Get(ctx, "signet", metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
	})
	pid := env.signet.Pid()
	defer func() {
		// Put a shared signet back for the tests after this one.
		env.signet.Stop()
		if _, err := leases.Get(ctx, "signet", metav1.GetOptions{}); err == nil {
			_ = leases.Delete(ctx, "signet", metav1.DeleteOptions{})
		}
		s, err := framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: baseSignetArgs})
		if err != nil {
			t.Fatalf("restarting the shared signet: %v", err)
		}
		env.signet = s
	}()

	stolen := time.Now()
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		l, err := leases.Get(ctx, "signet", metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = ptr.To("thief"), ptr.To[int32](3600)
		l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old leader to exit", func() (bool, error) {
		return syscall.Kill(pid, 0) == syscall.ESRCH, nil
	})
	t.Logf("leader exited %s after the Lease was taken", time.Since(stolen).Round(time.Millisecond))
	log, err := os.ReadFile(env.signet.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "Lost the leader lease; exiting") {
		t.Errorf("signet's log does not say it lost the lease:\n%s", tail(string(log), 2000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
