// Package controller is the CertificateSigningRequest edge: it fulfils
// approved CSRs whose signerName names a cert-manager Issuer or
// ClusterIssuer. It reads each CSR into a request, hands it to the issuance
// pipeline, and writes what the pipeline decides.
package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	certinformers "k8s.io/client-go/informers/certificates/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/controller/workers"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/wire"
)

// Options configure the controller.
type Options struct {
	// WriteCAAnnotation writes experimental.cert-manager.io/ca on issued CSRs.
	WriteCAAnnotation bool
	// Workers is how many CSRs are handled at once.
	Workers int
	// WaitingApprovalEventDelay is how old an unapproved CSR must be before
	// it gets its one WaitingApproval event. Approver controllers approve
	// within moments; an event for each of those CSRs would only cost
	// kube-apiserver a write per CSR, and in a burst delay the certificates.
	WaitingApprovalEventDelay time.Duration
	// CertificateIssuedEvents records a CertificateIssued event on each CSR
	// signet signs, as cert-manager does. Off by default: the certificate
	// and the Issued condition already say so, and the event is one more
	// kube-apiserver write (and etcd object for an hour) per certificate.
	CertificateIssuedEvents bool
	// Leading reports whether this replica may still act as the leader; it
	// is asked before each signing and each write. Nil: always (no leader
	// election).
	Leading func() bool
	// SignerNames parses signer names: cert-manager's own and the external
	// issuers'. The zero value knows cert-manager's only.
	SignerNames wire.SignerNames
	Clock       clock.Clock
}

// DefaultWorkers is how many CSRs the controller handles at once unless told.
const DefaultWorkers = 32

// IssuerSource is the read model of issuers, as the controller uses it.
type IssuerSource interface {
	Get(ref issuers.Ref) (*issuers.State, bool)
	HasSynced() bool
	// OnChange registers a function called after an issuer's state changes.
	OnChange(func(issuers.Ref))
}

// Pipeline decides what happens to a request (pkg/issuance).
type Pipeline interface {
	Issue(ctx context.Context, req *issuance.Request) (issuance.Outcome, error)
	// Withdraw takes back what a backend left for a CSR denied or deleted.
	Withdraw(ctx context.Context, ref issuers.Ref, obj issuance.Object) error
	// OnChange registers a function called with a request whose wait may
	// have ended (its CertificateRequest changed).
	OnChange(func(issuance.Object))
}

// Controller signs approved CSRs for issuers.cert-manager.io/* and
// clusterissuers.cert-manager.io/* signer names.
type Controller struct {
	opts     Options
	kube     kubernetes.Interface
	issuers  IssuerSource
	pipeline Pipeline
	// csrs is the informer's cache, overlaid with what this controller
	// wrote until the informer has caught up (see recentWrites).
	csrs     cache.MutationCache
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	events   record.EventBroadcaster

	// waitingApproval remembers which CSRs already got their one
	// WaitingApproval event; entries go when the CSR is approved or deleted.
	waitingApproval sync.Map
	// lastWait remembers, by CSR UID, the last wait recorded as an event, so
	// that a request re-driven while it still waits for the same thing gets
	// one event, not one per re-drive; entries go with the CSR.
	lastWait sync.Map
	// deleted holds CSRs deleted while signet watched, by name, until
	// whatever a backend left for them is withdrawn.
	deleted sync.Map
}

// deletedCSR is what is left to know of a deleted CSR.
type deletedCSR struct {
	ref issuers.Ref
	obj issuance.Object
}

const signerNameIndex = "signerName"

// New wires the controller to a CSR informer (which the caller starts), the
// issuers read model and the issuance pipeline.
func New(kube kubernetes.Interface, csrInformer certinformers.CertificateSigningRequestInformer, source IssuerSource, pipeline Pipeline, opts Options) (*Controller, error) {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	events := record.NewBroadcaster(record.WithContext(context.Background()))
	c := &Controller{
		opts:     opts,
		kube:     kube,
		issuers:  source,
		pipeline: pipeline,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "certificatesigningrequests"}),
		events:   events,
		recorder: events.NewRecorder(schemeForEvents, corev1.EventSource{Component: wire.EventSource}),
	}
	inf := csrInformer.Informer()
	// CSRs for other signers (kubelets', say) are kept as little more than a
	// name: they are never read again, and there may be many.
	if err := inf.SetTransform(c.slimCSR); err != nil {
		return nil, err
	}
	if err := inf.AddIndexers(cache.Indexers{signerNameIndex: func(obj interface{}) ([]string, error) {
		csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
		if !ok {
			return nil, nil
		}
		return []string{csr.Spec.SignerName}, nil
	}}); err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj interface{}) bool {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
			if !ok {
				return false
			}
			_, ours := c.opts.SignerNames.Parse(csr.Spec.SignerName)
			return ours
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onAddOrUpdate,
			UpdateFunc: func(_, obj interface{}) { c.onAddOrUpdate(obj) },
			DeleteFunc: c.forget,
		},
	}); err != nil {
		return nil, err
	}
	// A CSR is often synced again before the informer has seen signet's own
	// write to it (the write's event is still on its way). Read from the
	// cache as it was, it looks unsigned and would be signed again, only for
	// the write to conflict. The mutation cache returns the newer of the
	// informer's copy and the one signet wrote.
	c.csrs = cache.NewIntegerResourceVersionMutationCacheWithOptions(klog.Background(), inf.GetStore(), cache.MutationCacheOptions{
		Indexer:      inf.GetIndexer(),
		TTL:          recentWritesTTL,
		MaxCacheSize: recentWritesSize,
	})
	c.synced = inf.HasSynced
	// A CSR waiting for its issuer, or for the issuer's CA Secret, is retried
	// as soon as either changes; one waiting for its CertificateRequest, as
	// soon as that changes.
	source.OnChange(c.enqueueSigner)
	pipeline.OnChange(c.enqueueRequest)
	return c, nil
}

// What signet wrote is remembered until the informer shows it, at most
// recentWritesTTL, for at most recentWritesSize CSRs: a burst's worth.
const (
	recentWritesTTL  = time.Minute
	recentWritesSize = 16384
)

func (c *Controller) onAddOrUpdate(obj interface{}) {
	if o, ok := obj.(runtime.Object); ok {
		c.csrs.OnAddOrUpdate(o) // the informer caught up: forget our copy
	}
	c.enqueue(obj)
}

// enqueueRequest requeues the CSR a backend says may be done waiting.
func (c *Controller) enqueueRequest(obj issuance.Object) {
	if obj.Kind == issuance.KindCertificateSigningRequest {
		c.queue.Add(obj.Name)
	}
}

func (c *Controller) enqueue(obj interface{}) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// forget drops what the controller remembers of a deleted CSR, and queues
// it once more so that sync withdraws what a backend left for it.
func (c *Controller) forget(obj interface{}) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return
	}
	c.waitingApproval.Delete(csr.UID)
	c.lastWait.Delete(csr.UID)
	c.csrs.OnDelete(csr)
	if ref, ours := c.opts.SignerNames.Parse(csr.Spec.SignerName); ours {
		c.deleted.Store(csr.Name, deletedCSR{ref: ref, obj: objectOf(csr)})
		c.queue.Add(csr.Name)
	}
}

// remember keeps what signet wrote, slimmed as the informer slims, until
// the informer has it.
func (c *Controller) remember(written *certificatesv1.CertificateSigningRequest) {
	obj, _ := c.slimCSR(written)
	c.csrs.Mutation(obj)
}

// enqueueSigner requeues the unfinished CSRs that name ref.
func (c *Controller) enqueueSigner(ref issuers.Ref) {
	objs, err := c.csrs.ByIndex(signerNameIndex, ref.SignerName())
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("listing the CSRs for %s to retry them: %w", ref, err))
		return
	}
	for _, obj := range objs {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && len(csr.Status.Certificate) == 0 {
			c.enqueue(csr)
		}
	}
}

// Run processes CSRs until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.kube.CoreV1().Events("")})
	defer c.events.Shutdown()

	logger := klog.FromContext(ctx)
	logger.Info("Starting CSR controller", "workers", c.opts.Workers)
	if !cache.WaitForNamedCacheSync("certificatesigningrequests", ctx.Done(), c.synced, c.issuers.HasSynced) {
		return
	}
	c.loop().Run(ctx)
	logger.Info("Stopped CSR controller")
}

func (c *Controller) loop() workers.Loop {
	return workers.Loop{
		Queue: c.queue, Workers: c.opts.Workers, Sync: c.sync,
		Object: "CertificateSigningRequest", KeyName: "csr",
		OnNotLeading: notLeading.Inc,
	}
}

func (c *Controller) leading() bool { return c.opts.Leading == nil || c.opts.Leading() }

// slimCSR strips managed fields from every CSR, and from CSRs for other
// signers everything but what the filter and index read.
func (c *Controller) slimCSR(obj interface{}) (interface{}, error) {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return obj, nil
	}
	// Write only when there is something to strip: an object with none
	// (all of a fake clientset's) may be shared with its source.
	if csr.ManagedFields != nil {
		csr.ManagedFields = nil
	}
	if _, ours := c.opts.SignerNames.Parse(csr.Spec.SignerName); ours {
		return csr, nil
	}
	slim := &certificatesv1.CertificateSigningRequest{}
	slim.Name, slim.UID, slim.ResourceVersion = csr.Name, csr.UID, csr.ResourceVersion
	slim.Spec.SignerName = csr.Spec.SignerName
	return slim, nil
}
