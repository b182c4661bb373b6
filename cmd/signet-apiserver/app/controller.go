package app

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/controller"
	"github.com/signet-dev/signet/pkg/controller/podcertificates"
	"github.com/signet-dev/signet/pkg/controller/trustbundles"
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
func runController(ctx context.Context, o *Options, kube kubernetes.Interface, cache *issuers.Cache, pipeline *issuance.Pipeline, health *leaderelection.HealthzAdaptor, done chan<- struct{}) error {
	var leading func() bool // nil without leader election: always
	start := func(ctx context.Context) {
		factory := informers.NewSharedInformerFactory(kube, 0)
		c, err := controller.New(kube, factory.Certificates().V1().CertificateSigningRequests(), cache, pipeline, controller.Options{
			WriteCAAnnotation:         o.WriteCAAnnotation,
			Workers:                   o.Workers,
			WaitingApprovalEventDelay: o.WaitingApprovalEventDelay,
			CertificateIssuedEvents:   o.CertificateIssuedEvents,
			Leading:                   leading,
		})
		if err != nil {
			klog.ErrorS(err, "Cannot build the CSR controller")
			os.Exit(1)
		}
		pods := startPodCertificates(ctx, o, kube, factory, cache, pipeline, leading)
		factory.Start(ctx.Done())
		var wg sync.WaitGroup
		for _, run := range pods {
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

// startPodCertificates builds the PodCertificateRequest and
// ClusterTrustBundle controllers that the flags ask for and kube-apiserver
// serves, registering their informers with factory, and returns their Run
// functions. Run by the leader only, beside the CSR controller.
func startPodCertificates(ctx context.Context, o *Options, kube kubernetes.Interface, factory informers.SharedInformerFactory, cache *issuers.Cache,
	pipeline *issuance.Pipeline, leading func() bool) []func(context.Context) {
	if !o.PodCertificates && !o.ClusterTrustBundles {
		return nil
	}
	logger := klog.FromContext(ctx)
	served, err := kube.Discovery().ServerResourcesForGroupVersion("certificates.k8s.io/v1")
	if err != nil {
		logger.Error(err, "Cannot read certificates.k8s.io/v1 discovery; pod certificates and trust bundles are off until restart")
		return nil
	}
	serves := func(resource string) bool {
		return slices.ContainsFunc(served.APIResources, func(r metav1.APIResource) bool { return r.Name == resource })
	}
	var runs []func(context.Context)
	var bundles *trustbundles.Controller
	if o.ClusterTrustBundles && !serves("clustertrustbundles") {
		logger.Info("kube-apiserver does not serve certificates.k8s.io/v1 clustertrustbundles: not publishing trust bundles")
	} else if o.ClusterTrustBundles {
		// Only signet's bundles: a label selector on the list and watch.
		ctbFactory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = trustbundles.LabelSelector()
		}))
		if bundles, err = trustbundles.New(kube, ctbFactory.Certificates().V1().ClusterTrustBundles(), cache, trustbundles.Options{}); err != nil {
			klog.ErrorS(err, "Cannot build the ClusterTrustBundle controller")
			os.Exit(1)
		}
		ctbFactory.Start(ctx.Done())
		runs = append(runs, bundles.Run)
	}
	if o.PodCertificates && !serves("podcertificaterequests") {
		logger.Info("kube-apiserver does not serve certificates.k8s.io/v1 podcertificaterequests: not fulfilling pod certificates")
	} else if o.PodCertificates {
		opts := podcertificates.Options{
			TrustDomain: o.PodCertificateTrustDomain,
			MaxDuration: o.MaxDuration,
			Workers:     o.Workers,
			Leading:     leading,
		}
		if bundles != nil {
			opts.TrustBundles = bundles
		}
		pcrs, err := podcertificates.New(kube, factory.Certificates().V1().PodCertificateRequests(), cache, pipeline, opts)
		if err != nil {
			klog.ErrorS(err, "Cannot build the PodCertificateRequest controller")
			os.Exit(1)
		}
		runs = append(runs, pcrs.Run)
	}
	return runs
}
