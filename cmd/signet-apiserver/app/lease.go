package app

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// renewalTracker is the leader lock, remembering when this replica last
// wrote the lease as its holder. Another replica takes the lease only after
// it has seen no renewal for a whole lease duration, counted from when it
// read the last one, which is after that renewal was sent. So while the
// last renewal sent is younger than the renew deadline (shorter than the
// lease), no other replica can lead yet, and this one may sign and write.
// The elector's own view (IsLeader) is no such guarantee: after a pause it
// still names this replica until its next renewal fails.
type renewalTracker struct {
	resourcelock.Interface
	clock    clock.PassiveClock
	deadline time.Duration

	mu   sync.Mutex
	sent time.Time // when the last renewal that succeeded was sent; zero: not holding
}

func newRenewalTracker(lock resourcelock.Interface, renewDeadline time.Duration, clk clock.PassiveClock) *renewalTracker {
	return &renewalTracker{Interface: lock, clock: clk, deadline: renewDeadline}
}

func (t *renewalTracker) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return t.write(ler, func() error { return t.Interface.Create(ctx, ler) })
}

func (t *renewalTracker) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return t.write(ler, func() error { return t.Interface.Update(ctx, ler) })
}

func (t *renewalTracker) write(ler resourcelock.LeaderElectionRecord, do func() error) error {
	sent := t.clock.Now()
	err := do()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case ler.HolderIdentity != t.Identity():
		t.sent = time.Time{} // releasing the lease (or writing another holder)
	case err == nil && sent.After(t.sent):
		t.sent = sent
	}
	return err
}

// Leading reports whether the last renewal is recent enough that no other
// replica can have taken the lease.
func (t *renewalTracker) Leading() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.sent.IsZero() && t.clock.Since(t.sent) < t.deadline
}
