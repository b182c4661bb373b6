// Package trustbundles publishes each CA signer's trust anchors as a
// ClusterTrustBundle (certificates.k8s.io/v1), so that a pod mounts them
// with a clusterTrustBundle projected volume. A bundle keeps an anchor the
// issuer no longer signs with until every certificate signet issued under it
// has expired, and remembers how long that is in the bundle itself
// (bundle.go), so that a restart forgets nothing.
package trustbundles

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	certinformers "k8s.io/client-go/informers/certificates/v1"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/controller/workers"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// IssuerStates is the read model the bundles are computed from; *issuers.Cache.
type IssuerStates interface {
	Get(issuers.Ref) (*issuers.State, bool)
	List(kind issuers.Kind, namespace string) ([]*issuers.State, uint64)
	OnChange(func(issuers.Ref))
	HasSynced() bool
}

// DefaultKeepAhead is how far past a certificate's NotAfter KeepUntil
// records, so that a burst of certificates costs one bundle write per
// signer per KeepAhead of issuing rather than one each. An anchor the issuer
// stopped using stays in the bundle at most this long after the last
// certificate under it expires.
const DefaultKeepAhead = time.Hour

// Options configure the controller.
type Options struct {
	KeepAhead time.Duration
	Clock     clock.Clock
}

// Controller keeps one ClusterTrustBundle per CA signer.
type Controller struct {
	opts   Options
	kube   kubernetes.Interface
	states IssuerStates
	lister certlisters.ClusterTrustBundleLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]

	// signers serialises the writes to one signer's bundle and holds what
	// this process knows is stored in it.
	mu      sync.Mutex
	signers map[string]*signerBundle
}

type signerBundle struct {
	mu sync.Mutex
	// issuedUntil is, for the bundle as last written or read, its
	// IssuedUntil entries: KeepUntil trusts it without another read.
	issuedUntil map[string]time.Time
	// ca and anchors: the anchors of the CA last asked about, parsed once
	// (a CA is immutable; a new Secret version is a new CA).
	ca      *signers.CA
	anchors anchorSet
}

// LabelSelector selects signet's bundles; give the informer's list and
// watch this selector so that it holds nothing else.
func LabelSelector() string { return LabelManagedBy + "=" + ManagedBy }

// New wires the controller to a ClusterTrustBundle informer restricted to
// LabelSelector (which the caller starts) and the issuers read model.
func New(kube kubernetes.Interface, informer certinformers.ClusterTrustBundleInformer, states IssuerStates, opts Options) (*Controller, error) {
	if opts.KeepAhead <= 0 {
		opts.KeepAhead = DefaultKeepAhead
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	c := &Controller{
		opts:   opts,
		kube:   kube,
		states: states,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "clustertrustbundles"}),
		signers: map[string]*signerBundle{},
	}
	inf := informer.Informer()
	if err := inf.SetTransform(func(obj interface{}) (interface{}, error) {
		if b, ok := obj.(*certificatesv1.ClusterTrustBundle); ok {
			b.ManagedFields = nil
		}
		return obj, nil
	}); err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueBundle,
		UpdateFunc: func(_, obj interface{}) { c.enqueueBundle(obj) },
		DeleteFunc: func(obj interface{}) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if b, ok := obj.(*certificatesv1.ClusterTrustBundle); ok {
				// Whatever was stored went with it.
				sb := c.signer(b.Spec.SignerName)
				sb.mu.Lock()
				sb.issuedUntil = nil
				sb.mu.Unlock()
			}
			c.enqueueBundle(obj)
		},
	}); err != nil {
		return nil, err
	}
	c.lister = informer.Lister()
	c.synced = inf.HasSynced
	states.OnChange(func(ref issuers.Ref) { c.queue.Add(ref.SignerName()) })
	return c, nil
}

func (c *Controller) enqueueBundle(obj interface{}) {
	if b, ok := obj.(*certificatesv1.ClusterTrustBundle); ok && owned(b) {
		c.queue.Add(b.Spec.SignerName)
	}
}

func (c *Controller) signer(signerName string) *signerBundle {
	c.mu.Lock()
	defer c.mu.Unlock()
	sb := c.signers[signerName]
	if sb == nil {
		sb = &signerBundle{}
		c.signers[signerName] = sb
	}
	return sb
}

// Run keeps the bundles until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting ClusterTrustBundle controller")
	if !cache.WaitForNamedCacheSync("clustertrustbundles", ctx.Done(), c.synced, c.states.HasSynced) {
		return
	}
	// Every issuer once; bundles of issuers that are gone come from the
	// informer's initial list.
	for _, kind := range []issuers.Kind{issuers.KindIssuer, issuers.KindClusterIssuer} {
		states, _ := c.states.List(kind, "")
		for _, s := range states {
			c.queue.Add(s.Issuer.Ref.SignerName())
		}
	}
	workers.Loop{
		Queue: c.queue, Workers: 2, Sync: c.reconcile,
		Object: "ClusterTrustBundle", KeyName: "signer",
	}.Run(ctx)
	logger.Info("Stopped ClusterTrustBundle controller")
}

// reconcile brings one signer's bundle to Desired, and comes back when the
// clock alone changes it.
func (c *Controller) reconcile(ctx context.Context, signerName string) error {
	ref, ours := wire.ParseSignerName(signerName)
	if !ours {
		return nil
	}
	sb := c.signer(signerName)
	sb.mu.Lock()
	defer sb.mu.Unlock()

	state, found := c.states.Get(ref)
	if !found {
		// A deleted issuer's bundle goes.
		return c.delete(ctx, signerName, sb)
	}
	if state.Reason == issuers.ReasonPending {
		return nil // its CA Secret has not been read yet; its change brings us back
	}
	next, err := c.write(ctx, signerName, sb, currentAnchors(state), nil, time.Time{})
	if err != nil {
		return err
	}
	if !next.IsZero() {
		c.queue.AddAfter(signerName, next.Sub(c.opts.Clock.Now())+time.Second)
	}
	return nil
}

// KeepUntil records in ref's bundle, before it returns, that certificates
// signed by ca may be valid until notAfter: ca's anchors are in the bundle
// and stay there, even once the issuer signs with another CA, until then.
// It writes only when the bundle does not already record that (it records
// KeepAhead more than asked, so a burst of certificates costs one write).
func (c *Controller) KeepUntil(ctx context.Context, ref issuers.Ref, ca *signers.CA, notAfter time.Time) error {
	signerName := ref.SignerName()
	sb := c.signer(signerName)
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.ca != ca {
		sb.ca, sb.anchors = ca, Anchors(ca)
	}
	anchors := sb.anchors
	if len(anchors) == 0 {
		return fmt.Errorf("CA %s of %s has no CA certificate to publish", ca.Certificate.Subject, ref)
	}
	if sb.issuedUntil == nil {
		// Not read since this process started: the informer's copy says.
		if b, err := c.lister.Get(Name(signerName)); err == nil {
			sb.issuedUntil = ParseIssuedUntil(b.Annotations)
		}
	}
	if covers(sb.issuedUntil, anchors, notAfter) {
		return nil
	}
	// The issuer's CA now, which may have moved on since ca was read, and ca.
	var current anchorSet
	if state, found := c.states.Get(ref); found {
		current = currentAnchors(state)
	}
	target := notAfter.Add(c.opts.KeepAhead).UTC().Truncate(time.Second)
	_, err := c.write(ctx, signerName, sb, append(current, anchors...), anchors, target)
	return err
}

type anchorSet = []*x509.Certificate

// currentAnchors are the anchors of the CA an issuer signs with now: none
// unless it is a CA issuer that is ready to sign.
func currentAnchors(state *issuers.State) anchorSet {
	if state.Issuer.Type != issuers.TypeCA || !state.Ready {
		return nil
	}
	return Anchors(state.CA)
}

// write makes signerName's bundle Desired for the current anchors, with
// keep's IssuedUntil raised to keepUntil (KeepUntil), and returns when the
// clock next changes it. Called with sb.mu held. The first attempt uses the
// informer's copy; a conflict reads the bundle again and retries.
func (c *Controller) write(ctx context.Context, signerName string, sb *signerBundle, current, keep anchorSet, keepUntil time.Time) (time.Time, error) {
	name := Name(signerName)
	existing, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		existing = nil
	} else if err != nil {
		return time.Time{}, err
	} else if !owned(existing) {
		return time.Time{}, notOurs(name, signerName)
	}
	bundles := c.kube.CertificatesV1().ClusterTrustBundles()
	for attempt := 0; ; attempt++ {
		now := c.opts.Clock.Now()
		var published anchorSet
		issuedUntil := maps.Clone(sb.issuedUntil)
		if issuedUntil == nil {
			issuedUntil = map[string]time.Time{}
		}
		if existing != nil {
			published = ParseBundle(existing.Spec.TrustBundle)
			for fp, t := range ParseIssuedUntil(existing.Annotations) {
				if cur, ok := issuedUntil[fp]; !ok || cur.Before(t) {
					issuedUntil[fp] = t
				}
			}
		}
		keepLater(issuedUntil, keep, keepUntil)
		desired, next := Desired(current, published, issuedUntil, now)

		switch {
		case len(desired.Anchors) == 0 && existing == nil:
			sb.issuedUntil = nil
			return next, nil
		case len(desired.Anchors) == 0:
			err = bundles.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &existing.UID, ResourceVersion: &existing.ResourceVersion}})
			if err == nil || apierrors.IsNotFound(err) {
				klog.FromContext(ctx).Info("Deleted ClusterTrustBundle: no anchor left to publish", "name", name)
				sb.issuedUntil = nil
				return next, nil
			}
		case existing == nil:
			b := &certificatesv1.ClusterTrustBundle{
				ObjectMeta: metav1.ObjectMeta{
					Name:        name,
					Labels:      map[string]string{LabelManagedBy: ManagedBy},
					Annotations: desired.Annotations(nil),
				},
				Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: signerName, TrustBundle: desired.PEM()},
			}
			if _, err = bundles.Create(ctx, b, metav1.CreateOptions{}); err == nil {
				klog.FromContext(ctx).Info("Created ClusterTrustBundle", "name", name, "anchors", len(desired.Anchors))
				sb.issuedUntil = desired.IssuedUntil
				return next, nil
			}
		default:
			annotations := desired.Annotations(existing.Annotations)
			if existing.Spec.TrustBundle == desired.PEM() && maps.Equal(existing.Annotations, annotations) {
				sb.issuedUntil = desired.IssuedUntil
				return next, nil
			}
			b := existing.DeepCopy()
			b.Annotations = annotations
			b.Spec.TrustBundle = desired.PEM()
			if _, err = bundles.Update(ctx, b, metav1.UpdateOptions{}); err == nil {
				klog.FromContext(ctx).V(2).Info("Updated ClusterTrustBundle", "name", name, "anchors", len(desired.Anchors))
				sb.issuedUntil = desired.IssuedUntil
				return next, nil
			}
		}
		if !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err)) || attempt == 2 {
			return time.Time{}, fmt.Errorf("writing ClusterTrustBundle %s: %w", name, err)
		}
		// Someone else wrote it since it was read: read it again.
		existing, err = bundles.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			existing = nil
		} else if err != nil {
			return time.Time{}, err
		} else if !owned(existing) {
			return time.Time{}, notOurs(name, signerName)
		}
	}
}

// delete removes a signer's bundle. Called with sb.mu held.
func (c *Controller) delete(ctx context.Context, signerName string, sb *signerBundle) error {
	name := Name(signerName)
	existing, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		sb.issuedUntil = nil
		return nil
	} else if err != nil {
		return err
	} else if !owned(existing) {
		return nil
	}
	err = c.kube.CertificatesV1().ClusterTrustBundles().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &existing.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ClusterTrustBundle %s of a deleted issuer: %w", name, err)
	}
	klog.FromContext(ctx).Info("Deleted ClusterTrustBundle of a deleted issuer", "name", name)
	sb.issuedUntil = nil
	c.mu.Lock()
	delete(c.signers, signerName)
	c.mu.Unlock()
	return nil
}

func notOurs(name, signerName string) error {
	return fmt.Errorf("ClusterTrustBundle %s exists without the label %s=%s: it is not signet's, and signet leaves it alone; delete it to let signet publish %s's CA",
		name, LabelManagedBy, ManagedBy, signerName)
}

func owned(b *certificatesv1.ClusterTrustBundle) bool {
	return b.Labels[LabelManagedBy] == ManagedBy
}
