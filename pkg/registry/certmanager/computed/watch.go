package computed

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/signet-dev/signet/pkg/issuers"
)

// Watch streams changes after opts.ResourceVersion. "" and "0" start with an
// Added event for every current object, as kube-apiserver does; a version
// signet no longer remembers, or one from another signet process, is 410 Gone
// and the client lists again. sendInitialEvents ends the initial events with
// the bookmark that watch-list clients wait for.
func (r *REST) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	match, err := r.matcher(opts)
	if err != nil {
		return nil, err
	}
	var rv uint64
	if opts != nil && opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
		if rv, err = strconv.ParseUint(opts.ResourceVersion, 10, 64); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q: %v", opts.ResourceVersion, err))
		}
	}
	sendInitial := opts != nil && opts.SendInitialEvents != nil && *opts.SendInitialEvents
	if sendInitial {
		rv = 0
	}
	sub, err := r.source.Watch(rv)
	if errors.Is(err, issuers.ErrExpired) {
		return nil, apierrors.NewResourceExpired(fmt.Sprintf("resourceVersion %s: %v", opts.ResourceVersion, err))
	}
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	namespace := r.namespace(ctx)
	inScope := func(s *issuers.State) bool {
		return s != nil && s.Issuer.Kind == r.res.Kind && (namespace == "" || s.Issuer.Namespace == namespace) && match(s)
	}
	w := &streamer{sub: sub, out: make(chan watch.Event), stop: make(chan struct{})}
	go w.run(ctx, r, inScope, sendInitial)
	return w, nil
}

type streamer struct {
	sub      *issuers.Watch
	out      chan watch.Event
	stop     chan struct{}
	stopOnce sync.Once
}

func (w *streamer) ResultChan() <-chan watch.Event { return w.out }

func (w *streamer) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
}

func (w *streamer) run(ctx context.Context, r *REST, inScope func(*issuers.State) bool, sendInitial bool) {
	defer close(w.out)
	defer w.sub.Stop()
	send := func(e watch.Event) bool {
		select {
		case w.out <- e:
			return true
		case <-w.stop:
		case <-ctx.Done():
		}
		return false
	}
	var last uint64
	for _, e := range w.sub.Backlog {
		if out, ok := r.translate(e, inScope); ok && !send(out) {
			return
		}
		last = max(last, e.State.ResourceVersion)
	}
	if sendInitial {
		bookmark := r.res.New()
		if m, err := meta.Accessor(bookmark); err == nil {
			m.SetResourceVersion(strconv.FormatUint(last, 10))
			m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
		}
		if !send(watch.Event{Type: watch.Bookmark, Object: bookmark}) {
			return
		}
	}
	for {
		select {
		case e, ok := <-w.sub.Events:
			if !ok {
				return // fell behind: the client resumes from its last version
			}
			if out, ok := r.translate(e, inScope); ok && !send(out) {
				return
			}
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// translate turns a read-model event into what a watcher with these
// selectors sees: an object that starts or stops matching is Added or Deleted.
func (r *REST) translate(e issuers.Event, inScope func(*issuers.State) bool) (watch.Event, bool) {
	now, before := inScope(e.State), inScope(e.Prev)
	switch {
	case e.Type == watch.Deleted && before:
		return watch.Event{Type: watch.Deleted, Object: r.object(e.State)}, true
	case e.Type == watch.Deleted:
		return watch.Event{}, false
	case now && before:
		return watch.Event{Type: watch.Modified, Object: r.object(e.State)}, true
	case now:
		return watch.Event{Type: watch.Added, Object: r.object(e.State)}, true
	case before:
		return watch.Event{Type: watch.Deleted, Object: r.object(e.State)}, true
	}
	return watch.Event{}, false
}
