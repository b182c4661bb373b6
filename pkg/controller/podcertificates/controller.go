// Package podcertificates fulfils PodCertificateRequests — what kubelet
// creates for a pod's podCertificate projected volume — whose signerName
// names a cert-manager CA Issuer or ClusterIssuer. No approver stands
// between a pod and its signer, so the rules in policy.go and the issuance
// pipeline's reference check are the gate. This file reads a request into
// the pipeline — with a template made only from verified fields — and
// writes the outcome once.
package podcertificates

import (
	"context"
	"crypto"
	"fmt"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	certinformers "k8s.io/client-go/informers/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/controller/workers"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// DefaultTrustDomain is the SPIFFE trust domain of pod identities unless
// --pod-certificate-trust-domain says otherwise.
const DefaultTrustDomain = "cluster.local"

// IssuerStates is the read model; *issuers.Cache.
type IssuerStates interface {
	Get(issuers.Ref) (*issuers.State, bool)
	OnChange(func(issuers.Ref))
	HasSynced() bool
}

// Pipeline decides a request; *issuance.Pipeline.
type Pipeline interface {
	Issue(ctx context.Context, req *issuance.Request) (issuance.Outcome, error)
}

// Options configure the controller.
type Options struct {
	// TrustDomain is the SPIFFE trust domain of the pods' identities.
	TrustDomain string
	// MaxDuration caps every certificate's lifetime (--max-duration); 0: no cap.
	MaxDuration time.Duration
	// Workers is how many requests are handled at once.
	Workers int
	// Leading reports whether this replica may still act as the leader; it
	// neither signs nor writes otherwise. Nil: always.
	Leading func() bool
	Clock   clock.Clock
}

// Controller signs PodCertificateRequests for issuers.cert-manager.io/* and
// clusterissuers.cert-manager.io/* signer names.
type Controller struct {
	opts     Options
	kube     kubernetes.Interface
	issuers  IssuerStates
	pipeline Pipeline
	pcrs     cache.Indexer
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	events   record.EventBroadcaster

	// finished holds the UIDs of requests whose final status this process
	// wrote, until the informer shows them: a request is never signed again
	// while the cache catches up.
	finished sync.Map
}

const signerNameIndex = "signerName"

// New wires the controller to a PodCertificateRequest informer (which the
// caller starts), the issuers read model and the issuance pipeline.
func New(kube kubernetes.Interface, informer certinformers.PodCertificateRequestInformer, states IssuerStates, pipeline Pipeline, opts Options) (*Controller, error) {
	if opts.Workers <= 0 {
		opts.Workers = 32
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.TrustDomain == "" {
		opts.TrustDomain = DefaultTrustDomain
	}
	if err := ValidateTrustDomain(opts.TrustDomain); err != nil {
		return nil, err
	}
	events := record.NewBroadcaster(record.WithContext(context.Background()))
	c := &Controller{
		opts:     opts,
		kube:     kube,
		issuers:  states,
		pipeline: pipeline,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "podcertificaterequests"}),
		events:   events,
		recorder: events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: wire.EventSource}),
	}
	inf := informer.Informer()
	if err := inf.SetTransform(slimPCR); err != nil {
		return nil, err
	}
	if err := inf.AddIndexers(cache.Indexers{signerNameIndex: func(obj interface{}) ([]string, error) {
		if pcr, ok := obj.(*certificatesv1.PodCertificateRequest); ok {
			return []string{pcr.Spec.SignerName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj interface{}) bool {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			pcr, ok := obj.(*certificatesv1.PodCertificateRequest)
			if !ok {
				return false
			}
			_, ours := wire.ParseSignerName(pcr.Spec.SignerName)
			return ours
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, obj interface{}) { c.enqueue(obj) },
			DeleteFunc: c.forget,
		},
	}); err != nil {
		return nil, err
	}
	c.pcrs = inf.GetIndexer()
	c.synced = inf.HasSynced
	// A request waiting for its issuer, or for the issuer's CA, is retried
	// as soon as either changes.
	states.OnChange(c.enqueueSigner)
	return c, nil
}

func (c *Controller) enqueue(obj interface{}) {
	pcr, ok := obj.(*certificatesv1.PodCertificateRequest)
	if !ok || finished(pcr) {
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

func (c *Controller) forget(obj interface{}) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if pcr, ok := obj.(*certificatesv1.PodCertificateRequest); ok {
		c.finished.Delete(pcr.UID)
	}
}

// enqueueSigner requeues the unfinished requests that name ref.
func (c *Controller) enqueueSigner(ref issuers.Ref) {
	objs, err := c.pcrs.ByIndex(signerNameIndex, ref.SignerName())
	if err != nil {
		return
	}
	for _, obj := range objs {
		c.enqueue(obj)
	}
}

// Run handles requests until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.kube.CoreV1().Events("")})
	defer c.events.Shutdown()

	logger := klog.FromContext(ctx)
	logger.Info("Starting PodCertificateRequest controller", "workers", c.opts.Workers, "trustDomain", c.opts.TrustDomain)
	if !cache.WaitForNamedCacheSync("podcertificaterequests", ctx.Done(), c.synced, c.issuers.HasSynced) {
		return
	}
	workers.Loop{
		Queue: c.queue, Workers: c.opts.Workers, Sync: c.sync,
		Object: "PodCertificateRequest", KeyName: "pcr",
	}.Run(ctx)
	logger.Info("Stopped PodCertificateRequest controller")
}

// sync takes one request as far as it can go now: the rules of policy.go,
// then the pipeline (reference, readiness, the template, the CA backend),
// then one status write. An error requeues it with backoff; a wait on the
// issuer returns nil and is requeued by the issuer's next change.
func (c *Controller) sync(ctx context.Context, key string) error {
	obj, exists, err := c.pcrs.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	pcr := obj.(*certificatesv1.PodCertificateRequest)
	ref, ours := wire.ParseSignerName(pcr.Spec.SignerName)
	if !ours || pcr.DeletionTimestamp != nil || finished(pcr) {
		return nil
	}
	if _, done := c.finished.Load(pcr.UID); done {
		return nil
	}
	if !c.leading() {
		return workers.ErrNotLeading
	}

	var typ issuers.Type
	if state, found := c.issuers.Get(ref); found {
		typ = state.Issuer.Type
	}
	// The gate, cheapest rule first; the pipeline checks reference.
	if d := CheckNamespace(pcr.Namespace, ref); d != nil {
		return c.finish(ctx, pcr, ref, typ, d)
	}
	if d := CheckUserAnnotations(pcr.Spec.UnverifiedUserAnnotations); d != nil {
		return c.finish(ctx, pcr, ref, typ, d)
	}
	pub, d := PublicKey(pcr.Spec.StubPKCS10Request)
	if d != nil {
		return c.finish(ctx, pcr, ref, typ, d)
	}
	switch typ {
	case issuers.TypeSelfSigned, issuers.TypeVault, issuers.TypeACME, issuers.TypeVenafi, issuers.TypeExternal:
		return c.finish(ctx, pcr, ref, typ, failed(ReasonIssuerTypeNotSupported,
			"signet signs PodCertificateRequests with CA issuers only; %s is a %s issuer", ref, typ))
	}

	var validity Validity
	outcome, err := c.pipeline.Issue(ctx, c.request(pcr, ref, pub, &validity))
	if err != nil {
		return err
	}
	switch o := outcome.(type) {
	case *issuance.Waiting:
		c.recorder.Event(pcr, corev1.EventTypeWarning, o.Reason, o.Message)
		observe(ref, typ, resultWaiting)
		if o.Backoff {
			return fmt.Errorf("%s: %s", o.Reason, o.Message)
		}
		return nil
	case *issuance.Failed:
		if o.Reason == wire.ReasonDeniedReference {
			return c.finish(ctx, pcr, ref, typ, denied(ReasonDeniedReference,
				"ServiceAccount %s/%s may not reference %s: grant it the %q verb on %s",
				pcr.Namespace, pcr.Spec.ServiceAccountName, describe(ref), wire.ReferenceVerb, rbacResource(ref)))
		}
		return c.finish(ctx, pcr, ref, typ, failed(o.Reason, "%s", o.Message))
	case *issuance.Issued:
		return c.writeIssued(ctx, pcr, ref, typ, o, validity)
	}
	return fmt.Errorf("unexpected issuance outcome %T", outcome)
}

// request is pcr for the pipeline: the pod's ServiceAccount as the
// requester, checked for ClusterIssuers too, and a template of what
// kube-apiserver verified, placed inside the CA's validity. The validity
// used is stored in *validity.
func (c *Controller) request(pcr *certificatesv1.PodCertificateRequest, ref issuers.Ref, pub crypto.PublicKey, validity *Validity) *issuance.Request {
	user, groups := ServiceAccountUser(pcr.Namespace, pcr.Spec.ServiceAccountName)
	lifetime := Lifetime(pcr.Spec.MaxExpirationSeconds, c.opts.MaxDuration)
	spiffeID := SPIFFEID(c.opts.TrustDomain, pcr.Namespace, pcr.Spec.ServiceAccountName)
	return &issuance.Request{
		Object: issuance.Object{Kind: "PodCertificateRequest", Namespace: pcr.Namespace, Name: pcr.Name, UID: pcr.UID},
		Signer: ref,
		// A ServiceAccount token's user UID is the ServiceAccount's UID.
		Requester:            &issuance.Requester{Username: user, Groups: groups, UID: string(pcr.Spec.ServiceAccountUID)},
		AlwaysCheckReference: true,
		Template: func(issuer *issuers.State, now time.Time) (*signers.Template, issuance.Outcome, error) {
			if issuer.CA == nil {
				return nil, nil, fmt.Errorf("%s is ready but has no parsed CA", ref)
			}
			v, w := ValidityFor(now, lifetime, issuer.CA.Certificate)
			if w != nil {
				return nil, &issuance.Waiting{For: issuance.WaitIssuerNotReady, Reason: w.Reason, Message: w.Message}, nil
			}
			*validity = v
			tmpl, err := Template(pub, spiffeID, v)
			return tmpl, nil, err
		},
	}
}

// writeIssued writes the certificate, once, on the version read.
func (c *Controller) writeIssued(ctx context.Context, pcr *certificatesv1.PodCertificateRequest, ref issuers.Ref, typ issuers.Type, o *issuance.Issued, v Validity) error {
	if !o.NotBefore.Equal(v.NotBefore) || !o.NotAfter.Equal(v.NotAfter) {
		// The backend moved the window: beginRefreshAt would not match it.
		return fmt.Errorf("signed [%s, %s], want [%s, %s]", o.NotBefore, o.NotAfter, v.NotBefore, v.NotAfter)
	}
	now := c.opts.Clock.Now()
	issued := pcr.DeepCopy()
	issued.Status = certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{
			Type:               certificatesv1.PodCertificateRequestConditionTypeIssued,
			Status:             metav1.ConditionTrue,
			Reason:             ReasonIssued,
			Message:            fmt.Sprintf("Issued by %s for %s", ref, SPIFFEID(c.opts.TrustDomain, pcr.Namespace, pcr.Spec.ServiceAccountName)),
			LastTransitionTime: metav1.NewTime(now),
			ObservedGeneration: pcr.Generation,
		}},
		CertificateChain: string(o.CertificatePEM),
		// The leaf's own times, in whole seconds.
		NotBefore:      &metav1.Time{Time: o.NotBefore},
		NotAfter:       &metav1.Time{Time: o.NotAfter},
		BeginRefreshAt: &metav1.Time{Time: v.BeginRefreshAt},
	}
	// UpdateStatus carries the resourceVersion read, and kube-apiserver
	// refuses any change to a finished request: it is issued at most once.
	if _, err := c.kube.CertificatesV1().PodCertificateRequests(pcr.Namespace).UpdateStatus(ctx, issued, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing the certificate: %w", err)
	}
	c.finished.Store(pcr.UID, struct{}{})
	issuance.CountIssued(ref.Kind, o)
	observeIssued(ref, typ, pcr.CreationTimestamp.Time, now)
	klog.FromContext(ctx).V(2).Info("Issued pod certificate", "pcr", pcr.Namespace+"/"+pcr.Name, "signer", pcr.Spec.SignerName, "notAfter", o.NotAfter)
	return nil
}

func (c *Controller) leading() bool { return c.opts.Leading == nil || c.opts.Leading() }

// finish ends a request with a Denied or Failed condition and a Warning event.
func (c *Controller) finish(ctx context.Context, pcr *certificatesv1.PodCertificateRequest, ref issuers.Ref, typ issuers.Type, d *Denial) error {
	out := pcr.DeepCopy()
	out.Status = certificatesv1.PodCertificateRequestStatus{Conditions: []metav1.Condition{{
		Type:               d.Condition,
		Status:             metav1.ConditionTrue,
		Reason:             d.Reason,
		Message:            d.Message,
		LastTransitionTime: metav1.NewTime(c.opts.Clock.Now()),
		ObservedGeneration: pcr.Generation,
	}}}
	if _, err := c.kube.CertificatesV1().PodCertificateRequests(pcr.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("marking %s (%s): %w", d.Condition, d.Reason, err)
	}
	c.finished.Store(pcr.UID, struct{}{})
	c.recorder.Event(pcr, corev1.EventTypeWarning, d.Reason, d.Message)
	result := resultFailed
	if d.Condition == certificatesv1.PodCertificateRequestConditionTypeDenied {
		result = resultDenied
	}
	observe(ref, typ, result)
	return nil
}

// finished reports whether a request has its final condition.
func finished(pcr *certificatesv1.PodCertificateRequest) bool {
	for _, c := range pcr.Status.Conditions {
		switch c.Type {
		case certificatesv1.PodCertificateRequestConditionTypeIssued,
			certificatesv1.PodCertificateRequestConditionTypeDenied,
			certificatesv1.PodCertificateRequestConditionTypeFailed:
			if c.Status == metav1.ConditionTrue {
				return true
			}
		}
	}
	return false
}

func describe(ref issuers.Ref) string {
	if ref.Kind == issuers.KindClusterIssuer {
		return "ClusterIssuer " + ref.Name
	}
	return "Namespaced Issuer " + ref.Namespace + "/" + ref.Name
}

// rbacResource names what a Role or ClusterRole must grant reference on.
func rbacResource(ref issuers.Ref) string {
	if ref.Kind == issuers.KindClusterIssuer {
		return "clustersigners.cert-manager.io/" + ref.Name
	}
	return "signers.cert-manager.io/" + ref.Name + " in namespace " + ref.Namespace
}

// slimPCR keeps the cache small: requests for other signers become little
// more than a name, and finished ones drop the stub request and the chain
// (up to 100 KiB), which are never read again.
func slimPCR(obj interface{}) (interface{}, error) {
	pcr, ok := obj.(*certificatesv1.PodCertificateRequest)
	if !ok {
		return obj, nil
	}
	pcr.ManagedFields = nil
	if _, ours := wire.ParseSignerName(pcr.Spec.SignerName); ours && !finished(pcr) {
		return pcr, nil
	}
	slim := &certificatesv1.PodCertificateRequest{}
	slim.Name, slim.Namespace, slim.UID, slim.ResourceVersion = pcr.Name, pcr.Namespace, pcr.UID, pcr.ResourceVersion
	slim.Spec.SignerName = pcr.Spec.SignerName
	slim.Status.Conditions = pcr.Status.Conditions
	return slim, nil
}
