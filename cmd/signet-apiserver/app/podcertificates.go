package app

import (
	"context"
	"os"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/signet-dev/signet/pkg/controller/podcertificates"
	"github.com/signet-dev/signet/pkg/controller/trustbundles"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
)

// podCertificates is what the pod certificate flags turned on and
// kube-apiserver serves. Every replica records what it signs in the trust
// bundles (any replica signs through the sign subresource); only the leader
// reconciles the bundles and fulfils PodCertificateRequests.
type podCertificates struct {
	o        *Options
	kube     kubernetes.Interface
	cache    *issuers.Cache
	pipeline *issuance.Pipeline
	// requests: fulfil PodCertificateRequests.
	requests bool
	// bundles and bundleInformers: publish ClusterTrustBundles; nil when off.
	bundles         *trustbundles.Controller
	bundleInformers informers.SharedInformerFactory
}

// newPodCertificates asks kube-apiserver which of PodCertificateRequests and
// ClusterTrustBundles it serves, builds the trust bundle controller and makes
// it the pipeline's recorder.
func newPodCertificates(ctx context.Context, o *Options, kube kubernetes.Interface, cache *issuers.Cache, pipeline *issuance.Pipeline) *podCertificates {
	p := &podCertificates{o: o, kube: kube, cache: cache, pipeline: pipeline}
	if !o.PodCertificates && !o.ClusterTrustBundles {
		return p
	}
	logger := klog.FromContext(ctx)
	var served *metav1.APIResourceList
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: time.Second, Factor: 2, Steps: 5}, func(ctx context.Context) (bool, error) {
		var err error
		served, err = kube.Discovery().ServerResourcesForGroupVersion("certificates.k8s.io/v1")
		return err == nil, nil
	})
	if err != nil {
		logger.Error(err, "Cannot read certificates.k8s.io/v1 discovery; pod certificates and trust bundles are off until restart")
		return p
	}
	serves := func(resource string) bool {
		return slices.ContainsFunc(served.APIResources, func(r metav1.APIResource) bool { return r.Name == resource })
	}
	if o.PodCertificates && !serves("podcertificaterequests") {
		logger.Info("kube-apiserver does not serve certificates.k8s.io/v1 podcertificaterequests: not fulfilling pod certificates")
	}
	p.requests = o.PodCertificates && serves("podcertificaterequests")
	if o.ClusterTrustBundles && !serves("clustertrustbundles") {
		logger.Info("kube-apiserver does not serve certificates.k8s.io/v1 clustertrustbundles: not publishing trust bundles")
	}
	if !o.ClusterTrustBundles || !serves("clustertrustbundles") {
		return p
	}
	// Only signet's bundles: a label selector on the list and watch.
	p.bundleInformers = informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.LabelSelector = trustbundles.LabelSelector()
	}))
	if p.bundles, err = trustbundles.New(kube, p.bundleInformers.Certificates().V1().ClusterTrustBundles(), cache, trustbundles.Options{}); err != nil {
		klog.ErrorS(err, "Cannot build the ClusterTrustBundle controller")
		os.Exit(1)
	}
	pipeline.SetRecorder(p.bundles)
	return p
}

// start runs the bundle informer until ctx ends, on every replica.
func (p *podCertificates) start(ctx context.Context) {
	if p.bundleInformers != nil {
		p.bundleInformers.Start(ctx.Done())
	}
}

// controllers builds what the leader runs — the PodCertificateRequest
// controller, with its informer in factory, and the bundles' reconciler —
// and returns their Run functions.
func (p *podCertificates) controllers(ctx context.Context, factory informers.SharedInformerFactory, leading func() bool) []func(context.Context) {
	var runs []func(context.Context)
	if p.bundles != nil {
		runs = append(runs, p.bundles.Run)
	}
	if p.requests {
		pcrs, err := podcertificates.New(p.kube, factory.Certificates().V1().PodCertificateRequests(), p.cache, p.pipeline, podcertificates.Options{
			TrustDomain: p.o.PodCertificateTrustDomain,
			MaxDuration: p.o.MaxDuration,
			Workers:     p.o.Workers,
			Leading:     leading,
		})
		if err != nil {
			klog.FromContext(ctx).Error(err, "Cannot build the PodCertificateRequest controller")
			os.Exit(1)
		}
		runs = append(runs, pcrs.Run)
	}
	return runs
}
