// Package workers is the queue loop signet's controllers share: take a key,
// sync it, and requeue it by what the sync said.
package workers

import (
	"context"
	"errors"
	"sync"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
)

// ErrNotLeading stops a sync that would sign or write while this replica
// cannot be sure it still leads.
var ErrNotLeading = errors.New("not leading")

// NotLeadingRetry is when a key whose sync returned ErrNotLeading comes back:
// by then leadership is settled one way (the lease renewed) or the other (the
// process exits).
const NotLeadingRetry = time.Second

// Loop drains one controller's queue.
type Loop struct {
	Queue   workqueue.TypedRateLimitingInterface[string]
	Workers int
	Sync    func(ctx context.Context, key string) error
	// Object and KeyName label a failed sync in the log:
	// "Syncing <Object>" with <KeyName>=<key>.
	Object, KeyName string
	// OnNotLeading, if set, is called for each sync that returned ErrNotLeading.
	OnNotLeading func()
}

// Run runs l.Workers workers until ctx ends, then shuts the queue down and
// waits for them.
func (l Loop) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range l.Workers {
		wg.Go(func() {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for l.ProcessNext(ctx) {
				}
			}, time.Second)
		})
	}
	<-ctx.Done()
	l.Queue.ShutDown()
	wg.Wait()
}

// ProcessNext syncs one key and requeues it by the outcome; false once the
// queue is shut down.
func (l Loop) ProcessNext(ctx context.Context) bool {
	key, quit := l.Queue.Get()
	if quit {
		return false
	}
	defer l.Queue.Done(key)
	err := l.Sync(ctx, key)
	switch {
	case errors.Is(err, ErrNotLeading):
		// Not an error of the object's: come back once leadership is settled.
		if l.OnNotLeading != nil {
			l.OnNotLeading()
		}
		l.Queue.AddAfter(key, NotLeadingRetry)
	case err != nil:
		utilruntime.HandleErrorWithContext(ctx, err, "Syncing "+l.Object, l.KeyName, key)
		l.Queue.AddRateLimited(key)
	default:
		l.Queue.Forget(key)
	}
	return true
}
