package issuers

import (
	"sync"

	"k8s.io/apimachinery/pkg/watch"
)

// Watch is one subscriber to the Cache's changes. Read Backlog first, then
// Events until it is closed. Events closes when the watcher falls more than
// Options.WatchBuffer events behind, or on Stop; a client then resumes from
// the last resource version it saw.
type Watch struct {
	Backlog []Event
	Events  <-chan Event

	c    *Cache
	ch   chan Event
	once sync.Once
}

// Stop ends the watch. It is safe to call more than once.
func (w *Watch) Stop() {
	w.c.mu.Lock()
	w.closeLocked()
	w.c.mu.Unlock()
}

func (w *Watch) closeLocked() {
	w.once.Do(func() {
		delete(w.c.watchers, w)
		close(w.ch)
	})
}

// Watch subscribes to changes after resourceVersion. Zero means "from now,
// starting with an Added event for every current issuer". An unknown or
// evicted version returns ErrExpired.
func (c *Cache) Watch(resourceVersion uint64) (*Watch, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &Watch{c: c, ch: make(chan Event, c.opts.WatchBuffer)}
	w.Events = w.ch
	switch {
	case resourceVersion == 0:
		for _, s := range c.states {
			w.Backlog = append(w.Backlog, Event{Type: watch.Added, State: s})
		}
	case resourceVersion > c.rv:
		return nil, ErrExpired
	default:
		oldest := c.rv + 1 // with an empty history, only "now" can be resumed
		if c.histLen > 0 {
			oldest = c.history[c.histStart].State.ResourceVersion
		}
		if resourceVersion+1 < oldest {
			return nil, ErrExpired
		}
		for i := 0; i < c.histLen; i++ {
			e := c.history[(c.histStart+i)%len(c.history)]
			if e.State.ResourceVersion > resourceVersion {
				w.Backlog = append(w.Backlog, e)
			}
		}
	}
	c.watchers[w] = struct{}{}
	return w, nil
}

// publish assigns the next resource version to s, records the event and
// hands it to every watcher. Called with c.mu held.
func (c *Cache) publish(t watch.EventType, s, prev *State) {
	c.rv++
	s.ResourceVersion = c.rv
	e := Event{Type: t, State: s, Prev: prev}
	if n := len(c.history); n > 0 {
		if c.histLen < n {
			c.history[(c.histStart+c.histLen)%n] = e
			c.histLen++
		} else {
			c.history[c.histStart] = e
			c.histStart = (c.histStart + 1) % n
		}
	}
	for w := range c.watchers {
		select {
		case w.ch <- e:
		default:
			// Too slow: close rather than buffer without bound.
			w.closeLocked()
		}
	}
}
