package issuers

import (
	"context"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/signet-dev/signet/pkg/signers"
)

// SecretKey names one Secret.
type SecretKey struct {
	Namespace string
	Name      string
}

func (k SecretKey) String() string { return k.Namespace + "/" + k.Name }

// secretWatcher watches exactly the Secrets issuers reference, each through
// its own field-selected informer, so that signet never lists, watches or
// caches any other Secret: memory grows with issuers, not with Secrets.
// Watches are reference-counted by the issuers that use them.
type secretWatcher struct {
	client   kubernetes.Interface
	onChange func(SecretKey)

	mu      sync.Mutex
	watches map[SecretKey]*secretWatch
}

type secretWatch struct {
	refs     int
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	synced   atomic.Bool
}

func newSecretWatcher(client kubernetes.Interface, onChange func(SecretKey)) *secretWatcher {
	return &secretWatcher{client: client, onChange: onChange, watches: map[SecretKey]*secretWatch{}}
}

// acquire starts watching key if nobody watches it yet. It never calls
// onChange itself: changes, and the end of the initial sync, arrive from the
// informer's goroutines.
func (w *secretWatcher) acquire(ctx context.Context, key SecretKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sw, ok := w.watches[key]; ok {
		sw.refs++
		return
	}
	selector := fields.OneTermEqualSelector("metadata.name", key.Name).String()
	secrets := w.client.CoreV1().Secrets(key.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return secrets.Watch(ctx, o)
		},
	}
	// Forward whether the client supports watch-list (fake clients don't).
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, w.client), &corev1.Secret{}, 0, cache.Indexers{})
	_ = inf.SetTransform(keepCAData)
	notify := func(interface{}) { w.onChange(key) }
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj interface{}) { notify(obj) },
		DeleteFunc: notify,
	})
	wctx, cancel := context.WithCancel(ctx)
	sw := &secretWatch{refs: 1, informer: inf, cancel: cancel}
	w.watches[key] = sw
	go inf.RunWithContext(wctx)
	go func() {
		if !cache.WaitForCacheSync(wctx.Done(), inf.HasSynced) {
			return
		}
		sw.synced.Store(true)
		// A Secret that doesn't exist produces no event: tell the cache that
		// the first answer is in, whatever it was.
		w.onChange(key)
	}()
	klog.V(4).InfoS("Watching Secret", "secret", key)
}

// release stops watching key once no issuer references it.
func (w *secretWatcher) release(key SecretKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sw, ok := w.watches[key]
	if !ok {
		return
	}
	if sw.refs--; sw.refs > 0 {
		return
	}
	sw.cancel()
	delete(w.watches, key)
	klog.V(4).InfoS("Stopped watching Secret", "secret", key)
}

// get returns the watched Secret (nil if it does not exist) and whether the
// watch has had its first answer.
func (w *secretWatcher) get(key SecretKey) (secret *corev1.Secret, synced bool) {
	w.mu.Lock()
	sw, ok := w.watches[key]
	w.mu.Unlock()
	if !ok || !sw.synced.Load() {
		return nil, false
	}
	obj, exists, err := sw.informer.GetStore().GetByKey(key.Namespace + "/" + key.Name)
	if err != nil || !exists {
		return nil, true
	}
	return obj.(*corev1.Secret), true
}

// allSynced reports whether every watched Secret has had its first answer.
func (w *secretWatcher) allSynced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, sw := range w.watches {
		if !sw.synced.Load() {
			return false
		}
	}
	return true
}

func (w *secretWatcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watches)
}

// keepCAData drops everything of a Secret that signet does not read, so the
// cache holds no more than the CA material and the resource version.
func keepCAData(obj interface{}) (interface{}, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       s.Namespace,
			Name:            s.Name,
			UID:             s.UID,
			ResourceVersion: s.ResourceVersion,
		},
		Type: s.Type,
		Data: map[string][]byte{},
	}
	for _, k := range []string{signers.TLSCertKey, signers.TLSKeyKey, signers.CACertKey} {
		if v, ok := s.Data[k]; ok {
			slim.Data[k] = v
		}
	}
	return slim, nil
}
