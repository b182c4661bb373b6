package workers

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"k8s.io/client-go/util/workqueue"
)

func TestProcessNextRequeuesByOutcome(t *testing.T) {
	for _, tt := range []struct {
		name           string
		err            error
		wantRequeues   int
		wantNotLeading int
	}{
		{name: "success forgets the key", err: nil},
		{name: "an error backs off", err: errors.New("boom"), wantRequeues: 1},
		{name: "not leading waits without backoff", err: fmt.Errorf("writing: %w", ErrNotLeading), wantNotLeading: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
			defer queue.ShutDown()
			notLeading := 0
			var synced []string
			l := Loop{Queue: queue, Workers: 1, Object: "Thing", KeyName: "thing",
				Sync: func(_ context.Context, key string) error {
					synced = append(synced, key)
					return tt.err
				},
				OnNotLeading: func() { notLeading++ },
			}
			queue.Add("a")
			if !l.ProcessNext(context.Background()) {
				t.Fatal("ProcessNext = false with a key queued")
			}
			if len(synced) != 1 || synced[0] != "a" {
				t.Errorf("synced %v, want [a]", synced)
			}
			if got := queue.NumRequeues("a"); got != tt.wantRequeues {
				t.Errorf("NumRequeues = %d, want %d", got, tt.wantRequeues)
			}
			if notLeading != tt.wantNotLeading {
				t.Errorf("OnNotLeading called %d times, want %d", notLeading, tt.wantNotLeading)
			}
		})
	}
}

func TestProcessNextStopsWhenTheQueueShutsDown(t *testing.T) {
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	queue.ShutDown()
	l := Loop{Queue: queue, Sync: func(context.Context, string) error { t.Error("synced after shutdown"); return nil }}
	if l.ProcessNext(context.Background()) {
		t.Error("ProcessNext = true after shutdown")
	}
}

func TestRunStopsWithTheContext(t *testing.T) {
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan string, 1)
	l := Loop{Queue: queue, Workers: 2, Sync: func(_ context.Context, key string) error {
		done <- key
		return nil
	}}
	queue.Add("a")
	stopped := make(chan struct{})
	go func() { l.Run(ctx); close(stopped) }()
	if got := <-done; got != "a" {
		t.Errorf("synced %q, want a", got)
	}
	cancel()
	<-stopped
	if !queue.ShuttingDown() {
		t.Error("Run returned without shutting the queue down")
	}
}
