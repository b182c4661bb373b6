package app

import (
	"context"
	"fmt"
	"os"

	"github.com/google/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/signet-dev/signet/pkg/controller"
	"github.com/signet-dev/signet/pkg/issuers"
)

// runController runs the CSR controller while this replica holds the lease.
// Losing the lease ends the process, so that a replica never signs while
// another believes it is the leader; a replica that is told to stop releases
// the lease at once so the next one takes over without waiting it out.
//
// done is closed once the controller (and the lease release) has finished.
func runController(ctx context.Context, o *Options, kube kubernetes.Interface, cache *issuers.Cache, health *leaderelection.HealthzAdaptor, done chan<- struct{}) error {
	start := func(ctx context.Context) {
		factory := informers.NewSharedInformerFactory(kube, 0)
		c, err := controller.New(kube, factory.Certificates().V1().CertificateSigningRequests(), cache, controller.Options{
			ClusterResourceNamespace:    o.ClusterResourceNamespace,
			Policy:                      o.signingPolicy(),
			WriteCAAnnotation:           o.WriteCAAnnotation,
			ClusterSignerReferenceCheck: o.ClusterSignerReferenceCheck,
			Workers:                     o.Workers,
			WaitingApprovalEventDelay:   o.WaitingApprovalEventDelay,
			CertificateIssuedEvents:     o.CertificateIssuedEvents,
		})
		if err != nil {
			klog.ErrorS(err, "Cannot build the CSR controller")
			os.Exit(1)
		}
		factory.Start(ctx.Done())
		c.Run(ctx)
	}
	le := o.LeaderElection
	if !le.LeaderElect {
		go func() {
			defer close(done)
			start(ctx)
		}()
		return nil
	}
	host, _ := os.Hostname()
	id := host + "_" + uuid.NewString()
	lock, err := resourcelock.New(le.ResourceLock, le.ResourceNamespace, le.ResourceName,
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return fmt.Errorf("leader election lock: %w", err)
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            "signet",
		WatchDog:        health,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: start,
			OnStoppedLeading: func() {
				if ctx.Err() != nil {
					klog.InfoS("Released the leader lease", "identity", id)
					return
				}
				klog.ErrorS(nil, "Lost the leader lease; exiting", "identity", id)
				klog.FlushAndExit(klog.ExitFlushTimeout, 1)
			},
			OnNewLeader: func(leader string) {
				if leader != id {
					klog.InfoS("Another replica leads the CSR controller", "leader", leader)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	go func() {
		defer close(done)
		elector.Run(ctx) // returns after releasing the lease (ReleaseOnCancel)
	}()
	return nil
}
