package app

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/google/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/controller"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
)

// runController runs the CSR controller while this replica holds the lease.
// The controller signs and writes only while this replica's last renewal is
// younger than the renew deadline (renewalTracker), which is shorter than
// the lease another replica must see expire before it takes over: a replica
// paused past its lease stops signing when it resumes, before the elector
// notices. The check and the write are two steps, so a pause between them
// can still send one write; it carries the resource version read and so
// conflicts if the new leader wrote first: no CSR gets two certificates.
// Losing the lease ends the process. A replica that is told to stop releases
// the lease at once so the next one takes over without waiting it out.
//
// done is closed once the controller (and the lease release) has finished.
func runController(ctx context.Context, o *Options, kube kubernetes.Interface, cache *issuers.Cache, pipeline *issuance.Pipeline, pods *podCertificates, health *leaderelection.HealthzAdaptor, done chan<- struct{}) error {
	var leading func() bool // nil without leader election: always
	names, err := o.signerNames()
	if err != nil {
		return err
	}
	start := func(ctx context.Context) {
		factory := informers.NewSharedInformerFactory(kube, 0)
		c, err := controller.New(kube, factory.Certificates().V1().CertificateSigningRequests(), cache, pipeline, controller.Options{
			WriteCAAnnotation:         o.WriteCAAnnotation,
			Workers:                   o.Workers,
			WaitingApprovalEventDelay: o.WaitingApprovalEventDelay,
			CertificateIssuedEvents:   o.CertificateIssuedEvents,
			Leading:                   leading,
			SignerNames:               names,
		})
		if err != nil {
			klog.ErrorS(err, "Cannot build the CSR controller")
			os.Exit(1)
		}
		runPods := pods.controllers(ctx, factory, leading)
		factory.Start(ctx.Done())
		var wg sync.WaitGroup
		for _, run := range runPods {
			wg.Go(func() { run(ctx) })
		}
		c.Run(ctx)
		wg.Wait()
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
	tracker := newRenewalTracker(lock, le.RenewDeadline.Duration, clock.RealClock{})
	leading = tracker.Leading
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            tracker,
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
