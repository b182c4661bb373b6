package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// ClockHealth is the clockHealth /livez check. signet stamps NotBefore and
// NotAfter from the wall clock, so a wall clock that jumps (a bad NTP step, a
// VM resumed from suspend) issues certificates with the wrong validity. The
// check compares how far the wall clock moved with how far the monotonic
// clock moved; after a jump beyond Threshold it fails for Hold, long enough
// for a liveness probe to notice and for the jump to show in /livez?verbose.
type ClockHealth struct {
	Threshold time.Duration
	Hold      time.Duration
	Interval  time.Duration
	// wall and mono are time.Now with and without the monotonic reading
	// stripped; tests replace them.
	wall func() time.Time
	mono func() time.Time

	mu        sync.Mutex
	lastWall  time.Time
	lastMono  time.Time
	jumpedAt  time.Time // by the monotonic clock
	jumpBy    time.Duration
	hasSample bool
}

// NewClockHealth returns a check that fails for hold after the wall clock
// moves more than threshold away from the monotonic clock.
func NewClockHealth(threshold, hold time.Duration) *ClockHealth {
	return &ClockHealth{
		Threshold: threshold, Hold: hold, Interval: time.Second,
		wall: func() time.Time { return time.Now().Round(0) },
		mono: time.Now,
	}
}

func (c *ClockHealth) Name() string { return "clockHealth" }

// Check fails while a recent jump is being held.
func (c *ClockHealth) Check(*http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jumpBy != 0 && c.mono().Sub(c.jumpedAt) < c.Hold {
		return fmt.Errorf("the wall clock jumped by %s relative to the monotonic clock %s ago; certificates signed around then may have wrong validity",
			c.jumpBy, c.mono().Sub(c.jumpedAt).Round(time.Second))
	}
	return nil
}

// Sample records one observation; Run calls it every Interval.
func (c *ClockHealth) Sample() {
	w, m := c.wall(), c.mono()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hasSample {
		drift := w.Sub(c.lastWall) - m.Sub(c.lastMono)
		if drift > c.Threshold || drift < -c.Threshold {
			c.jumpedAt, c.jumpBy = m, drift
		}
	}
	c.lastWall, c.lastMono, c.hasSample = w, m, true
}

// Run samples until ctx ends.
func (c *ClockHealth) Run(ctx context.Context) {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	c.Sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Sample()
		}
	}
}
