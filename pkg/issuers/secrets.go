package issuers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/signet-dev/signet/pkg/signers"
)

// SecretKey names one Secret.
type SecretKey struct {
	Namespace string
	Name      string
}

func (k SecretKey) String() string { return k.Namespace + "/" + k.Name }

// secretReader keeps the content of exactly the Secrets that CA issuers
// reference, and tells holders when a Secret they wait for changes. It learns
// of changes from the secret feed (one metadata-only watch of every Secret)
// and reads a Secret's data with one GET when the feed reports a version it
// has not read. A Secret nobody references leaves nothing behind, not even
// its name.
type secretReader struct {
	client kubernetes.Interface
	// onChange is the Cache's: recompute the issuers reading key.
	onChange func(SecretKey)
	queue    workqueue.TypedRateLimitingInterface[SecretKey]

	mu         sync.Mutex
	entries    map[SecretKey]*secretEntry
	holders    map[string]map[SecretKey]struct{}
	listeners  []func(SecretKey, []string)
	feedSynced bool
	// telling counts reads whose result the Cache has yet to be told of.
	telling int
	// feedListed is closed by the feed's first list.
	feedListed chan struct{}
}

// secretEntry is one Secret that an issuer reads or a holder waits for.
type secretEntry struct {
	// issuers is how many CA issuers read the Secret; only while it is above
	// zero is the Secret read and its content kept.
	issuers int
	holders map[string]struct{}

	// What the feed last said of the Secret: whether it exists, at which
	// resource version. feedKnown is false until the feed has said anything.
	feedKnown  bool
	feedExists bool
	feedRV     string

	// What the last read found.
	answered bool
	readErr  error // the last read failed and the content is unknown
	secret   *corev1.Secret
	ca       *signers.CA
	caErr    error
}

func newSecretReader(client kubernetes.Interface, onChange func(SecretKey)) *secretReader {
	// Retries back off on the wall clock, as a reflector's do: they are
	// about kube-apiserver, not about the Cache's notion of now.
	limiter := workqueue.NewTypedItemExponentialFailureRateLimiter[SecretKey](100*time.Millisecond, 30*time.Second)
	return &secretReader{
		client:     client,
		onChange:   onChange,
		queue:      workqueue.NewTypedRateLimitingQueue(limiter),
		entries:    map[SecretKey]*secretEntry{},
		holders:    map[string]map[SecretKey]struct{}{},
		feedListed: make(chan struct{}),
	}
}

func (r *secretReader) entry(key SecretKey) *secretEntry {
	e := r.entries[key]
	if e == nil {
		e = &secretEntry{holders: map[string]struct{}{}}
		r.entries[key] = e
	}
	return e
}

// forgetIfUnused drops e once nobody reads or waits for it. Called with r.mu held.
func (r *secretReader) forgetIfUnused(key SecretKey, e *secretEntry) {
	if e.issuers == 0 && len(e.holders) == 0 {
		delete(r.entries, key)
	}
}

// acquire counts one more CA issuer reading key and has the Secret read if
// it is not yet. Its result reaches the Cache through onChange.
func (r *secretReader) acquire(key SecretKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entry(key)
	e.issuers++
	if e.issuers == 1 {
		r.queue.Add(key)
	}
}

// release counts one CA issuer fewer reading key; the content is dropped
// when none is left.
func (r *secretReader) release(key SecretKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[key]
	if e == nil || e.issuers == 0 {
		return
	}
	if e.issuers--; e.issuers > 0 {
		return
	}
	e.answered, e.readErr, e.secret, e.ca, e.caErr = false, nil, nil, nil, nil
	r.forgetIfUnused(key, e)
}

// state is what is known of key, for the readiness policy.
func (r *secretReader) state(key SecretKey) CASecretState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := CASecretState{Key: key}
	if e := r.entries[key]; e != nil && e.issuers > 0 {
		s.Answered, s.ReadErr = e.answered, e.readErr
		s.Found, s.CA, s.CAErr = e.secret != nil, e.ca, e.caErr
	}
	return s
}

// synced reports whether the feed has listed every Secret once and every
// Secret an issuer reads has had its first answer.
func (r *secretReader) synced() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.feedSynced {
		return false
	}
	if r.telling > 0 {
		return false
	}
	for _, e := range r.entries {
		if e.issuers > 0 && !e.answered {
			return false
		}
	}
	return true
}

// tellUnlock passes a read's result on to the Cache; synced stays false
// until it has recomputed. Called with r.mu held, which it releases.
func (r *secretReader) tellUnlock(key SecretKey) {
	r.telling++
	r.mu.Unlock()
	r.onChange(key)
	r.mu.Lock()
	r.telling--
	r.mu.Unlock()
}

// cached counts the Secrets whose content is kept.
func (r *secretReader) cached() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.entries {
		if e.secret != nil {
			n++
		}
	}
	return n
}

// hold and releaseHolder implement Cache.WatchSecret and ReleaseSecrets.
func (r *secretReader) hold(holder string, key SecretKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := r.holders[holder]
	if keys == nil {
		keys = map[SecretKey]struct{}{}
		r.holders[holder] = keys
	}
	keys[key] = struct{}{}
	r.entry(key).holders[holder] = struct{}{}
}

func (r *secretReader) releaseHolder(holder string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key := range r.holders[holder] {
		if e := r.entries[key]; e != nil {
			delete(e.holders, holder)
			r.forgetIfUnused(key, e)
		}
	}
	delete(r.holders, holder)
}

func (r *secretReader) addListener(f func(SecretKey, []string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listeners = append(r.listeners, f)
}

// observe records what the feed says of one Secret: it exists at rv, or it
// is gone. A Secret nobody references is ignored.
func (r *secretReader) observe(key SecretKey, exists bool, rv string) {
	r.mu.Lock()
	notify := r.observeLocked(key, exists, rv)
	r.mu.Unlock()
	notify()
}

// replace is a full list from the feed: present maps every existing Secret
// to its resource version.
func (r *secretReader) replace(present map[SecretKey]string) {
	r.mu.Lock()
	var notifies []func()
	for key := range r.entries {
		rv, exists := present[key]
		notifies = append(notifies, r.observeLocked(key, exists, rv))
	}
	if !r.feedSynced {
		r.feedSynced = true
		close(r.feedListed)
	}
	r.mu.Unlock()
	for _, n := range notifies {
		n()
	}
}

// observeLocked queues a read when the feed reports a version other than the
// one read, and returns the holders' notification. Called with r.mu held.
func (r *secretReader) observeLocked(key SecretKey, exists bool, rv string) func() {
	e := r.entries[key]
	if e == nil {
		return func() {}
	}
	if !exists {
		rv = ""
	}
	changed := !e.feedKnown || e.feedExists != exists || e.feedRV != rv
	e.feedKnown, e.feedExists, e.feedRV = true, exists, rv
	// A read in flight may have started before this version: queue another
	// (the queue holds a key once, and never reads it twice at a time).
	if e.issuers > 0 && (!e.answered || e.readErr != nil || (e.secret != nil) != exists || (exists && e.secret.ResourceVersion != rv)) {
		r.queue.Add(key)
	}
	if !changed || len(e.holders) == 0 || len(r.listeners) == 0 {
		return func() {}
	}
	holders := make([]string, 0, len(e.holders))
	for h := range e.holders {
		holders = append(holders, h)
	}
	slices.Sort(holders)
	listeners := r.listeners
	return func() {
		for _, f := range listeners {
			f(key, holders)
		}
	}
}

// run reads queued Secrets with workers goroutines until ctx ends. Reads wait
// for the feed's first list: it says which Secrets exist and at which
// version, so that a Secret that doesn't exist costs no request and one that
// does is read from kube-apiserver's watch cache.
func (r *secretReader) run(ctx context.Context, workers int) {
	defer r.queue.ShutDown()
	select {
	case <-ctx.Done():
		return
	case <-r.feedListed:
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for r.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
}

func (r *secretReader) next(ctx context.Context) bool {
	key, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(key)
	if err := r.read(ctx, key); err != nil {
		if ctx.Err() == nil {
			utilruntime.HandleErrorWithContext(ctx, err, "Reading a CA Secret; will retry", "secret", key)
		}
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

// read reads key's data if a CA issuer still references it, parses the CA
// once per resource version, and tells the Cache if anything changed.
func (r *secretReader) read(ctx context.Context, key SecretKey) error {
	r.mu.Lock()
	e := r.entries[key]
	if e == nil || e.issuers == 0 {
		r.mu.Unlock()
		return nil
	}
	known, exists, rv := e.feedKnown, e.feedExists, e.feedRV
	prev, prevCA, prevErr := e.secret, e.ca, e.caErr
	r.mu.Unlock()

	var (
		secret  *corev1.Secret
		readErr error
	)
	if !known || exists {
		// With the version the feed reported, kube-apiserver answers from
		// its watch cache with that version or a newer one; without one
		// (a Secret referenced after the feed's list), from etcd.
		s, err := r.client.CoreV1().Secrets(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{ResourceVersion: rv})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			readErr = fmt.Errorf("reading Secret %s: %w", key, err)
		default:
			secret = keepCAData(s)
		}
	}
	ca, caErr := prevCA, prevErr
	if secret != nil && (prev == nil || prev.ResourceVersion != secret.ResourceVersion) {
		ca, caErr = signers.ParseCA(key.String(), secret.Data)
	}

	r.mu.Lock()
	e = r.entries[key]
	if e == nil || e.issuers == 0 {
		r.mu.Unlock()
		return nil
	}
	if readErr != nil {
		// Keep what an earlier read found: the feed says when it changes.
		changed := !e.answered || (e.readErr != nil && e.readErr.Error() != readErr.Error())
		if !e.answered || e.readErr != nil {
			e.answered, e.readErr = true, readErr
		}
		if changed {
			r.tellUnlock(key)
		} else {
			r.mu.Unlock()
		}
		return readErr
	}
	changed := !e.answered || e.readErr != nil || (e.secret == nil) != (secret == nil) ||
		(secret != nil && e.secret.ResourceVersion != secret.ResourceVersion)
	e.answered, e.readErr = true, nil
	e.secret, e.ca, e.caErr = secret, ca, caErr
	if secret == nil {
		e.ca, e.caErr = nil, nil
	}
	if !changed {
		r.mu.Unlock()
		return nil
	}
	klog.V(4).InfoS("Read CA Secret", "secret", key, "found", secret != nil)
	r.tellUnlock(key)
	return nil
}

// get implements Cache.GetSecret.
func (r *secretReader) get(ctx context.Context, key SecretKey) (*corev1.Secret, error) {
	r.mu.Lock()
	if e := r.entries[key]; e != nil && e.issuers > 0 && e.answered && e.readErr == nil {
		s := e.secret
		r.mu.Unlock()
		if s == nil {
			return nil, apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
		}
		return s, nil
	}
	r.mu.Unlock()
	s, err := r.client.CoreV1().Secrets(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return keepCAData(s), nil
}

// keepCAData drops everything of a Secret that signet does not read, so the
// cache holds no more than the key material and the resource version.
func keepCAData(s *corev1.Secret) *corev1.Secret {
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
	return slim
}

// WatchSecret has the Cache call every OnSecretChange listener, from now
// until ReleaseSecrets(holder), whenever the Secret key is created, changes
// or is deleted. holder says who waits (a CSR's name, say); listeners get it
// back. Calling it again for the same holder and key does nothing. Call it
// before reading the Secret with GetSecret, so that no change in between is
// missed. It costs no request: the Cache's one Secret watch covers every
// Secret.
func (c *Cache) WatchSecret(holder string, key SecretKey) { c.secrets.hold(holder, key) }

// ReleaseSecrets ends every WatchSecret of holder.
func (c *Cache) ReleaseSecrets(holder string) { c.secrets.releaseHolder(holder) }

// OnSecretChange registers f to be called with a watched Secret that was
// created, changed or deleted, and the holders watching it (sorted). f runs
// on the Secret watch's goroutine: it must not block (enqueue, say).
func (c *Cache) OnSecretChange(f func(key SecretKey, holders []string)) { c.secrets.addListener(f) }

// GetSecret returns Secret key with only its tls.crt, tls.key and ca.crt:
// from the Cache when a CA issuer references it, otherwise with a GET. A
// missing Secret is a NotFound error. The Secret may be shared: do not
// modify it.
func (c *Cache) GetSecret(ctx context.Context, key SecretKey) (*corev1.Secret, error) {
	return c.secrets.get(ctx, key)
}

// CachedSecrets is how many Secrets' contents the Cache holds: those CA
// issuers reference and that exist.
func (c *Cache) CachedSecrets() int { return c.secrets.cached() }
