package issuers

import (
	"errors"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/watch"
	clocktesting "k8s.io/utils/clock/testing"
)

// A Cache fed by calling its informer handlers directly: resource versions
// and watch history need no informer.
func historyCache(historySize, watchBuffer int) *Cache {
	return New(nil, nil, Options{Clock: clocktesting.NewFakeClock(fixtureNow), HistorySize: historySize, WatchBuffer: watchBuffer})
}

func addSelfSigned(c *Cache, name string) {
	c.onIssuer(issuerFixture("team", name, map[string]interface{}{"selfSigned": map[string]interface{}{}}))
}

func eventNames(events []Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s %s@%d", e.Type, e.State.Issuer.Name, e.State.ResourceVersion))
	}
	return out
}

func TestResourceVersionsStartAtTheProcessStartAndIncrease(t *testing.T) {
	c := historyCache(10, 10)
	start := c.ResourceVersion()
	if want := uint64(fixtureNow.UnixMicro()); start != want {
		t.Fatalf("first resource version %d, want the start time in µs %d", start, want)
	}
	addSelfSigned(c, "a")
	addSelfSigned(c, "b")
	c.onIssuerDelete(issuerFixture("team", "b", nil))
	// Nothing a reader sees changes: no new version.
	c.recheckValidity()
	c.onIssuerDelete(issuerFixture("team", "b", nil))
	if got := c.ResourceVersion(); got != start+3 {
		t.Errorf("after 2 adds and a delete: %d, want %d", got, start+3)
	}
	states, rv := c.List(KindIssuer, "team")
	if len(states) != 1 || states[0].ResourceVersion != start+1 || rv != start+3 {
		t.Errorf("List: %d states (rv of a: %d), list rv %d", len(states), states[0].ResourceVersion, rv)
	}
}

func TestWatchResumesFromHistoryAndExpiresOnceItWraps(t *testing.T) {
	c := historyCache(3, 10)
	start := c.ResourceVersion()
	for i := range 3 {
		addSelfSigned(c, fmt.Sprintf("i%d", i))
	}

	w, err := c.Watch(start + 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventNames(w.Backlog); fmt.Sprint(got) != fmt.Sprintf("[ADDED i1@%d ADDED i2@%d]", start+2, start+3) {
		t.Errorf("backlog after %d: %v", start+1, got)
	}
	w.Stop()
	w.Stop() // twice is fine

	w, err = c.Watch(start) // everything still in history
	if err != nil || len(w.Backlog) != 3 {
		t.Fatalf("watch from the start: %v, %d events", err, len(w.Backlog))
	}
	w.Stop()

	addSelfSigned(c, "i3") // evicts i0's event
	if _, err := c.Watch(start); !errors.Is(err, ErrExpired) {
		t.Errorf("watch from an evicted version: %v, want ErrExpired", err)
	}
	if _, err := c.Watch(c.ResourceVersion() + 1); !errors.Is(err, ErrExpired) {
		t.Errorf("watch from the future (another process): %v, want ErrExpired", err)
	}
	w, err = c.Watch(start + 1)
	if err != nil || len(w.Backlog) != 3 {
		t.Fatalf("watch from the oldest remembered version: %v, %v", err, eventNames(w.Backlog))
	}

	// Live events follow the backlog.
	c.onIssuerDelete(issuerFixture("team", "i1", nil))
	e := <-w.Events
	if e.Type != watch.Deleted || e.State.Issuer.Name != "i1" || e.Prev == nil || e.State.ResourceVersion != start+5 {
		t.Errorf("live event %+v", e)
	}
	w.Stop()
	if _, open := <-w.Events; open {
		t.Error("Events still open after Stop")
	}
}

func TestWatchFromZeroListsEveryIssuerAndEmptyHistoryResumesOnlyNow(t *testing.T) {
	c := historyCache(0, 10) // defaulted
	if len(c.history) != 50000 {
		t.Fatalf("default history %d", len(c.history))
	}
	c = &Cache{opts: Options{WatchBuffer: 1}, states: map[Ref]*State{}, watchers: map[*Watch]struct{}{}, rv: 7}
	w, err := c.Watch(7)
	if err != nil || len(w.Backlog) != 0 {
		t.Errorf("watch from now with no history: %v %v", err, w)
	}
	if _, err := c.Watch(6); !errors.Is(err, ErrExpired) {
		t.Errorf("watch from before now with no history: %v", err)
	}

	c = historyCache(10, 10)
	addSelfSigned(c, "a")
	addSelfSigned(c, "b")
	w, err = c.Watch(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Backlog) != 2 || w.Backlog[0].Type != watch.Added || w.Backlog[1].Type != watch.Added {
		t.Errorf("watch from 0: %v", eventNames(w.Backlog))
	}
}

func TestASlowWatcherIsClosedNotBuffered(t *testing.T) {
	c := historyCache(10, 2)
	w, err := c.Watch(0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		addSelfSigned(c, fmt.Sprintf("i%d", i))
	}
	var got []Event
	for e := range w.Events {
		got = append(got, e)
	}
	if len(got) != 2 {
		t.Errorf("a watcher two events behind got %d events before it was closed", len(got))
	}
	// It resumes from the last version it saw.
	w2, err := c.Watch(got[1].State.ResourceVersion)
	if err != nil || len(w2.Backlog) != 1 || w2.Backlog[0].State.Issuer.Name != "i2" {
		t.Errorf("resume: %v %v", err, eventNames(w2.Backlog))
	}
	w.Stop() // already closed: no panic
}
