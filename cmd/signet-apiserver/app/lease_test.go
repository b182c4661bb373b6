package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeLock succeeds or fails as told, and can take time (a slow kube-apiserver).
type fakeLock struct {
	resourcelock.Interface
	clock *clocktesting.FakeClock
	err   error
	takes time.Duration
}

func (l *fakeLock) Identity() string { return "me" }
func (l *fakeLock) Create(context.Context, resourcelock.LeaderElectionRecord) error {
	l.clock.Step(l.takes)
	return l.err
}
func (l *fakeLock) Update(context.Context, resourcelock.LeaderElectionRecord) error {
	l.clock.Step(l.takes)
	return l.err
}

func TestRenewalTracker(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Now())
	lock := &fakeLock{clock: clk}
	tr := newRenewalTracker(lock, 10*time.Second, clk)
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}

	if tr.Leading() {
		t.Fatal("leading before acquiring the lease")
	}
	if err := tr.Create(ctx, mine); err != nil || !tr.Leading() {
		t.Fatalf("acquired: err %v, leading %v", err, tr.Leading())
	}
	clk.Step(9 * time.Second)
	if !tr.Leading() {
		t.Error("not leading 9s after a renewal, with a 10s deadline")
	}
	clk.Step(time.Second)
	if tr.Leading() {
		t.Error("still leading a renew deadline after the last renewal (a paused replica)")
	}

	// The renewal counts from when it was sent, not when it returned.
	lock.takes = 4 * time.Second
	if err := tr.Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	clk.Step(6 * time.Second)
	if tr.Leading() {
		t.Error("leading 10s after the renewal was sent")
	}

	// A failed renewal does not extend anything.
	lock.takes = 0
	if err := tr.Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	lock.err = errors.New("conflict")
	clk.Step(5 * time.Second)
	if err := tr.Update(ctx, mine); err == nil {
		t.Fatal("the lock's error was swallowed")
	}
	clk.Step(5 * time.Second)
	if tr.Leading() {
		t.Error("a failed renewal extended leadership")
	}

	// Releasing the lease (an empty holder) ends leadership at once.
	lock.err = nil
	if err := tr.Update(ctx, mine); err != nil || !tr.Leading() {
		t.Fatalf("renewed: %v, leading %v", err, tr.Leading())
	}
	if err := tr.Update(ctx, resourcelock.LeaderElectionRecord{}); err != nil || tr.Leading() {
		t.Errorf("released: err %v, leading %v", err, tr.Leading())
	}
}
