package issuers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/signet-dev/signet/pkg/signers"
)

// State is the computed state of one issuer at one resource version. A State
// is never changed once published; a change publishes a new one.
type State struct {
	Issuer *Issuer
	// ResourceVersion orders every change the Cache publishes.
	ResourceVersion uint64
	Ready           bool
	Reason          string
	Message         string
	// LastTransitionTime is when Ready or Reason last changed.
	LastTransitionTime time.Time
	// CA is the parsed CA of a CA issuer whose Secret parsed, even when it is
	// not ready (expired, say), so that its details can be shown. Use it to
	// sign only when Ready.
	CA *signers.CA
	// Secret is the Secret a CA issuer reads; empty for other types.
	Secret SecretKey
	// CAExpiry says whether CA outlives certificates of the default
	// duration; set whenever CA parsed as a usable CA, expired or not.
	CAExpiry *CAExpiry
}

// Event is one change to the set of States.
type Event struct {
	Type  watch.EventType
	State *State
	// Prev is the State this one replaces; nil for Added.
	Prev *State
}

// ErrExpired means a watch asked for changes older than the Cache remembers
// (or from another signet process); the client must list again.
var ErrExpired = errors.New("resource version too old or from another signet process; list again")

// Options configure a Cache.
type Options struct {
	// ClusterResourceNamespace holds the Secrets of ClusterIssuers.
	ClusterResourceNamespace string
	// SecretMetadata lists and watches Secret metadata (one watch for all
	// Secrets). Without it the Cache watches full Secrets through its
	// clientset, which only fake clientsets in tests should do.
	SecretMetadata metadata.Interface
	// SecretReaders is how many CA Secrets are read at a time.
	SecretReaders int
	// HistorySize is how many events a watch can resume from.
	HistorySize int
	// WatchBuffer is how many events a slow watcher may fall behind before it
	// is closed (it then resumes from its last resource version).
	WatchBuffer int
	// ValidityCheckPeriod is how often CA validity is checked against the clock.
	ValidityCheckPeriod time.Duration
	Clock               clock.WithTicker
	// SigningPolicy is the policy certificates are signed with: CA signers
	// whose CA ends within its default grant say so (State.CAExpiry).
	SigningPolicy signers.Policy
}

func (o *Options) defaults() {
	if o.ClusterResourceNamespace == "" {
		o.ClusterResourceNamespace = "cert-manager"
	}
	if o.SecretReaders <= 0 {
		o.SecretReaders = 8
	}
	if o.HistorySize <= 0 {
		o.HistorySize = 50000
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = 1024
	}
	if o.ValidityCheckPeriod <= 0 {
		o.ValidityCheckPeriod = 15 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
}

// Cache is the read model: every Issuer and ClusterIssuer, the Secrets they
// reference, and their computed States.
type Cache struct {
	opts    Options
	dyn     dynamic.Interface
	kube    kubernetes.Interface
	secrets *secretReader

	// issuersSynced reports whether both issuer informers have listed and
	// their handlers have seen every issuer listed; nil until Start.
	issuersSynced atomic.Pointer[func() bool]
	synced        atomic.Bool

	mu        sync.RWMutex
	informers []cache.SharedIndexInformer // set by Start
	issuers   map[Ref]*Issuer
	states    map[Ref]*State
	bySecret  map[SecretKey]map[Ref]struct{}
	rv        uint64
	history   []Event // ring buffer, history[(i) % len] ; oldest at histStart
	histStart int
	histLen   int
	watchers  map[*Watch]struct{}
	listeners []func(Ref)
}

// New builds a Cache reading issuers through dyn and their Secrets through kube.
// Nothing runs until Start.
func New(dyn dynamic.Interface, kube kubernetes.Interface, opts Options) *Cache {
	opts.defaults()
	c := &Cache{
		opts:     opts,
		dyn:      dyn,
		kube:     kube,
		issuers:  map[Ref]*Issuer{},
		states:   map[Ref]*State{},
		bySecret: map[SecretKey]map[Ref]struct{}{},
		history:  make([]Event, opts.HistorySize),
		watchers: map[*Watch]struct{}{},
		// Resource versions start at the process start time in microseconds:
		// a version handed out by an earlier process is then always older than
		// this one's history, and its watch is told to list again instead of
		// being served unrelated changes.
		rv: uint64(opts.Clock.Now().UnixMicro()),
	}
	c.secrets = newSecretReader(kube, c.onSecretChange)
	return c
}

func (c *Cache) newIssuerInformer(gvr schema.GroupVersionResource) (cache.SharedIndexInformer, cache.ResourceEventHandlerRegistration, error) {
	inf := dynamicinformer.NewFilteredDynamicInformer(c.dyn, gvr, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	if err := inf.SetTransform(slimIssuer); err != nil {
		return nil, nil, fmt.Errorf("%s informer: %w", gvr.Resource, err)
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onIssuer,
		UpdateFunc: func(_, obj interface{}) { c.onIssuer(obj) },
		DeleteFunc: c.onIssuerDelete,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s informer: %w", gvr.Resource, err)
	}
	return inf, reg, nil
}

// Start runs the informers, the Secret watch and the Secret readers until
// ctx ends. A Cache starts once.
func (c *Cache) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.informers != nil {
		return errors.New("issuers cache already started")
	}
	issuerInf, issuerReg, err := c.newIssuerInformer(IssuerGVR)
	if err != nil {
		return err
	}
	clusterInf, clusterReg, err := c.newIssuerInformer(ClusterIssuerGVR)
	if err != nil {
		return err
	}
	feed := newSecretFeed(c.opts.SecretMetadata, c.kube, c.secrets)
	c.informers = []cache.SharedIndexInformer{issuerInf, clusterInf}
	// An informer has synced once it has handed every listed issuer to its
	// handlers; the registrations have synced once the handlers have run.
	issuersSynced := func() bool {
		return issuerInf.HasSynced() && clusterInf.HasSynced() && issuerReg.HasSynced() && clusterReg.HasSynced()
	}
	c.issuersSynced.Store(&issuersSynced)
	go issuerInf.RunWithContext(ctx)
	go clusterInf.RunWithContext(ctx)
	// The Secret list starts once every issuer has registered the Secret it
	// reads: it then says which exist and at which version, so a missing one
	// costs no request and the others are read from kube-apiserver's cache.
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), issuersSynced) {
			feed.RunWithContext(ctx)
		}
	}()
	go c.secrets.run(ctx, c.opts.SecretReaders)
	go c.watchValidity(ctx)
	return nil
}

// HasSynced reports whether every issuer has been read and handled, the
// Secret watch has listed once, and every Secret those issuers reference has
// had its first answer. Once true it stays true.
func (c *Cache) HasSynced() bool {
	if c.synced.Load() {
		return true
	}
	// Issuers first: their handlers register the Secrets to read.
	issuersSynced := c.issuersSynced.Load()
	if issuersSynced == nil || !(*issuersSynced)() || !c.secrets.synced() {
		return false
	}
	c.synced.Store(true)
	return true
}

// OnChange registers f to be called, outside any lock, after an issuer's
// State changes or the issuer is deleted.
func (c *Cache) OnChange(f func(Ref)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, f)
}

// Get returns the current State of ref.
func (c *Cache) Get(ref Ref) (*State, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.states[ref]
	return s, ok
}

// List returns the States of one kind, in namespace (all namespaces if
// empty), sorted by namespace and name, and the resource version they are current at.
func (c *Cache) List(kind Kind, namespace string) ([]*State, uint64) {
	c.mu.RLock()
	out := make([]*State, 0, len(c.states))
	for ref, s := range c.states {
		if ref.Kind == kind && (namespace == "" || ref.Namespace == namespace) {
			out = append(out, s)
		}
	}
	rv := c.rv
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Issuer.Ref, out[j].Issuer.Ref
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, rv
}

// ResourceVersion is the version of the latest change.
func (c *Cache) ResourceVersion() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rv
}

func (c *Cache) secretKeyFor(iss *Issuer) (SecretKey, bool) {
	if iss.Type != TypeCA || iss.CA == nil || iss.CA.SecretName == "" {
		return SecretKey{}, false
	}
	ns := iss.Namespace
	if iss.Kind == KindClusterIssuer {
		ns = c.opts.ClusterResourceNamespace
	}
	return SecretKey{Namespace: ns, Name: iss.CA.SecretName}, true
}

func (c *Cache) onIssuer(obj interface{}) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	iss, err := FromUnstructured(u)
	if err != nil {
		klog.ErrorS(err, "Ignoring object from the issuer informers")
		return
	}
	c.mu.Lock()
	old := c.issuers[iss.Ref]
	c.issuers[iss.Ref] = iss
	oldKey, hadOld := SecretKey{}, false
	if old != nil {
		oldKey, hadOld = c.secretKeyFor(old)
	}
	newKey, hasNew := c.secretKeyFor(iss)
	if !hadOld || !hasNew || oldKey != newKey {
		if hasNew {
			c.refSecret(iss.Ref, newKey)
		}
		if hadOld {
			c.unrefSecret(iss.Ref, oldKey)
		}
	}
	notify := c.recompute(iss.Ref)
	c.mu.Unlock()
	notify()
}

func (c *Cache) onIssuerDelete(obj interface{}) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	ref := Ref{Kind: Kind(u.GetKind()), Namespace: u.GetNamespace(), Name: u.GetName()}
	if ref.Kind == KindClusterIssuer {
		ref.Namespace = ""
	}
	c.mu.Lock()
	if old := c.issuers[ref]; old != nil {
		if key, ok := c.secretKeyFor(old); ok {
			c.unrefSecret(ref, key)
		}
	}
	delete(c.issuers, ref)
	notify := c.recompute(ref)
	c.mu.Unlock()
	notify()
}

// refSecret and unrefSecret keep bySecret and the Secret reads in step.
// Called with c.mu held.
func (c *Cache) refSecret(ref Ref, key SecretKey) {
	refs := c.bySecret[key]
	if refs == nil {
		refs = map[Ref]struct{}{}
		c.bySecret[key] = refs
	}
	refs[ref] = struct{}{}
	c.secrets.acquire(key)
}

func (c *Cache) unrefSecret(ref Ref, key SecretKey) {
	if refs := c.bySecret[key]; refs != nil {
		delete(refs, ref)
		if len(refs) == 0 {
			delete(c.bySecret, key)
		}
	}
	c.secrets.release(key)
}

func (c *Cache) onSecretChange(key SecretKey) {
	c.mu.Lock()
	var notifies []func()
	for ref := range c.bySecret[key] {
		notifies = append(notifies, c.recompute(ref))
	}
	c.mu.Unlock()
	for _, n := range notifies {
		n()
	}
}

// watchValidity recomputes CA issuers whose certificate has since expired or
// become valid: no object changes then, only the clock.
func (c *Cache) watchValidity(ctx context.Context) {
	t := c.opts.Clock.NewTicker(c.opts.ValidityCheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		c.recheckValidity()
	}
}

func (c *Cache) recheckValidity() {
	now := c.opts.Clock.Now()
	c.mu.Lock()
	var notifies []func()
	for ref, s := range c.states {
		if clockChangesState(s, c.opts.SigningPolicy, now) {
			notifies = append(notifies, c.recompute(ref))
		}
	}
	c.mu.Unlock()
	for _, n := range notifies {
		n()
	}
}

// recompute derives ref's State from the issuer and its Secret and publishes
// it if anything a reader can see changed. Called with c.mu held; returns
// the notification to run after unlocking.
func (c *Cache) recompute(ref Ref) func() {
	old := c.states[ref]
	iss := c.issuers[ref]
	if iss == nil {
		if old == nil {
			return func() {}
		}
		delete(c.states, ref)
		gone := *old
		c.publish(watch.Deleted, &gone, old)
		return c.notifier(ref)
	}
	s := c.compute(iss)
	if old != nil && old.Issuer == s.Issuer && old.Ready == s.Ready && old.Reason == s.Reason &&
		old.Message == s.Message && old.CA == s.CA && sameCAExpiry(old.CAExpiry, s.CAExpiry) {
		return func() {}
	}
	s.LastTransitionTime = c.opts.Clock.Now()
	if old != nil && old.Ready == s.Ready && old.Reason == s.Reason {
		s.LastTransitionTime = old.LastTransitionTime
	}
	if s.CAExpiry != nil {
		s.CAExpiry.LastTransitionTime = c.opts.Clock.Now()
		if old != nil && old.CAExpiry != nil && old.CAExpiry.ShortLived == s.CAExpiry.ShortLived {
			s.CAExpiry.LastTransitionTime = old.CAExpiry.LastTransitionTime
		}
	}
	c.states[ref] = s
	if old == nil {
		c.publish(watch.Added, s, nil)
	} else {
		c.publish(watch.Modified, s, old)
	}
	return c.notifier(ref)
}

func sameCAExpiry(a, b *CAExpiry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ShortLived == b.ShortLived && a.Message == b.Message
}

func (c *Cache) notifier(ref Ref) func() {
	listeners := c.listeners
	return func() {
		for _, f := range listeners {
			f(ref)
		}
	}
}

// compute derives iss's State from the readiness policy. Called with c.mu held.
func (c *Cache) compute(iss *Issuer) *State {
	s := &State{Issuer: iss}
	var secret CASecretState
	if key, ok := c.secretKeyFor(iss); ok {
		s.Secret = key
		secret = c.secrets.state(key)
	}
	r := ComputeReadiness(iss, secret, c.opts.SigningPolicy, c.opts.Clock.Now())
	s.Ready, s.Reason, s.Message, s.CA, s.CAExpiry = r.Ready, r.Reason, r.Message, r.CA, r.CAExpiry
	return s
}

// slimIssuer drops what signet never reads from cached issuers: managed
// fields and the last-applied annotation are often most of an object.
func slimIssuer(obj interface{}) (interface{}, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	u.SetManagedFields(nil)
	if a := u.GetAnnotations(); a != nil {
		if _, ok := a[corev1.LastAppliedConfigAnnotation]; ok {
			delete(a, corev1.LastAppliedConfigAnnotation)
			u.SetAnnotations(a)
		}
	}
	return u, nil
}
