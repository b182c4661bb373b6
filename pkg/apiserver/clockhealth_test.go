package apiserver

import (
	"testing"
	"time"
)

func TestClockHealthFailsAfterAJumpAndRecovers(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wall, mono := base, base
	c := NewClockHealth(5*time.Second, time.Minute)
	c.wall = func() time.Time { return wall }
	c.mono = func() time.Time { return mono }

	step := func(wallBy, monoBy time.Duration) {
		wall, mono = wall.Add(wallBy), mono.Add(monoBy)
		c.Sample()
	}
	step(0, 0)
	for range 10 {
		step(time.Second, time.Second) // clocks agree
	}
	step(1200*time.Millisecond, time.Second) // ordinary NTP slew: within threshold
	if err := c.Check(nil); err != nil {
		t.Fatalf("healthy clock: %v", err)
	}
	step(time.Hour, time.Second) // the wall clock jumps an hour ahead
	err := c.Check(nil)
	if err == nil {
		t.Fatal("no failure after a one-hour jump")
	}
	t.Log(err)
	step(30*time.Second, 30*time.Second)
	if c.Check(nil) == nil {
		t.Fatal("recovered before the hold elapsed")
	}
	step(31*time.Second, 31*time.Second)
	if err := c.Check(nil); err != nil {
		t.Fatalf("still failing after the hold: %v", err)
	}
	step(-10*time.Minute, time.Second) // and backwards
	if c.Check(nil) == nil {
		t.Fatal("no failure after a backward jump")
	}
}
